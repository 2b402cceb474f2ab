"""A test-only workflow that scores one post the way a channel workflow is meant to: the
similarities from the ``relevance.similarities`` activity (recorded in history), the scoring
itself in the workflow with the workflow's clock, the decisions to ``relevance.record``.

It proves the engine runs inside Temporal's workflow sandbox and replays deterministically; it is
not a product workflow (the channel workflow of issue 13 is built on the same calls).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.relevance import RelevanceConfig
    from models.relevance_records import RecordRelevance
    from models.relevance_scoring import (
        AgentProfile,
        AgentState,
        PostContext,
        PostRelevance,
        Similarities,
        SimilarityRequest,
        TextRef,
    )
    from relevance import score_post


class ProbeInput(BaseModel):
    config: RelevanceConfig = Field(default_factory=RelevanceConfig)
    post: PostContext
    """Its ``at`` is replaced by the workflow's time when the probe scores it."""
    text: TextRef
    recent: dict[str, TextRef] = Field(default_factory=dict)
    agents: list[AgentState]
    fallback_after_attempts: int = 3


@workflow.defn(name="RelevanceProbe")
class RelevanceProbeWorkflow:
    @workflow.run
    async def run(self, probe: ProbeInput) -> PostRelevance:
        request = SimilarityRequest(
            post=probe.text,
            recent=probe.recent,
            agents=[AgentProfile(agent=state.agent) for state in probe.agents],
            fallback_after_attempts=probe.fallback_after_attempts,
        )
        similarities = await workflow.execute_activity(
            "relevance.similarities", request, result_type=Similarities,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0,
                                     maximum_attempts=probe.fallback_after_attempts + 2),
        )
        post = probe.post.model_copy(update={"at": workflow.now()})
        result = score_post(probe.config, post, probe.agents, similarities)
        await workflow.execute_activity(
            "relevance.record", RecordRelevance(post=result, at=post.at), result_type=list[int],
            start_to_close_timeout=timedelta(seconds=30),
        )
        return result
