"""A conversation's Workflow Stream, read from outside: its events and token batches, by offset.

Two ways in, both from ``temporalio.contrib.workflow_streams``:

- ``read(offset)``: the stream's poll *query* — answers at once with what the workflow keeps from
  ``offset`` on, adds nothing to history, works on a finished conversation too (a worker replays
  it). A viewer's backlog and catch-up read this way.
- ``follow(offset)``: ``WorkflowStreamClient.subscribe`` — long-polls with the stream's poll
  *update* (one per batch received: each adds two small events to history, which is why the API
  keeps one per conversation, ``api/stream_hub.py``), follows continue-as-new, and ends after the
  conversation's run is over and its last items are read. Its first poll is made here, waited
  for until the workflow *accepted* it (``on_accepted``): from then on the conversation counts
  the follower as watching, and its model steps publish tokens (``models/streaming.py``). A
  caller that wants the tokens of a message it is about to send waits for that first.

Items come out as ``StreamItem`` (offset, topic, JSON data) whatever their topic.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowUpdateStage
from temporalio.contrib.workflow_streams import PollInput, PollResult, WorkflowStreamClient
from temporalio.contrib.workflow_streams._types import _decode_payload  # the wire format's own decoder

from control.failures import answered
from models.streaming import STREAM_POLL

OFFSET = "__temporal_workflow_stream_offset"
FOLLOWING_WAIT_S = 5.0
"""How long a caller waits for a follower's first poll to be accepted (a loaded worker: it goes on
anyway, and the model's next check finds the follower, ``models/streaming.py``)."""
FOLLOW_COOLDOWN = timedelta(milliseconds=50)
"""Pause between two long polls that returned items; a poll that finds nothing waits in the
workflow, so this only bounds how often a busy stream is asked (≤ 20/s)."""


@dataclass(frozen=True)
class StreamItem:
    offset: int
    topic: str
    data: dict[str, Any]

    @property
    def event_id(self) -> int:
        """Its SSE id: offsets start at 0, ids at 1 (``Last-Event-ID: 0`` means "from the start")."""
        return self.offset + 1


@dataclass
class StreamPage:
    items: list[StreamItem] = field(default_factory=list)
    next_offset: int = 0


class ConversationStream:
    def __init__(self, client: Client, workflow_id: str, timeout: timedelta) -> None:
        self._client = client
        self._workflow_id = workflow_id
        self._timeout = timeout

    @property
    def workflow_id(self) -> str:
        return self._workflow_id

    async def read(self, offset: int) -> StreamPage:
        """Everything kept from ``offset`` on (all pages); items start later if older ones were
        truncated; ``next_offset`` is where the stream ends (also for an ``offset`` past it).
        Raises ``control.errors`` (no worker, not found…)."""
        page = StreamPage(next_offset=offset)
        handle = self._client.get_workflow_handle(self._workflow_id)
        while True:
            asking = handle.query(STREAM_POLL, PollInput(from_offset=page.next_offset), result_type=PollResult,
                                  rpc_timeout=self._timeout)  # fmt: skip
            result: PollResult = await answered(asking, f"reading the stream of {self._workflow_id}")
            page.items += [_item(w.offset, w.topic, w.data, self._client) for w in result.items]
            page.next_offset = result.next_offset  # the stream's end, even when asked from past it
            if not result.more_ready:
                return page

    async def offset(self) -> int:
        """Where the next item will be."""
        handle = self._client.get_workflow_handle(self._workflow_id)
        asking = handle.query(OFFSET, result_type=int, rpc_timeout=self._timeout)
        return await answered(asking, f"reading the stream offset of {self._workflow_id}")

    async def follow(self, offset: int, on_accepted: Callable[[], None] = lambda: None) -> AsyncIterator[StreamItem]:
        """Items from ``offset`` on as they come; ends once the conversation's run is over.
        ``on_accepted`` is called once, when the workflow holds the first poll (or that poll failed:
        the SDK's subscription then deals with what it met, as it always does)."""
        first = await self._first_poll(offset)
        on_accepted()
        if first is not None:
            for wire in first.items:
                yield _item(wire.offset, wire.topic, wire.data, self._client)
            offset = max(offset, first.next_offset)
        stream = WorkflowStreamClient.create(self._client, self._workflow_id)
        async for item in stream.subscribe(from_offset=offset, poll_cooldown=FOLLOW_COOLDOWN):
            yield StreamItem(item.offset, item.topic, _as_dict(item.data))

    async def _first_poll(self, offset: int) -> PollResult | None:
        """The first long poll, accepted before it is waited on; None if it failed (a finished or
        continued run, a truncated offset, no worker yet): ``subscribe`` starts over from ``offset``."""
        handle = self._client.get_workflow_handle(self._workflow_id)
        try:
            polling = await handle.start_update(STREAM_POLL, PollInput(from_offset=offset), result_type=PollResult,
                                                wait_for_stage=WorkflowUpdateStage.ACCEPTED, rpc_timeout=self._timeout)  # fmt: skip
        except Exception:  # noqa: BLE001 - whatever it is, subscribe meets it again and knows what to do
            return None
        try:
            return await polling.result()
        except Exception:  # noqa: BLE001 - the same
            return None


async def until_following(following: asyncio.Event) -> None:
    """Until ``follow``'s ``on_accepted`` set ``following``, at most ``FOLLOWING_WAIT_S``."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(following.wait(), FOLLOWING_WAIT_S)


def _item(offset: int, topic: str, wire: str, client: Client) -> StreamItem:
    data = client.data_converter.payload_converter.from_payload(_decode_payload(wire))
    return StreamItem(offset, topic, _as_dict(data))


def _as_dict(data: Any) -> dict[str, Any]:
    return data if isinstance(data, dict) else {"value": data}
