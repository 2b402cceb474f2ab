"""A plain workflow that asks conversations for turns (``request_turn``) and collects the reports:
the turn-request primitive driven by a workflow that is not a channel, as issues 14 and 15 will."""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.turn_reports import TurnDone, TurnProgressNote
    from models.turn_requests import TurnRequest


class RequesterPlan(BaseModel):
    conversation_workflow_id: str
    requests: list[TurnRequest]
    expect: int
    """How many ``TurnDone`` reports to wait for before returning."""


class RequesterResult(BaseModel):
    done: list[TurnDone] = Field(default_factory=list)
    progress: list[TurnProgressNote] = Field(default_factory=list)


@workflow.defn(name="TurnRequester")
class TurnRequester:
    def __init__(self) -> None:
        self._result = RequesterResult()

    @workflow.run
    async def run(self, plan: RequesterPlan) -> RequesterResult:
        conversation = workflow.get_external_workflow_handle(plan.conversation_workflow_id)
        for request in plan.requests:
            await conversation.signal("request_turn", request)
        await workflow.wait_condition(lambda: len(self._result.done) >= plan.expect)
        return self._result

    @workflow.signal
    def turn_done(self, done: TurnDone) -> None:
        self._result.done.append(done)

    @workflow.signal
    def turn_progress(self, note: TurnProgressNote) -> None:
        self._result.progress.append(note)

    @workflow.query
    def seen(self) -> RequesterResult:
        return self._result
