"""Scoring a hypothetical message (``POST /relevance/calculate``) through the workers.

``RelevanceCalculationWorkflow`` runs the same similarity activity and pure scoring a channel runs,
on the workers (their embedding model, cache and llm queue), and returns the whole breakdown;
nothing is posted or recorded. With a channel, its ``scoring_context`` query says who spoke when
and what was said recently, so the answer is what that channel would decide now.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import Client, WorkflowFailureError

from control.channel import Channel
from control.errors import CalculationFailed
from control.failures import answered
from models.relevance_calculation import CalculationRequest
from models.relevance_scoring import PostRelevance
from workflows.failures import failure_message
from workflows.relevance_calculation import RelevanceCalculationWorkflow

CALCULATION_TIMEOUT = timedelta(seconds=60)
"""The whole scoring, embeddings included (a cold embedding model takes seconds to load)."""


class RelevanceCalculator:
    def __init__(self, client: Client, task_queue: str, llm_queue: str | None = None) -> None:
        self._client = client
        self._task_queue = task_queue
        self._llm_queue = llm_queue

    async def calculate(self, request: CalculationRequest, channel: Channel | None = None) -> PostRelevance:
        if channel is not None:
            request = request.model_copy(update={"channel": await channel.scoring_context()})
        running = self._client.execute_workflow(
            RelevanceCalculationWorkflow.run, args=[request, self._llm_queue], id=f"relevance-{uuid.uuid4().hex[:12]}",
            task_queue=self._task_queue, execution_timeout=CALCULATION_TIMEOUT,
            static_summary=f"score a hypothetical message for {', '.join(request.agents)}"[:200],
        )  # fmt: skip
        try:
            return await answered(running, "scoring the message")
        except WorkflowFailureError as err:
            raise CalculationFailed(f"the message could not be scored: {failure_message(err.cause)}") from err
