"""Transcript activities: the conversation's records in the store (open, append, write, close)."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.tools.catalog import specs_for
from config.policy import PolicyError, parse_rules
from config.settings import Settings
from models.agent import AgentTemplate
from models.policy import PolicySet
from config.templates import InvalidAgentError, UnknownAgentError, load_template
from models.transcript import AppendMessage, CloseConversation, OpenConversation, OpenedConversation, Routing
from models.turn_writes import TurnWrites
from store.agent_hints import AgentHintStore
from store.agent_pauses import AgentPauseStore
from store.transcript import TranscriptStore
from store.turn_writes import TurnWriter


class TranscriptActivities:
    def __init__(self, store: TranscriptStore, settings: Settings, policy: PolicySet,
                 writer: TurnWriter | None = None) -> None:
        self._store = store
        self._settings = settings
        self._policy = policy
        self._hints = AgentHintStore(store.engine)
        self._writer = writer or TurnWriter(store.engine)
        self._pauses = AgentPauseStore(store.engine)

    @activity.defn(name="transcript.open")
    async def open(self, request: OpenConversation) -> OpenedConversation:
        """Resolve the agent template once per conversation; a bad name fails the start clearly."""
        try:
            template = load_template(request.agent, self._settings.agents_dir)
        except (UnknownAgentError, InvalidAgentError) as err:
            raise ApplicationError(str(err), type="UnknownAgent", non_retryable=True) from err
        try:
            overrides = parse_rules(request.policy, f"policy overrides of conversation {request.conversation_id}")
        except PolicyError as err:
            raise ApplicationError(str(err), type="InvalidPolicy", non_retryable=True) from err
        template = template.model_copy(
            update={
                "model": request.model or template.model or self._settings.model,
                "system_prompt": request.system_prompt or template.system_prompt,
                "max_steps_per_turn": await asyncio.to_thread(self._step_budget, template),
            }
        )
        next_seq = await asyncio.to_thread(
            self._store.open_conversation,
            request.conversation_id,
            template.name,
            template.model,
            request.user_id,
        )
        paused = await asyncio.to_thread(self._pauses.paused, [template.name])
        return OpenedConversation(
            template=template,
            next_seq=next_seq,
            tools=specs_for(template.tools),
            policy=self._policy,
            overrides=overrides,
            routing=Routing(
                llm_queue=self._settings.llm_task_queue or None,
                sandbox_queue=self._settings.sandbox_task_queue or None,
            ),
            archive_after_s=self._settings.archive_after_s,
            agent_paused=paused.get(template.name),
        )

    def _step_budget(self, template: AgentTemplate) -> int | None:
        """The template's step budget, lowered by an optimisation hint in force for the agent (a
        hint only ever lowers it; see ``store/agent_hints.py``)."""
        hint = self._hints.step_budget(template.name)
        budgets = [b for b in (template.max_steps_per_turn, hint) if b is not None]
        return min(budgets) if budgets else None

    @activity.defn(name="transcript.append")
    async def append(self, request: AppendMessage) -> None:
        """One message (histories recorded before a turn's writes went together)."""
        await asyncio.to_thread(self._writer.write, TurnWrites(conversation_id=request.conversation_id,
                                                               messages=[request]))

    @activity.defn(name="transcript.write")
    async def write(self, writes: TurnWrites) -> None:
        """A turn's pending messages and audit rows when no model call follows to carry them: the
        turn ends, or waits for a person or a resume (``models/turn_writes.py``)."""
        await asyncio.to_thread(self._writer.write, writes)

    @activity.defn(name="transcript.close")
    async def close(self, request: CloseConversation) -> None:
        await asyncio.to_thread(self._store.end_conversation, request.conversation_id, request.reason)

    def all(self) -> list:
        return [self.open, self.append, self.write, self.close]
