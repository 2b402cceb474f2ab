"""The rules a person's decision on a waiting tool call must meet, for the signal and the update alike.

``approve`` (a signal: the plain `temporal` CLI drives it, nobody hears back) and ``decide`` (an
update with a validator: the API, the admin page and ``daemonflow approve|deny`` get the applied
decision or a typed rejection) run these same rules, so a decision means the same thing whichever
way it arrives. Pure: it reads what waits and what was decided, and returns why a decision is void.
"""

from __future__ import annotations

from models.conversation import Approve, DecidedCall, DecisionRejection, PendingApproval, RejectionReason


def rejection(
    decision: Approve, pending: dict[str, PendingApproval], decided: list[DecidedCall]
) -> DecisionRejection | None:
    """Why ``decision`` cannot apply to what waits now, or None when it can."""
    earlier = next((d for d in reversed(decided) if d.tool_call_id == decision.tool_call_id), None)
    waiting = sorted(call_id for call_id in pending if earlier is None or call_id != earlier.tool_call_id)
    if earlier is not None:  # checked first: a decision taken moments ago still shows as pending
        by = f" by {earlier.approver}" if earlier.approver else ""
        return DecisionRejection(
            tool_call_id=decision.tool_call_id, reason=RejectionReason.ALREADY_DECIDED, decided=earlier,
            detail=f"already decided: {earlier.decision}{by} at {earlier.at.isoformat()}", waiting=waiting,
        )  # fmt: skip
    call = pending.get(decision.tool_call_id)
    if call is None:
        return DecisionRejection(
            tool_call_id=decision.tool_call_id, reason=RejectionReason.UNKNOWN_CALL, waiting=waiting,
            detail=f"no tool call waits under this id (waiting: {', '.join(waiting) or 'none'})",
        )  # fmt: skip
    if decision.arguments_hash and decision.arguments_hash != call.args_hash:
        return DecisionRejection(
            tool_call_id=decision.tool_call_id, reason=RejectionReason.ARGUMENTS_CHANGED, args_hash=call.args_hash,
            detail="the arguments shown to the approver are not the ones waiting; look at the call again",
            waiting=waiting,
        )  # fmt: skip
    if decision.decision == "edit" and decision.arguments is None:
        return DecisionRejection(
            tool_call_id=decision.tool_call_id, reason=RejectionReason.EDIT_WITHOUT_ARGUMENTS,
            detail="an edit needs the new arguments", waiting=waiting,
        )  # fmt: skip
    if decision.decision in ("approve", "approve_always") and decision.arguments not in (None, call.arguments):
        return DecisionRejection(
            tool_call_id=decision.tool_call_id, reason=RejectionReason.ARGUMENTS_NOT_SHOWN,
            detail=f"{decision.decision} runs the arguments shown; use decision=edit to change them", waiting=waiting,
        )  # fmt: skip
    return None


def ignored_line(decision: Approve, void: DecisionRejection) -> str:
    """How ``status.ignored_approvals`` lists a void signal."""
    return f"{decision.tool_call_id} ({decision.decision} by {decision.approver}): {void.detail}"
