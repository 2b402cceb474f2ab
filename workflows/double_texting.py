"""Double-texting: what a message sent while a turn runs does (``models.streaming.DoubleTexting``).

``enqueue`` waits its turn (nothing to do here); ``reject`` refuses it in ``send_message``'s
validator (so nothing enters history) with the running turn; ``interrupt`` cancels the running
model step (``ConversationWorkflow._model_step``), whose ``llm.chat`` fails with ``Interrupted``
carrying the text written so far. Pure: runs inside the workflow.

Only ``send_message`` (a caller waiting for an answer: API, CLI, ``temporal workflow update``)
follows the policy; ``inject`` and ``request_turn`` (signals from operators and channels) always
queue. An interrupt cancels a model step only: a turn waiting for a person or running a tool ends
after that step, before its next model step. A conversation started with ``stream_tokens: false``
cannot be interrupted (its model steps are plain activity calls): there ``interrupt`` queues.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.exceptions import ActivityError, ApplicationError

    from models.conversation import ConversationState, QueuedMessage
    from models.streaming import INTERRUPTED, INTERRUPTED_MARK, TurnRunningDetails

PREVIEW_CHARS = 200


def turn_running(turn: int, state: ConversationState, answering: QueuedMessage) -> ApplicationError:
    """``reject``: the refusal, naming the running turn (the API answers 409 with it)."""
    details = TurnRunningDetails(turn=turn, state=state.value, message=answering.shown[:PREVIEW_CHARS])
    return ApplicationError(
        f"turn {turn} is running ({state.value}); this conversation rejects messages sent meanwhile "
        "(double_texting: reject): send it again when the turn is over",
        details.model_dump(), type="TurnRunning", non_retryable=True,
    )  # fmt: skip


def partial_text(err: ActivityError) -> str:
    """What the interrupted step had written: the ``Interrupted`` failure's detail; nothing when the
    step was cancelled before it began."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == INTERRUPTED and cause.details:
        detail = cause.details[0]
        return detail if isinstance(detail, str) else ""
    return ""


def marked(partial: str) -> str:
    """The interrupted reply as the transcript keeps it: the text so far, then the mark."""
    return f"{partial}{INTERRUPTED_MARK}" if partial else INTERRUPTED_MARK.strip()
