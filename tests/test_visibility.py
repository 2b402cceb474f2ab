"""The one builder of visibility queries (``control/visibility.py``); the listings that use it run
against the real server in test_api.py, test_monitoring.py and test_observability.py."""

from __future__ import annotations

import pytest

from control.visibility import ChannelFilter, ConversationFilter
from models.channel import ChannelState
from models.conversation import ConversationState


def test_every_filter_is_one_clause_of_one_query() -> None:
    assert ConversationFilter().query() == "WorkflowType = 'ConversationWorkflow'"
    assert ConversationFilter(
        task_queue="daemonflow", running=True, state=ConversationState.AWAITING_APPROVAL, agent="developer",
        awaiting_approval=True,
    ).query() == (
        "WorkflowType = 'ConversationWorkflow' AND TaskQueue = 'daemonflow' AND ExecutionStatus = 'Running' "
        "AND DaemonflowState = 'awaiting_approval' AND DaemonflowAgent = 'developer' AND DaemonflowAwaitingApproval = true"
    )  # fmt: skip
    finished = ConversationFilter(running=False, awaiting_approval=False).query()
    assert finished.endswith("ExecutionStatus != 'Running' AND DaemonflowAwaitingApproval = false")


def test_channels_and_their_agents_are_filtered_by_the_same_builder() -> None:
    assert ConversationFilter(channel="ops").query() == "WorkflowType = 'ConversationWorkflow' AND DaemonflowChannel = 'ops'"
    assert ChannelFilter(
        task_queue="daemonflow", running=True, state=ChannelState.PAUSED, member="analyst", awaiting_approval=False,
    ).query() == (
        "WorkflowType = 'ChannelWorkflow' AND TaskQueue = 'daemonflow' AND ExecutionStatus = 'Running' "
        "AND DaemonflowState = 'paused' AND DaemonflowMembers = 'analyst' AND DaemonflowAwaitingApproval = false"
    )  # fmt: skip
    with pytest.raises(ValueError, match="cannot be used in a visibility query"):
        ChannelFilter(member="a'b").query()


@pytest.mark.parametrize("value", ["x' OR WorkflowType != 'y", 'a"b', "back\\slash"])
def test_values_a_query_could_not_carry_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="cannot be used in a visibility query"):
        ConversationFilter(agent=value).query()
    with pytest.raises(ValueError):
        ConversationFilter(task_queue=value).query()
