"""RelevanceCalculationWorkflow: a hypothetical message scored as a channel would score it now.

Short-lived (one per ``POST /relevance/calculate``): the configuration as it stands
(``relevance.configuration``), the similarities from the same activity channels use (on the llm
queue, with the same embedding cache), the pure scoring. It posts and records nothing; its own
history holds the message, which is why the API takes at most ``INLINE_TEXT_MAX`` characters.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.relevance import RelevanceActivities
    from activities.relevance.settings import RelevanceSettingsActivities
    from models.relevance_calculation import CalculationRequest
    from models.relevance_scoring import AgentProfile, AgentState, PostContext, PostRelevance, SimilarityRequest, TextRef
    from relevance import find_mentions, score_post
    from workflows.activity_config import SIMILARITY_CALL, STORE_CALL
    from workflows.channel_scoring import effective_config, recent_refs

HYPOTHETICAL = "hypothetical"


@workflow.defn(name="RelevanceCalculationWorkflow")
class RelevanceCalculationWorkflow:
    @workflow.run
    async def run(self, request: CalculationRequest, llm_queue: str | None = None) -> PostRelevance:
        now = await workflow.execute_activity_method(RelevanceSettingsActivities.configuration,
                                                     summary="relevance configuration", **STORE_CALL)  # fmt: skip
        channel = request.channel
        config = effective_config(channel.defaults if channel and channel.defaults else now.defaults, now.thresholds,
                                  channel.overrides if channel else None, channel.channel_id if channel else HYPOTHETICAL)
        known = {state.agent: state for state in channel.agents} if channel else {}
        profiles = {p.agent: p for p in channel.profiles} if channel else {}
        similarities = await workflow.execute_activity_method(
            RelevanceActivities.similarities,
            SimilarityRequest(post=TextRef(text=request.content),
                              recent=recent_refs(channel.channel_id, channel.recent) if channel else {},
                              agents=[profiles.get(agent, AgentProfile(agent=agent)) for agent in request.agents]),
            summary=f"similarities for {len(request.agents)} agents", task_queue=llm_queue, **SIMILARITY_CALL,
        )  # fmt: skip
        members = [*(channel.members if channel else []), *request.agents]
        post = PostContext(
            channel_id=channel.channel_id if channel else HYPOTHETICAL, message_id=HYPOTHETICAL, author=request.author,
            author_kind=request.author_kind, at=workflow.now(), reply_to=request.reply_to,
            mentions=list(dict.fromkeys([*request.mentions, *find_mentions(request.content, members)])),
            recent=channel.recent if channel else [],
        )  # fmt: skip
        states = [known.get(agent, AgentState(agent=agent)) for agent in request.agents]
        return score_post(config, post, states, similarities)
