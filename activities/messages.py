"""The private messages' side effects: ``messages.record`` and ``messages.workload`` beside the
store (main role), ``messages.consider`` beside the model servers (llm role).

``messages.consider`` is the last step of the accept rule (``workflows/message_acceptance.py``):
the recipient's own model, given its template's description and expertise and the request, answers
``{"accept": bool, "reason": str}`` (structured output, temperature 0). An answer that does not fit
is a refusal that says so: a message is never accepted or refused silently.
"""

from __future__ import annotations

import asyncio
import json

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.llm.chat_models import LlmProviders
from activities.llm.errors import LlmError
from activities.llm.provider import PromptMessage
from config.settings import Settings
from config.templates import InvalidAgentError, UnknownAgentError, load_template
from models.private_messages import AcceptAnswer, Admission, ConsiderRequest, MessageStatus, WorkloadRequest
from store.private_messages import PrivateMessageStore

ANSWER_TOKENS = 200
INSTRUCTIONS = """You are the agent "{agent}": {description}
Your expertise: {expertise}.
Another party sends you a private request. Decide whether you accept to work on it: accept when it
is within your expertise and you can do it; refuse otherwise. Answer only JSON:
{{"accept": true or false, "reason": "one short sentence"}}"""


class MessageRecordActivities:
    def __init__(self, store: PrivateMessageStore) -> None:
        self._store = store

    def all(self) -> list:
        return [self.record, self.workload, self.admit]

    @activity.defn(name="messages.record")
    async def record(self, status: MessageStatus) -> None:
        """Idempotent: an upsert by message id that never moves a finished message back."""
        await asyncio.to_thread(self._store.record, status)

    @activity.defn(name="messages.workload")
    async def workload(self, request: WorkloadRequest) -> int:
        """How many messages the recipient accepted and has not finished (this one aside)."""
        return await asyncio.to_thread(self._store.open_for, request.recipient, request.exclude_message_id)


    @activity.defn(name="messages.admit")
    async def admit(self, admission: Admission) -> int | None:
        """Accepted (None) unless the recipient has ``max_open`` open messages (their count): the
        count and the write in one locked transaction. A retry of a done admission is admitted."""
        return await asyncio.to_thread(self._store.admit, admission.status, admission.max_open)


class MessageModelActivities:
    def __init__(self, settings: Settings, providers: LlmProviders) -> None:
        self._settings = settings
        self._providers = providers

    def all(self) -> list:
        return [self.consider]

    @activity.defn(name="messages.consider")
    async def consider(self, request: ConsiderRequest) -> AcceptAnswer:
        try:
            template = load_template(request.recipient, self._settings.agents_dir)
        except (UnknownAgentError, InvalidAgentError) as err:
            return AcceptAnswer(accept=False, reason=f"no such agent: {err}"[:500])
        system = INSTRUCTIONS.format(agent=template.name, description=template.description or "an agent",
                                     expertise=", ".join(template.expertise) or "not stated")  # fmt: skip
        asked = [PromptMessage("system", system), PromptMessage("user", f"From {request.sender}:\n{request.content}")]
        try:
            model = self._providers.chat_model(template).with_max_tokens(ANSWER_TOKENS)
            answer = await model.structured(asked, AcceptAnswer)
        except LlmError as err:
            raise ApplicationError(f"the recipient's model did not answer: {err}", type="ModelUnavailable",
                                   non_retryable=not err.retryable) from None  # fmt: skip
        try:
            return AcceptAnswer.model_validate(json.loads(answer))
        except ValueError as err:
            return AcceptAnswer(accept=False, reason=f"the recipient's model gave no readable answer: {err}"[:500])
