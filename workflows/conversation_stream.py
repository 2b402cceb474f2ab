"""The conversation's Workflow Stream: events and token batches in one offset space.

Why a Workflow Stream (``temporalio.contrib.workflow_streams``) rather than the ``events`` query the
API polled: a subscriber long-polls (one update per batch it receives) instead of asking every
0.5 s, the ``llm.chat`` activity can publish what the model writes while it writes (one signal per
batch), and the stream's dedup makes a retried publish harmless. Publishing an event from the
workflow is workflow state only (no command), so recorded histories replay unchanged.

The stream keeps its latest ``STREAM_ITEMS_KEPT`` items; ``state()`` hands them (and the
publishers' dedup state) to the next run through ``CarriedState.stream``.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowStreamState

    from models.events import ConversationEvent
    from models.streaming import EVENTS_TOPIC, STREAM_ITEMS_KEPT


class ConversationStream:
    """Must be built from the workflow's ``@workflow.init`` (the SDK checks the caller is an
    ``__init__``: this one, called from there)."""

    def __init__(self, prior: WorkflowStreamState | None) -> None:
        self._stream = WorkflowStream(prior_state=prior)
        self._events = self._stream.topic(EVENTS_TOPIC, type=ConversationEvent)

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
