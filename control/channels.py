"""The control client of channels: start them, find them, list them (``control.conversations``' twin).

One id policy for every start, as for conversations: a start never joins a running channel nor
revives an ended one under the same id (``ChannelExists``). Each found channel is a
``control.channel.Channel``; its agents' conversations are ordinary conversations
(``Conversations.find("<channel>--<agent>")``).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from control.channel import Channel
from control.errors import ChannelExists, ChannelNotFound, ControlError
from control.failures import answered
from control.visibility import CHANNEL_TYPE, ChannelFilter, ChannelItem
from models.channel import CHANNEL_WORKFLOW_PREFIX, ChannelInput, channel_workflow_id
from workflows.channel import ChannelWorkflow


class Channels:
    def __init__(self, client: Client, task_queue: str, timeout_s: float = 10.0) -> None:
        self._client = client
        self._task_queue = task_queue
        self._timeout = timedelta(seconds=timeout_s)

    @property
    def task_queue(self) -> str:
        return self._task_queue

    def get(self, channel_id: str) -> Channel:
        return Channel(self._client, channel_workflow_id(channel_id), self._timeout, self._task_queue)

    async def find(self, ref: str) -> Channel:
        """The channel ``ref`` names (its id, or its workflow id), described."""
        workflow_id = ref if ref.startswith(CHANNEL_WORKFLOW_PREFIX) else channel_workflow_id(ref)
        channel = Channel(self._client, workflow_id, self._timeout, self._task_queue)
        execution = await channel.describe()
        if execution.workflow_type != CHANNEL_TYPE:
            raise ChannelNotFound(ref, [workflow_id])
        return channel

    async def start(self, request: ChannelInput, summary: str) -> Channel:
        """Start ``request`` (its ``channel_id`` set); its agents' conversations start with it."""
        assert request.channel_id, "the caller names the channel"
        channel = self.get(request.channel_id)
        starting = self._client.start_workflow(
            ChannelWorkflow.run, request, id=channel.workflow_id, task_queue=self._task_queue, static_summary=summary,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )  # fmt: skip
        try:
            await answered(starting, "starting the channel", needs_worker=False)
        except WorkflowAlreadyStartedError:
            raise ChannelExists(request.channel_id) from None
        except ControlError as err:
            if isinstance(err.__cause__, RPCError) and err.__cause__.status == RPCStatusCode.ALREADY_EXISTS:
                raise ChannelExists(request.channel_id) from None
            raise
        return channel

    async def list(self, matching: ChannelFilter, page_size: int, page_token: bytes | None = None
                   ) -> tuple[list[ChannelItem], bytes | None]:  # fmt: skip
        """One page, newest first, of this task queue's channels; and the next page's token."""
        query = dataclasses.replace(matching, task_queue=self._task_queue).query()
        pages = self._client.list_workflows(query, page_size=page_size, next_page_token=page_token,
                                            rpc_timeout=self._timeout)  # fmt: skip
        await answered(pages.fetch_next_page(), "listing channels", needs_worker=False)
        return [ChannelItem.of(e) for e in pages.current_page or []], pages.next_page_token
