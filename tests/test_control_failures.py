"""``until_ready``: an update Temporal refuses with ``WorkflowNotReady`` (the workflow's task is being
retried after one failed or timed out — seen under load with two workers, bench.conversation) is
sent again; any other refusal is not, and a refusal that lasts past its window is raised."""

from __future__ import annotations

import pytest
from google.protobuf.any_pb2 import Any as AnyProto
from temporalio.api.common.v1 import GrpcStatus
from temporalio.api.errordetails.v1 import WorkflowNotReadyFailure
from temporalio.service import RPCError, RPCStatusCode

from control.failures import rpc_failure, until_ready
from control.errors import TemporalUnavailable


def refusal(not_ready: bool) -> RPCError:
    status = GrpcStatus(code=RPCStatusCode.FAILED_PRECONDITION, message="refused")
    if not_ready:
        detail = AnyProto()
        detail.Pack(WorkflowNotReadyFailure())
        status.details.append(detail)
    return RPCError("Unable to perform workflow execution update due to Workflow Task in failed state.",
                    RPCStatusCode.FAILED_PRECONDITION, status.SerializeToString())  # fmt: skip


class Flaky:
    def __init__(self, refusals: list[RPCError]) -> None:
        self.refusals, self.calls = refusals, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.refusals:
            raise self.refusals.pop(0)
        return "accepted"


async def test_a_workflow_not_ready_is_sent_again_until_accepted() -> None:
    start = Flaky([refusal(True), refusal(True)])
    assert await until_ready(start) == "accepted" and start.calls == 3


async def test_another_refusal_is_raised_at_once() -> None:
    start = Flaky([refusal(False)])
    with pytest.raises(RPCError):
        await until_ready(start)
    assert start.calls == 1


async def test_a_refusal_that_lasts_is_raised_after_its_window_and_says_what_it_is() -> None:
    start = Flaky([refusal(True)] * 50)
    with pytest.raises(RPCError) as raised:
        await until_ready(start, within_s=0)  # no room for a pause: the first refusal is the answer
    assert start.calls == 1
    failure = rpc_failure(raised.value, "sending the message")
    assert isinstance(failure, TemporalUnavailable) and "Workflow Task in failed state" in str(failure)
