"""One channel, as the API and the CLI drive it: read it, steer it, post to it.

The twin of ``control.conversation.Conversation`` for ``ChannelWorkflow``: every call typed by the
workflow's own methods, bounded by the client's answer timeout, failing with a ``control.errors``
domain error. Found through ``Channels.find`` it knows whether the workflow still runs, so
steering an ended channel is refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio.client import (
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.service import RPCError, RPCStatusCode

from control.workflow_client import WorkflowClient
from control.errors import ChannelEnded, ChannelNotFound, ControlError, NoWorker, PostNotFound, RunEnding
from control.failures import again_while, answered, post_failure, rpc_failure, until_ready
from control.posts import PostOutcome, post_outcome
from models.channel import (
    CHANNEL_WORKFLOW_PREFIX,
    ChannelHistoryQuery,
    ChannelInput,
    ChannelMessageView,
    ChannelNote,
    Post,
    PostResult,
    ScoredMessage,
    ScoresQuery,
)
from models.channel_events import ChannelEvent
from models.relevance_calculation import ScoringContext
from models.channel_state import ChannelStatus
from models.conversation import End, Pause
from models.events import EventsQuery
from workflows.channel import ChannelWorkflow

POST_POLL = timedelta(seconds=1)


def new_post_id() -> str:
    """A post's id is its ``post`` update id: its result can be fetched by it later."""
    return f"post-{uuid.uuid4().hex}"


class Channel(WorkflowClient):
    RUN = ChannelWorkflow.run
    PREFIX = CHANNEL_WORKFLOW_PREFIX
    NOUN = "channel"
    REVIVED_BY = "a new post"
    ADVICE = "create a new one"
    NOT_FOUND = ChannelNotFound
    ENDED = ChannelEnded

    def _revival_input(self) -> ChannelInput:
        return ChannelInput(agents=["assistant"], revive=True)  # stands in: the record has the real input

    # --- reading ------------------------------------------------------------------------------

    async def status(self) -> ChannelStatus:
        return await self._query(ChannelWorkflow.status)

    async def history(self, limit: int) -> list[ChannelMessageView]:
        return await self._query(ChannelWorkflow.history, ChannelHistoryQuery(limit=limit))

    async def scores(self, limit: int) -> list[ScoredMessage]:
        return await self._query(ChannelWorkflow.scores, ScoresQuery(limit=limit))

    async def events(self, after: int, limit: int | None = None) -> list[ChannelEvent]:
        return await self._query(ChannelWorkflow.events, EventsQuery(after=after, limit=limit) if limit else EventsQuery(after=after))

    async def scoring_context(self) -> ScoringContext:
        return await self._query(ChannelWorkflow.scoring_context)

    async def _query(self, query: Callable[..., Any], *args: Any) -> Any:
        return await answered(self._handle.query(query, *args, rpc_timeout=self._timeout), f"query on channel {self.id}")

    # --- steering -----------------------------------------------------------------------------

    async def pause(self, reason: str = "") -> None:
        await self._signal(ChannelWorkflow.pause, Pause(reason=reason))

    async def resume(self) -> None:
        await self._signal(ChannelWorkflow.resume)

    async def inject(self, note: ChannelNote) -> None:
        await self.revive_if_archived()  # a note to an archived channel revives it, as for conversations
        await self._signal(ChannelWorkflow.inject, note)

    async def end(self, reason: str = "") -> None:
        await self._signal(ChannelWorkflow.end, End(reason=reason))

    async def _signal(self, signal: Callable[..., None], *args: Any) -> None:
        self.ensure_running()
        await answered(self._handle.signal(signal, *args, rpc_timeout=self._timeout), f"signalling channel {self.id}")

    # --- posting ------------------------------------------------------------------------------

    async def post(self, post: Post, wait_s: float | None, post_id: str | None = None) -> PostOutcome:
        """Post; its ``PostResult``, or ``PostWaiting`` (a person, a pause, the budget). An archived
        channel is revived first (and again if it archives just as the post goes out)."""
        post_id = post_id or new_post_id()
        await self.revive_if_archived()
        self.ensure_running()
        return await again_while(lambda: self._post_once(post, wait_s, post_id), lambda e: isinstance(e, RunEnding))

    async def _post_once(self, post: Post, wait_s: float | None, post_id: str) -> PostOutcome:
        """A run that hands over refuses posts (``RunEnding``) until the next run takes them."""
        try:
            update = await self.accepted(self._start_post(post, post_id))
        except ControlError:
            await self.describe()
            if not await self.revive_if_archived():
                raise
            update = await self.accepted(self._start_post(post, post_id))
        return await self.outcome(update, wait_s)

    def _start_post(self, post: Post, post_id: str) -> Awaitable[WorkflowUpdateHandle[PostResult]]:
        return until_ready(lambda: self._handle.start_update(ChannelWorkflow.post, post, id=post_id,
                                                             wait_for_stage=WorkflowUpdateStage.ACCEPTED))  # fmt: skip

    async def follow(self, post_id: str, wait_s: float | None) -> PostOutcome:
        """Go on waiting for a post that answered ``PostWaiting``."""
        return await self.outcome(self._handle.get_update_handle_for(ChannelWorkflow.post, post_id), wait_s)

    async def outcome(self, update: WorkflowUpdateHandle[PostResult], wait_s: float | None) -> PostOutcome:
        return await post_outcome(self._handle, update, wait_s, self.status)

    async def result(self, post_id: str) -> PostResult | None:
        """A post's result if it is over, None while its chain runs."""
        update = self._handle.get_update_handle_for(ChannelWorkflow.post, post_id)
        try:
            return await update.result(rpc_timeout=POST_POLL)
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            return None
        except WorkflowUpdateFailedError as err:
            raise post_failure(err) from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise PostNotFound(self.id, post_id) from None
            raise rpc_failure(err, "reading the post") from err

    async def accepted(self, starting: Awaitable[WorkflowUpdateHandle[PostResult]]) -> WorkflowUpdateHandle[PostResult]:
        """The channel accepted the post (its validator's rejection is ``PostRejected`` here)."""
        try:
            return await asyncio.wait_for(starting, self._timeout.total_seconds())
        except TimeoutError:
            raise NoWorker(
                f"no worker accepted the post within {self._timeout.total_seconds():g}s; is a worker running on "
                f"task queue {self._task_queue!r}? (the post may still be handled later)"
            ) from None
        except WorkflowUpdateFailedError as err:
            raise post_failure(err) from err
        except RPCError as err:
            raise rpc_failure(err, "posting") from err
