"""The similarity activity as a workflow step, for a channel scoring a message and a private
message checking its recipient's expertise.

On the llm queue when it is split off (``DAEMONFLOW_LLM_TASK_QUEUE``); else a local activity of
this worker, which then serves the llm role too: one workflow task less, what a post or a message
costs most (``bench.channel``, ``bench.messages``).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.relevance import RelevanceActivities
    from models.relevance_scoring import Similarities, SimilarityRequest
    from workflows.activity_config import SIMILARITY_CALL, SIMILARITY_LOCAL
    from workflows.local_steps import LocalSteps


async def similarities(request: SimilarityRequest, summary: str, llm_queue: str | None,
                       steps: LocalSteps | None = None, local_allowed: bool = True) -> Similarities:
    """``local_allowed`` false keeps the ordinary activity (histories recorded before a workflow
    ran it locally); ``steps``, the workflow's other local activities it must not overlap."""
    if llm_queue is None and local_allowed:
        if steps is not None:
            return await steps.run(RelevanceActivities.similarities, request, summary=summary, config=SIMILARITY_LOCAL)
        return await workflow.execute_local_activity_method(RelevanceActivities.similarities, request,
                                                            summary=summary, **SIMILARITY_LOCAL)  # fmt: skip
    return await workflow.execute_activity_method(RelevanceActivities.similarities, request, summary=summary,
                                                  task_queue=llm_queue, **SIMILARITY_CALL)  # fmt: skip
