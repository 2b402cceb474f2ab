"""The conversation's Workflow Stream: events and token batches in one offset space.

Why a Workflow Stream (``temporalio.contrib.workflow_streams``) rather than the ``events`` query the
API polled: a subscriber long-polls (one update per batch it receives) instead of asking every
0.5 s, the ``llm.chat`` activity can publish what the model writes while it writes (one signal per
batch), and the stream's dedup makes a retried publish harmless. Publishing an event from the
workflow is workflow state only (no command), so recorded histories replay unchanged.

It also knows whether anyone watches (``watched``): the stream's poll update is wrapped to count
the subscribers' polls waiting in the workflow and to note when the last one returned. Polls are
updates, in history, so the count replays exactly; the ``llm.chat`` activity publishes tokens only
while it is true (``models/streaming.py``).

The stream keeps its latest ``STREAM_ITEMS_KEPT`` items; ``state()`` hands them (and the
publishers' dedup state) to the next run through ``CarriedState.stream``, and ``last_poll`` goes
with them (``CarriedState.stream_polled_at``): continue-as-new releases every poll, and a viewer
following the conversation is watching the next run before its next poll reaches it.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import PollInput, PollResult, WorkflowStream, WorkflowStreamState

    from models.events import ConversationEvent
    from models.streaming import EVENTS_TOPIC, STREAM_ITEMS_KEPT, STREAM_POLL, WATCH_GRACE_S


class ConversationStream:
    """Must be built from the workflow's ``@workflow.init`` (the SDK checks the caller is an
    ``__init__``: this one, called from there)."""

    def __init__(self, prior: WorkflowStreamState | None, last_poll: datetime | None = None) -> None:
        self._stream = WorkflowStream(prior_state=prior)
        self._events = self._stream.topic(EVENTS_TOPIC, type=ConversationEvent)
        self._polls_waiting = 0
        self.last_poll = last_poll
        """When a subscriber's poll last returned (in this run or, carried, the one before)."""
        poll = workflow.get_update_handler(STREAM_POLL)

        async def counted_poll(payload: PollInput) -> PollResult:
            self._polls_waiting += 1
            try:
                result = await poll(payload)  # type: ignore[misc] - the stream's own handler
            except Exception:  # a truncated offset: the poll returned all the same
                self._poll_returned()
                raise
            self._poll_returned()  # not in a ``finally``: an evicted run's handler is closed outside the workflow
            return result

        validator = self._stream._validate_poll  # noqa: SLF001 - re-registered unchanged with the counting handler
        workflow.set_update_handler(STREAM_POLL, counted_poll, validator=validator)

    def _poll_returned(self) -> None:
        self._polls_waiting -= 1
        self.last_poll = workflow.now()

    def watched(self) -> bool:
        """A subscriber's poll waits here, or one returned less than ``WATCH_GRACE_S`` ago."""
        if self._polls_waiting:
            return True
        return self.last_poll is not None and (workflow.now() - self.last_poll).total_seconds() < WATCH_GRACE_S

    def publish(self, event: ConversationEvent) -> None:
        self._events.publish(event)

    def trim(self) -> None:
        """Keep the latest ``STREAM_ITEMS_KEPT`` items (between turns, and before the run ends)."""
        end = self._stream._on_offset()  # noqa: SLF001 - the offset query's own reader, no public twin
        self._stream.truncate(max(0, end - STREAM_ITEMS_KEPT))

    def detach(self) -> None:
        """Release subscribers' long polls: before waiting for all handlers to finish (they would
        wait for the next item for ever) and before continue-as-new or the end."""
        self._stream.detach_pollers()

    def state(self) -> WorkflowStreamState:
        self.trim()
        return self._stream.get_state()

    def reattach(self) -> None:
        """Accept subscribers again: the run did not end after all (a caller's message came)."""
        self._stream._detaching = False  # noqa: SLF001 - detach_pollers has no public inverse
