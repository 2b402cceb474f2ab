"""The rules a decision must meet (``workflows/decisions.py``), shared by the ``approve`` signal and
the ``decide`` update: pure, so judged here without a server; the workflow tests drive both paths."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.conversation import Approve, DecidedCall, PendingApproval, RejectionReason
from workflows.conversation import args_hash
from workflows.decisions import ignored_line, rejection

ARGUMENTS = {"command": "rm -r build"}
WAITING = {"2-0": PendingApproval(tool_call_id="2-0", tool="run_command", arguments=ARGUMENTS, args_hash=args_hash(ARGUMENTS))}
AT = datetime(2025, 8, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("decision", "reason"),
    [
        (Approve(tool_call_id="7-1", decision="approve"), RejectionReason.UNKNOWN_CALL),
        (Approve(tool_call_id="2-0", decision="approve", arguments_hash="0" * 64), RejectionReason.ARGUMENTS_CHANGED),
        (Approve(tool_call_id="2-0", decision="edit"), RejectionReason.EDIT_WITHOUT_ARGUMENTS),
        (Approve(tool_call_id="2-0", decision="approve", arguments={"command": "rm -r /"}), RejectionReason.ARGUMENTS_NOT_SHOWN),
        (Approve(tool_call_id="2-0", decision="approve_always", arguments={"command": "ls"}), RejectionReason.ARGUMENTS_NOT_SHOWN),
    ],
)
def test_void_decisions_are_refused_with_their_reason(decision: Approve, reason: RejectionReason) -> None:
    refused = rejection(decision, WAITING, [])
    assert refused is not None and refused.reason == reason and refused.tool_call_id == decision.tool_call_id
    assert refused.waiting == ["2-0"]


@pytest.mark.parametrize(
    "decision",
    [
        Approve(tool_call_id="2-0", decision="approve"),
        Approve(tool_call_id="2-0", decision="approve", arguments=ARGUMENTS, arguments_hash=args_hash(ARGUMENTS)),
        Approve(tool_call_id="2-0", decision="approve_always"),
        Approve(tool_call_id="2-0", decision="deny", reason="no"),
        Approve(tool_call_id="2-0", decision="edit", arguments={"command": "rm -r build/cache"}),
    ],
)
def test_valid_decisions_apply(decision: Approve) -> None:
    assert rejection(decision, WAITING, []) is None


def test_a_decided_call_stays_decided_even_while_it_still_shows_as_waiting() -> None:
    """Two decisions in one workflow task: the first applies, the second is told who won."""
    decided = [DecidedCall(tool_call_id="2-0", decision="deny", approver="bob", at=AT)]
    refused = rejection(Approve(tool_call_id="2-0", decision="approve", approver="carol"), WAITING, decided)
    assert refused is not None and refused.reason == RejectionReason.ALREADY_DECIDED
    assert refused.decided == decided[0] and refused.waiting == []
    assert refused.detail == "already decided: deny by bob at 2025-08-01T12:00:00+00:00"
    assert ignored_line(Approve(tool_call_id="2-0", decision="approve", approver="carol"), refused) == (
        "2-0 (approve by carol): already decided: deny by bob at 2025-08-01T12:00:00+00:00"
    )


def test_a_timed_out_call_is_decided_by_nobody() -> None:
    decided = [DecidedCall(tool_call_id="2-0", decision="timeout", at=AT)]
    refused = rejection(Approve(tool_call_id="2-0", decision="approve"), {}, decided)
    assert refused is not None and refused.detail.startswith("already decided: timeout at ")
