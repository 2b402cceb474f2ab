"""The conversation's side of turn requests (``models.turn_requests``): whether to accept one, and
the reports it sends back.

``ConversationWorkflow.request_turn`` queues an accepted request like a message; when its turn is
over ``turn_done`` says how it went, and the conversation's ``Outbox`` signals the requester (a
requester that is gone cannot be told: the failed signal is logged, never fatal). Pure.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.conversation import ConversationState, PendingApproval, QueuedMessage, TurnResult
    from models.turn_reports import REPLY_PREVIEW_CHARS, TurnDone, TurnOutcome, TurnProgressNote, WaitingCall
    from models.turn_requests import TurnRequest

WAITING_STATES = (ConversationState.AWAITING_APPROVAL, ConversationState.PAUSED)


def refusal(request: TurnRequest, max_chars: int) -> str | None:
    """Why ``request`` cannot be queued, or None."""
    if request.content_ref is None and not request.content.strip():
        return "a turn request needs content or content_ref"
    length = len(request.content) + (request.content_ref.chars if request.content_ref else 0)
    if length > max_chars:
        return f"the requested message is {length} characters; the limit is {max_chars}"
    return None


def queued(request: TurnRequest, item_id: str) -> QueuedMessage:
    """The queue entry of an accepted request; its request id doubles as the turn id ``watch_turn``
    follows."""
    return QueuedMessage(
        id=item_id, content=request.content, content_ref=request.content_ref, request_id=request.request_id,
        update_id=request.request_id, author=request.author, reply_to=request.reply_to, hops=request.hops,
    )  # fmt: skip


def turn_done(conversation_id: str, item: QueuedMessage, result: TurnResult | ApplicationError,
              reply_seq: int | None) -> TurnDone:  # fmt: skip
    """The report on ``item``'s turn: its reply's preview and place in the store, or why it has none."""
    assert item.request_id is not None
    if isinstance(result, ApplicationError):
        outcome = TurnOutcome.ENDED if result.type == "ConversationEnded" else TurnOutcome.FAILED
        return TurnDone(request_id=item.request_id, conversation_id=conversation_id, outcome=outcome,
                        error=result.message)  # fmt: skip
    return TurnDone(
        request_id=item.request_id, conversation_id=conversation_id, outcome=TurnOutcome.ANSWERED, turn=result.turn,
        reply_seq=reply_seq if result.reply else None, reply=result.reply[:REPLY_PREVIEW_CHARS],
        reply_chars=len(result.reply), usage=result.usage, tool_calls=len(result.tool_calls),
    )  # fmt: skip


def not_answered(conversation_id: str, request_id: str, outcome: TurnOutcome, error: str) -> TurnDone:
    return TurnDone(request_id=request_id, conversation_id=conversation_id, outcome=outcome, error=error)


def progress_note(conversation_id: str, item: QueuedMessage, state: ConversationState,
                  pending: list[PendingApproval], pause_reason: str | None) -> TurnProgressNote:  # fmt: skip
    assert item.request_id is not None
    waiting = [WaitingCall(tool_call_id=p.tool_call_id, tool=p.tool, args_hash=p.args_hash) for p in pending]
    return TurnProgressNote(
        request_id=item.request_id, conversation_id=conversation_id, state=state,
        waiting=waiting if state == ConversationState.AWAITING_APPROVAL else [],
        pause_reason=pause_reason if state == ConversationState.PAUSED else None,
    )  # fmt: skip


def progress_changed(before: ConversationState, after: ConversationState) -> bool:
    """A requester hears when its turn starts or stops waiting for a person or a resume."""
    return before != after and (before in WAITING_STATES or after in WAITING_STATES)
