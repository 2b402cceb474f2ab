"""ConversationWorkflow: one durable conversation with an agent.

The workflow decides and waits; every side effect is an activity, called by reference with its
kind's typed config (``workflows/activity_config.py``). Message bodies live in the store and
activities pass only sequence numbers and small results, so history grows by a bounded number of
small events per turn. Messages arrive through the ``send_message`` update (or ``inject``), wait in
a queue and are answered one turn at a time; pause, resume, inject and end are honoured between the
steps of a turn.

State: everything that outlives a run is one ``CarriedState`` (``self._carried``), handed whole to
the next run by continue-as-new; the other attributes live for one run (calls waiting for a person,
update results, what operators see).

Who talks to it: the ``control`` package (API, CLI), the plain `temporal` CLI, and tests. Updates
answer the caller (``send_message`` → the turn, ``decide`` → the applied decision or a typed
rejection, ``watch_turn`` → as soon as a turn waits for a person); signals only deliver.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, ChildWorkflowError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.audit import AuditActivities
    from activities.memory.activities import MemoryActivities
    from activities.tools.runner import ToolActivities
    from activities.transcript import TranscriptActivities
    from models.agent import AgentTemplate
    from models.agent_control import is_agent_pause
    from models.archive import ARCHIVE_PATCH, ArchiveKind, ArchiveRecord
    from models.conversation import (
        DECIDED_CALLS_KEPT,
        WORKFLOW_ID_PREFIX,
        Approve,
        CarriedState,
        ConversationInput,
        ConversationState,
        ConversationSummary,
        DecidedCall,
        DecisionApplied,
        DecisionRejection,
        DelegatedSettings,
        End,
        HistoryQuery,
        Inject,
        MessageView,
        Pause,
        PendingApproval,
        QueuedMessage,
        SendMessage,
        SetAutoAccept,
        Status,
        ToolCallOutcome,
        TurnProgress,
        TurnResult,
        Usage,
        WatchTurn,
    )
    from models.events import EVENT_PREVIEW_CHARS, EVENTS_KEPT, ConversationEvent, EventsQuery, EventType
    from models.llm import ChatRequest, ChatResult, ToolCallRequest
    from models.memory import (
        MemoryToolCall,
        RecallRequest,
        RecallResult,
        StoredMemories,
        StoreTurnMemories,
        UnextractedTurns,
    )
    from models.payloads import PayloadRef, content_bytes
    from models.prompt_config import PromptConfig, prompt_ref
    from models.policy import Decision, ToolCallContext, Verdict
    from models.tools import ActionRecord, RunsOn, ToolCallInput, ToolResult, ToolSpec
    from models.transcript import AppendMessage, CloseConversation, OpenConversation
    from models.turn_reports import TurnDone, TurnOutcome, TurnProgressNote
    from models.turn_requests import REQUESTS_REMEMBERED, ReplyAddress, TurnRequest
    from models.turn_writes import TurnWrites
    from workflows import archiving, search_attributes
    from workflows.idle_clock import IdleClock
    from workflows.extraction_backlog import CARRY_PATCH, ExtractionBacklog
    from workflows.model_step import local_step, quick, start_model_step, step_result
    from workflows.activity_config import MEMORY_CALL, STORE_CALL, memory_tool_call
    from workflows.arguments import argument_errors
    from policy import legacy
    from policy.approval import rule_for_approve_always
    from policy.calls import CONTENT_KEYS
    from policy.engine import evaluate
    from workflows.decisions import ignored_line, rejection
    from workflows.conversation_stream import ConversationStream
    from workflows import double_texting
    from models.streaming import INTERRUPTED, WATCHED_QUERY, DoubleTexting, SetDoubleTexting
    from workflows.failures import failure_message
    from workflows.outbox import Outbox
    from workflows.message_tool import MessageTool
    from models.private_messages import MessageUpdate
    from workflows.tool_execution import (
        STEPS,
        ToolExecutionWorkflow,
        run_timeout,
        tool_call,
        tool_failure,
        tool_workflow_id,
    )
    from workflows.queue_bound import QUEUE_FULL, QUEUE_PATCH, RUN_ENDING, overdue, queue_refusal
    from workflows.turn_requests import (
        not_answered,
        progress_changed,
        progress_note,
        queued,
        refusal,
        turn_done,
    )

RECENT_MESSAGES_KEPT = 50
IGNORED_APPROVALS_KEPT = 20
RECENT_MESSAGE_CHARS = 2_000
MODEL_RETRY_FIRST_DELAY_S = 2
MODEL_RETRY_MAX_DELAY_S = 60
FINAL_ANSWER = "final_answer"
MEMORY_PATCH = "memory-v1"
"""Recall before and extraction after each turn; histories recorded before it replay without."""
TURN_PATCH = "one-trip-turns"
"""One activity per model step: ``llm.chat`` writes the turn's pending messages and audit rows and
recalls memories before it asks the model (``activities/turn_prelude.py``), the template travels by
digest, single-step tool calls are activities of the conversation, and memories are extracted when
the conversation is idle or every few turns, in the background. Histories recorded before it
replay the old way: an activity per write, recall and extraction, and a child workflow per tool call."""
STREAM_PATCH = "token-stream"
"""Model steps publish their tokens to the conversation's Workflow Stream and can be interrupted
(double-texting); histories recorded before it replay with the plain activity call."""
POLICY_ENGINE_PATCH = "policy-engine-2"
"""Calls are judged by ``policy.engine`` (bash-exact reading, exact approve-always); histories
recorded before it replay with the frozen ``policy.legacy`` engine, so their decisions stand."""


class _Ended(Exception):
    """Raised inside a turn when the conversation is ended between two of its steps."""


@workflow.defn(name="ConversationWorkflow")
class ConversationWorkflow:
    @workflow.init
    def __init__(self, input: dict[str, Any] | None = None) -> None:
        try:
            self._input = ConversationInput.model_validate(input or {})
            self._invalid_input: str | None = None
        except ValidationError as err:
            self._input = ConversationInput()
            self._invalid_input = f"invalid ConversationInput: {err}"
        self._carried: CarriedState = self._input.carried or self._first_state()
        self._memory_ids: list[str] = []
        self._final_reply: str | None = None
        """Set by ``final_answer``: the turn ends after this step, with this reply."""
        self._pending: dict[str, PendingApproval] = {}
        self._decisions: dict[str, Approve] = {}
        self._ignored_approvals: list[str] = []
        self._consecutive_auto = 0
        self._running: str | None = None
        self._state = ConversationState.IDLE
        self._shown = ConversationState.IDLE
        """The state the search attributes show (``_show_state``)."""
        self._last_model_s: float | None = None
        """How long the model took to answer the last call (its own time, not the queue's)."""
        self._ended = False
        self._end_reason = ""
        self._turns_this_run = 0
        self._answering: QueuedMessage | None = None
        """The message whose turn runs; ``_unwritten`` too until it is in the transcript."""
        self._unwritten: QueuedMessage | None = None
        self._results: dict[str, TurnResult | ApplicationError] = {}
        # --- one round trip per step (TURN_PATCH) ---
        self._writes = TurnWrites(conversation_id=self._carried.conversation_id)
        """Messages and audit rows decided since the last activity; the next one writes them."""
        self._recall_for: RecallRequest | None = None
        """Recall the next ``llm.chat`` does (the turn's first step)."""
        self._prompt: tuple[str, str] | None = None
        """This run's ``PromptConfig`` text and digest, built once."""
        self._prompt_sent = False
        """Whether a worker has stored the text in this run: later calls send only its digest."""
        self._backlog = ExtractionBacklog(self._extract_turns, self._quiet, self._input.memory_extraction_every,
                                          self._input.memory_extraction_delay_s)
        """Turns answered but not yet read for memories (``workflows/extraction_backlog.py``)."""
        self._reports = Outbox()
        """Reports to requesters (``request_turn``), delivered in order."""
        # --- live streaming and double-texting (issue 16, models/streaming.py) ---
        self._stream = ConversationStream(self._carried.stream, self._carried.stream_polled_at)
        self._interrupt = False
        """A message came under ``interrupt``: the running model step is cancelled."""
        self._messages = MessageTool(self._carried.messages_asking)
        """Private messages this conversation's agent sends and answers (``workflows/message_tool.py``)."""
        self._clock = IdleClock()
        """Archiving after inactivity (``ARCHIVE_PATCH``)."""

    def _first_state(self) -> CarriedState:
        conversation_id = self._input.conversation_id or workflow.info().workflow_id.removeprefix(WORKFLOW_ID_PREFIX)
        state = CarriedState(conversation_id=conversation_id, auto_accept=self._input.auto_accept)
        if self._input.initial_message:
            state.queue.append(QueuedMessage(id="initial", content=self._input.initial_message))
        return state

    @property
    def _template(self) -> AgentTemplate:
        """Set by ``transcript.open`` before the first turn, and carried ever after."""
        assert self._carried.template is not None
        return self._carried.template

    # --- main loop --------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: dict[str, Any] | None = None) -> ConversationSummary:
        if self._invalid_input:
            raise ApplicationError(self._invalid_input, type="InvalidInput", non_retryable=True)
        archives = workflow.patched(ARCHIVE_PATCH)
        if self._input.revive:
            await self._revive()
        if self._carried.template is None:
            await self._open()
        self._backlog.take_over(self._carried.unextracted)
        self._carried.unextracted = None
        workflow.upsert_search_attributes([search_attributes.AGENT.value_set(self._template.name)])
        self._set_state(self._resting_state())
        if archives:
            self._clock.start(self._archive_after_s(), self._carried.last_activity_at)

        while True:
            await workflow.wait_condition(
                lambda: self._ended or self._should_continue_as_new() or self._has_work() or self._clock.due
            )
            if self._ended:
                break
            if self._clock.due and not self._has_work():
                record = await self._archive()
                if record is not None:
                    return ConversationSummary(conversation_id=self._carried.conversation_id, turns=self._carried.turn,
                                               ended_reason=f"archived after {record.idle_s}s idle", archive=record)  # fmt: skip
                continue
            if not self._should_continue_as_new():
                await self._answer(self._carried.queue.pop(0))
                continue
            self._stream.detach()
            await workflow.wait_condition(workflow.all_handlers_finished)
            unextracted = None
            if workflow.patched(CARRY_PATCH):  # the next run extracts what this one has not
                unextracted = await self._backlog.handed_over()
            else:
                await self._backlog.finished()
            await self._reports.delivered()
            if self._ended or not self._should_continue_as_new():
                self._stream.reattach()
                self._backlog.resume()
                continue
            self._carried.unextracted = unextracted
            self._carried.stream = self._stream.state()
            self._carried.stream_polled_at = self._stream.last_poll
            self._carried.last_activity_at = self._clock.last
            workflow.continue_as_new(ConversationInput(**self._input.model_dump(exclude={"carried"}), carried=self._carried))

        return await self._finish()

    def _has_work(self) -> bool:
        return not self._carried.paused and bool(self._carried.queue)

    def _should_continue_as_new(self) -> bool:
        """Only between turns, and never while a caller waits for an answer from this run."""
        return self._run_ends() and not any(item.has_caller for item in self._carried.queue)

    def _run_ends(self) -> bool:
        """The run has answered its turns (or grown enough): it continues as new once it may."""
        return self._turns_this_run >= self._input.turns_per_run or workflow.info().is_continue_as_new_suggested()

    async def _open(self) -> None:
        try:
            opened = await workflow.execute_activity_method(
                TranscriptActivities.open,
                OpenConversation(
                    conversation_id=self._carried.conversation_id,
                    agent=self._input.agent,
                    model=self._input.model,
                    system_prompt=self._input.system_prompt,
                    user_id=self._input.user_id,
                    policy=self._input.policy,
                ),
                summary=f"open conversation with agent {self._input.agent}",
                **STORE_CALL,
            )
        except ActivityError as err:
            message = failure_message(err, "opening the conversation")
            raise ApplicationError(message, type="OpenFailed", non_retryable=True) from err
        self._carried.template = opened.template
        self._carried.next_seq = opened.next_seq
        self._carried.tools = list(opened.tools)
        self._carried.policy = opened.policy
        self._carried.overrides = list(opened.overrides)
        self._carried.routing = opened.routing
        self._carried.archive_after_s = opened.archive_after_s
        if opened.agent_paused and not self._carried.paused:  # its agent is paused: it starts paused
            self._carried.paused, self._carried.pause_reason = True, opened.agent_paused

    async def _finish(self) -> ConversationSummary:
        for item in self._carried.queue:
            if item.has_caller:
                self._results[item.id] = ApplicationError(
                    f"conversation ended before this message was answered: {self._end_reason}",
                    type="ConversationEnded",
                )
        await self._backlog.finished()  # the last turns' memories; `ended` stays the last event
        self._set_state(ConversationState.ENDED)
        self._stream.detach()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await workflow.execute_activity_method(
            TranscriptActivities.close,
            CloseConversation(conversation_id=self._carried.conversation_id, reason=self._end_reason),
            summary="close conversation",
            **STORE_CALL,
        )
        while self._carried.queue or self._reports:  # requesters of turns that never came are told
            while self._carried.queue:
                self._report_unanswered(self._carried.queue.pop(0))
            await self._reports.delivered()
        return ConversationSummary(
            conversation_id=self._carried.conversation_id, turns=self._carried.turn, ended_reason=self._end_reason
        )

    # --- archiving after inactivity (workflows/idle_clock.py, workflows/archiving.py) ----------

    def _archive_after_s(self) -> int:
        after = self._input.archive_after_s
        return after if after is not None else self._carried.archive_after_s or 0

    def _archivable(self) -> bool:
        """Never while a turn runs, a person or a caller waits, or messages or notes are queued."""
        quiet = not (self._carried.queue or self._carried.injected or self._pending or self._answering)
        return quiet and not self._ended and workflow.all_handlers_finished()

    async def _archive(self) -> ArchiveRecord | None:
        """The archive record, if nothing needs this run any more; else None (and the clock waits
        another period). A message arriving while the record is written takes it back."""
        if self._archivable():
            await self._backlog.finished()
            await self._reports.delivered()
        if not self._archivable():
            self._clock.not_now()
            return None
        self._carried.last_activity_at = self._clock.last
        record = await archiving.write(ArchiveKind.CONVERSATION, self._carried.conversation_id, self._carried.turn,
                                       self._clock, self._input, self._carried)  # fmt: skip
        if not self._archivable():
            await archiving.reopen(ArchiveKind.CONVERSATION, [])
            self._clock.touch()
            return None
        self._set_state(ConversationState.ARCHIVED)
        return record

    async def _revive(self) -> None:
        """A new run of an archived conversation: its input and state come back from the archive
        record; what arrived before (the reviving message) stays queued after what was carried."""
        self._input.revive = False
        reopened = await archiving.reopen(ArchiveKind.CONVERSATION, [])
        if reopened.input is None or reopened.carried is None:
            return  # never archived: a plain start (the transcript goes on from the store)
        arrived = self._carried
        self._input = ConversationInput.model_validate({**reopened.input, "revive": False})
        self._carried = CarriedState.model_validate(reopened.carried)
        self._carried.queue += arrived.queue
        self._carried.injected += arrived.injected
        self._carried.requests += [r for r in arrived.requests if r not in self._carried.requests]
        self._carried.last_activity_at = None
        self._writes = TurnWrites(conversation_id=self._carried.conversation_id)
        agent = self._template.name if self._carried.template else self._input.agent
        paused = reopened.paused_agents.get(agent)
        if paused and not self._carried.paused:
            self._carried.paused, self._carried.pause_reason = True, paused
        elif not paused and self._carried.paused and is_agent_pause(agent, self._carried.pause_reason):
            self._carried.paused, self._carried.pause_reason = False, None  # its agent was resumed meanwhile
        self._emit(EventType.REVIVED, {"archived_at": reopened.record.archived_at.isoformat() if reopened.record else None})

    # --- one turn ---------------------------------------------------------------------------

    async def _answer(self, item: QueuedMessage) -> None:
        self._carried.turn += 1
        self._turns_this_run += 1
        result: TurnResult | ApplicationError
        self._answering = self._unwritten = item
        self._interrupt = False
        first_seq = self._carried.next_seq
        try:
            result = await self._run_turn(item)
            self._carried.last_error = None
            self._emit(EventType.TURN_COMPLETED, result.model_dump(mode="json", exclude={"reply"}))
        except _Ended:
            result = ApplicationError(
                f"conversation ended during this turn: {self._end_reason}", type="ConversationEnded"
            )
        except ApplicationError as err:
            self._carried.last_error = err.message
            result = err
        await self._flush_writes()  # what no model call carried (final_answer, the last step's tools…)
        self._answering = self._unwritten = None
        self._set_state(self._resting_state())
        self._clock.touch()
        if item.has_caller:
            self._results[item.id] = result
        if item.reply_to:
            self._report(item, turn_done(self._carried.conversation_id, item, result, self._reply_seq(first_seq)))
        self._stream.trim()
        if isinstance(result, TurnResult) and self._memory_on():
            await self._store_memories(result.turn, first_seq)

    async def _run_turn(self, item: QueuedMessage) -> TurnResult:
        turn = self._carried.turn
        self._consecutive_auto = 0
        self._set_state(ConversationState.THINKING)
        await self._flush_injected()
        await self._append(item.role, item.content, quoted=item.content_ref)
        self._unwritten = None
        self._memory_ids = await self._recall(self._carried.next_seq - 1, turn) if self._memory_on() else []
        usage = Usage()
        outcomes: list[ToolCallOutcome] = []
        chat = ChatResult(reply="")
        self._final_reply = None
        for _step in range(self._step_budget()):
            await self._checkpoint()
            await self._flush_injected()
            chat = await self._ask_model(turn)
            usage = usage + chat.usage
            if not chat.tool_calls:
                break
            for call in chat.tool_calls:
                outcomes.append(await self._run_tool(call, turn))
            if self._final_reply is not None:  # final_answer: its answer is the reply, and the last message
                await self._append("assistant", self._final_reply)
                chat = ChatResult(reply=self._final_reply)
                break
        else:
            workflow.logger.warning("turn %s stopped after %s model steps", turn, self._step_budget())
        return TurnResult(
            turn=turn,
            reply=chat.reply,
            reply_truncated=chat.reply_truncated,
            tool_calls=outcomes,
            usage=usage,
        )

    def _step_budget(self) -> int:
        """The conversation's ``max_steps_per_turn``, lowered by its template's (the agent's YAML, or
        an optimisation hint applied when the conversation opened). Histories recorded before the
        template had one carry None: their budget is unchanged, so they replay the same."""
        limit = self._template.max_steps_per_turn
        return min(self._input.max_steps_per_turn, limit) if limit else self._input.max_steps_per_turn

    async def _checkpoint(self) -> None:
        """Between steps: wait while paused, stop if the conversation was ended."""
        if self._carried.paused and not self._ended:
            await self._flush_writes()  # the store shows the turn so far while it waits
            self._set_state(ConversationState.PAUSED)
            await workflow.wait_condition(lambda: not self._carried.paused or self._ended)
            self._set_state(ConversationState.THINKING)
        if self._ended:
            raise _Ended()

    async def _flush_injected(self) -> None:
        """Injected ``next`` messages enter the transcript before the model's next step; each stays
        in the list (shown as pending by ``history``) until it is written."""
        while self._carried.injected:
            injected = self._carried.injected[0]
            await self._append(injected.role, injected.content)
            self._carried.injected.pop(0)

    async def _append(
        self, role: str, content: str, tool_call_id: str | None = None, stored: ToolResult | None = None,
        quoted: PayloadRef | None = None,
    ) -> None:
        """``stored``: a tool result whose output is in the store (``output_ref``); ``quoted``: a stored
        text a requested turn starts with. The message is that text followed by ``content``, and
        history carries only its digest."""
        seq = self._carried.next_seq
        content_ref = stored.output_ref if stored else (quoted.digest if quoted else None)
        message = AppendMessage(
            conversation_id=self._carried.conversation_id, seq=seq, role=role, content=content,
            tool_call_id=tool_call_id, content_ref=content_ref,
        )  # fmt: skip
        if self._one_trip:
            self._writes.messages.append(message)  # written by the next activity (TurnWrites)
        else:
            await workflow.execute_activity_method(
                TranscriptActivities.append, message, summary=f"store {role} message #{seq}", **STORE_CALL
            )
        self._carried.next_seq = seq + 1
        shown = stored.output if stored and content_ref else quoted.preview if quoted else ""
        self._remember(seq, role, shown + content)

    async def _ask_model(self, turn: int) -> ChatResult:
        """Ask the model, riding out an unreachable Ollama with durable back-off.

        The activity retries a few times by itself; past that the workflow records the error in
        ``status.last_error`` and tries again later, so an operator can see why a turn waits.
        """
        deadline = workflow.now() + timedelta(seconds=self._input.model_retry_timeout_s)
        delay = MODEL_RETRY_FIRST_DELAY_S
        while True:
            if self._interrupt and self._streaming:  # a newer message came during a tool step: stop here
                return await self._interrupted("")
            request = self._chat_request(turn)
            try:
                result = await self._model_step(request, turn)
            except ActivityError as err:
                if _failure_type(err) == INTERRUPTED or isinstance(err.cause, CancelledError):
                    return await self._interrupted(double_texting.partial_text(err))
                if _failure_type(err) == "PromptConfigMissing":  # that worker has no copy: send the text
                    self._prompt_sent = False
                    continue
                message = failure_message(err, "model call")
                self._carried.last_error = message
                if _non_retryable(err):
                    raise ApplicationError(message, type="ModelError", non_retryable=True) from err
                if workflow.now() + timedelta(seconds=delay) > deadline:
                    raise ApplicationError(
                        f"model unavailable for {self._input.model_retry_timeout_s}s: {message}",
                        type="ModelUnavailable",
                    ) from err
                self._set_details(f"model call failed, retrying in {delay}s: {message}")
                try:
                    await workflow.wait_condition(lambda: self._ended, timeout=timedelta(seconds=delay))
                except TimeoutError:
                    pass
                delay = min(delay * 2, MODEL_RETRY_MAX_DELAY_S)
                await self._checkpoint()
                continue
            self._carried.next_seq += 1
            self._last_model_s = result.usage.duration_ms / 1000
            self._delivered(request, result, turn)
            self._remember(request.reply_seq, "assistant", result.reply)
            return result

    async def _model_step(self, request: ChatRequest, turn: int) -> ChatResult:
        """One ``llm.chat``; with ``STREAM_PATCH`` its tokens stream, and a message sent under
        double-texting ``interrupt`` cancels it (``_interrupted``)."""
        summary, llm_queue, streaming = f"{self._template.model} · turn {turn}", self._carried.routing.llm_queue, self._streaming
        if streaming:
            request.stream_tokens, request.watched = True, self._stream.watched()
        local = local_step(request, llm_queue, self._last_model_s, self._run_ends())  # workflows/model_step.py
        if not streaming:
            return await step_result(start_model_step(request, summary, llm_queue, local=local), local)
        step = start_model_step(request, summary, llm_queue, local=local,
                                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
        await workflow.wait_condition(lambda: step.done() or self._interrupt)
        if not step.done():
            step.cancel()
        return await step_result(step, local)

    async def _interrupted(self, partial: str) -> ChatResult:
        """The step a newer message interrupted: what the model wrote so far becomes the reply,
        marked, and the turn ends (the new message is next in the queue)."""
        self._interrupt = False
        reply = double_texting.marked(partial)
        await self._append("assistant", reply)
        return ChatResult(reply=reply, done_reason="interrupted")

    @property
    def _streaming(self) -> bool:
        """Whether model steps stream their tokens (``STREAM_PATCH``), asked at each step."""
        return self._input.stream_tokens and workflow.patched(STREAM_PATCH)

    def _chat_request(self, turn: int) -> ChatRequest:
        if self._one_trip:
            text, ref = self._prompt_config()
            return ChatRequest(
                conversation_id=self._carried.conversation_id, turn=turn, reply_seq=self._carried.next_seq,
                upto_seq=self._carried.next_seq - 1, now=workflow.now(), memory_ids=self._memory_ids,
                model=self._template.model or "", prompt_ref=ref, prompt=None if self._prompt_sent else text,
                writes=None if self._writes.empty else self._writes, recall=self._recall_for,
            )  # fmt: skip
        return ChatRequest(
            conversation_id=self._carried.conversation_id,
            turn=turn,
            reply_seq=self._carried.next_seq,
            upto_seq=self._carried.next_seq - 1,
            template=self._template,
            now=workflow.now(),
            tools=[spec.ollama_definition() for spec in self._carried.tools],
            memory_ids=self._memory_ids,
        )

    @property
    def _one_trip(self) -> bool:
        """Whether this run's turns take one round trip per model step (``TURN_PATCH``). First asked
        by the first turn's first write, so the marker sits at the same point on replay."""
        return workflow.patched(TURN_PATCH)

    def _prompt_config(self) -> tuple[str, str]:
        if self._prompt is None:
            text = PromptConfig(template=self._template,
                                tools=[spec.ollama_definition() for spec in self._carried.tools]).text()
            self._prompt = (text, prompt_ref(text))
        return self._prompt

    def _delivered(self, request: ChatRequest, result: ChatResult, turn: int) -> None:
        """What a successful ``llm.chat`` did besides answering: the writes it carried are in the
        store, the prompt config is with the workers, and the turn's memories are recalled."""
        if request.writes is not None:
            self._writes = TurnWrites(conversation_id=self._carried.conversation_id)
        if request.prompt is not None:
            self._prompt_sent = True
        if request.recall is not None:
            self._recall_for = None
            recalled = result.recalled or RecallResult(error="recalled by an earlier attempt whose answer was lost")
            self._memory_ids = recalled.memory_ids
            self._recalled(turn, recalled)

    async def _flush_writes(self) -> None:
        """Write what no model call will carry: before the turn ends or waits for a person or a resume."""
        if self._writes.empty:
            return
        writes, self._writes = self._writes, TurnWrites(conversation_id=self._carried.conversation_id)
        await workflow.execute_activity_method(
            TranscriptActivities.write,
            writes,
            summary=f"store {len(writes.messages)} messages, {len(writes.actions)} audit rows",
            **STORE_CALL,
        )

    # --- memory -----------------------------------------------------------------------------

    def _memory_on(self) -> bool:
        template = self._carried.template
        return bool(template and template.memory) and workflow.patched(MEMORY_PATCH)

    def _memory_call(self) -> workflow.ActivityConfig:
        return workflow.ActivityConfig(task_queue=self._carried.routing.llm_queue, **MEMORY_CALL)

    async def _recall(self, seq: int, turn: int) -> list[str]:
        """Ids of the memories for message ``seq``; memory trouble never stops the turn. With
        ``TURN_PATCH``, the turn's first ``llm.chat`` recalls them (``_delivered``)."""
        if self._one_trip:
            self._recall_for = RecallRequest(conversation_id=self._carried.conversation_id, seq=seq,
                                             agent=self._template.name, user_id=self._input.user_id)  # fmt: skip
            return []
        try:
            recalled = await workflow.execute_activity_method(
                MemoryActivities.recall,
                RecallRequest(conversation_id=self._carried.conversation_id, seq=seq, agent=self._template.name,
                              user_id=self._input.user_id),  # fmt: skip
                summary=f"recall memories · turn {turn}",
                **self._memory_call(),
            )
        except ActivityError as err:
            recalled = RecallResult(error=failure_message(err, "memory recall"))
        self._recalled(turn, recalled)
        return recalled.memory_ids

    def _recalled(self, turn: int, recalled: RecallResult) -> None:
        if recalled.error:
            workflow.logger.warning("turn %s answers without memories: %s", turn, recalled.error)
        self._emit(EventType.MEMORY_RECALLED,
                   {"turn": turn, "count": len(recalled.memory_ids), "error": recalled.error})  # fmt: skip

    async def _store_memories(self, turn: int, first_seq: int) -> None:
        """After the caller has its answer: extract what the turn taught and remember it. With
        ``TURN_PATCH`` the turn joins a backlog extracted in the background."""
        upto_seq = self._carried.next_seq - 1
        if not self._one_trip:
            await self._extract(StoreTurnMemories(
                conversation_id=self._carried.conversation_id, turn=turn, from_seq=first_seq, upto_seq=upto_seq,
                agent=self._template.name, user_id=self._input.user_id, model=self._template.model))  # fmt: skip
            return
        self._backlog.add(turn, first_seq, upto_seq)

    async def _extract_turns(self, backlog: UnextractedTurns) -> None:
        await self._extract(backlog.request(self._carried.conversation_id, self._template.name, self._input.user_id,
                                            self._template.model))  # fmt: skip

    async def _extract(self, request: StoreTurnMemories) -> None:
        turns = f"{request.turn - len(request.turn_starts) + 1}–{request.turn}" if request.turn_starts else request.turn
        try:
            stored = await workflow.execute_activity_method(
                MemoryActivities.store_turn, request, summary=f"extract memories · turn {turns}", **self._memory_call()
            )
        except ActivityError as err:
            stored = StoredMemories(skipped=f"extraction failed: {failure_message(err, 'memory extraction')}")
            workflow.logger.warning("turn %s: %s", request.turn, stored.skipped)
        data = {"turn": request.turn, **stored.model_dump()}
        if request.turn_starts:
            data["turns"] = len(request.turn_starts)
        self._emit(EventType.MEMORY_STORED, data)

    def _quiet(self) -> bool:
        return self._answering is None and not self._carried.queue

    # --- tools ------------------------------------------------------------------------------

    async def _run_tool(self, call: ToolCallRequest, turn: int) -> ToolCallOutcome:
        """Judge one tool call, wait for a person if the policy asks, run it, record everything."""
        spec = next((t for t in self._carried.tools if t.name == call.name), None)
        if spec is None:
            await self._append("tool", f"error: there is no tool named {call.name!r}; answer without it")
            return ToolCallOutcome(id=call.id, tool=call.name, decision="deny", success=False)
        arguments = call.arguments
        errors = argument_errors(spec.parameters, arguments)
        if errors:
            message = f"invalid arguments for {spec.name}: {'; '.join(errors)}. Fix them and call again."
            return await self._conclude(call, spec, turn, arguments, "invalid", "schema", error=message)
        if spec.runs_on == RunsOn.BUILTIN or self._final_reply is not None:
            return await self._final_answer(call, spec, turn)
        if spec.runs_on == RunsOn.MEMORY:  # the agent's own memory: no policy, no sandbox
            self._emit_judged(call, spec, "allow", "builtin:memory")
            result = await self._memory_tool(call, spec, turn)
            return await self._conclude(call, spec, turn, arguments, "allow", "builtin:memory", result=result)
        verdict = self._judge(spec, arguments)
        decision, source = verdict.decision, _source(verdict)
        self._emit_judged(call, spec, decision.value, source)
        label = "allow"
        waited_ms: float | None = None
        if decision == Decision.ASK or (decision == Decision.ALLOW and spec.always_ask):
            asked_at = workflow.now()
            answer = await self._await_approval(call, spec, verdict)
            waited_ms = (workflow.now() - asked_at).total_seconds() * 1000
            self._emit(EventType.APPROVAL_DECIDED, {
                "tool_call_id": call.id, "decision": answer.decision if answer else "timeout",
                "approver": answer.approver if answer else None, "reason": answer.reason if answer else None})
            if answer is None:
                return await self._conclude(call, spec, turn, arguments, "timeout", "timeout",
                                            error="not run: nobody approved it in time", waited_ms=waited_ms)
            source = f"approver:{answer.approver or 'unknown'}"
            label = answer.decision
            if answer.decision == "deny":
                reason = f": {answer.reason}" if answer.reason else ""
                return await self._conclude(call, spec, turn, arguments, "deny", source,
                                            error=f"not run: denied by a person{reason}", waited_ms=waited_ms)
            if answer.decision == "edit":
                arguments = answer.arguments or {}
                errors = argument_errors(spec.parameters, arguments)
                edited = self._judge(spec, arguments)
                if errors or edited.decision == Decision.DENY:
                    why = "; ".join(errors) or edited.reason
                    return await self._conclude(call, spec, turn, arguments, "deny", _source(edited),
                                                error=f"not run: the edited call is not allowed ({why})",
                                                waited_ms=waited_ms)
            if answer.decision == "approve_always":
                always = rule_for_approve_always if workflow.patched(POLICY_ENGINE_PATCH) else legacy.rule_for_approve_always
                self._carried.overrides.append(always(self._context(spec, arguments)))
        elif decision == Decision.DENY:
            return await self._conclude(call, spec, turn, arguments, "deny", source,
                                        error=f"not run: denied by policy ({verdict.reason})")
        else:
            self._consecutive_auto += 1
        await self._checkpoint()
        result = await self._execute(call, spec, arguments)
        return await self._conclude(call, spec, turn, arguments, label, source, result=result, waited_ms=waited_ms)

    async def _final_answer(self, call: ToolCallRequest, spec: ToolSpec, turn: int) -> ToolCallOutcome:
        """``final_answer`` ends the turn with its answer as the reply (``_run_turn`` stores it as the
        assistant's last message); a call the model made after it in the same step is not run."""
        source = f"builtin:{FINAL_ANSWER}"
        if self._final_reply is not None:
            return await self._conclude(call, spec, turn, call.arguments, "skipped", source,
                                        error=f"not run: {FINAL_ANSWER} ended the turn before it")
        self._emit_judged(call, spec, "allow", source)
        self._final_reply = str(call.arguments.get("answer", ""))
        delivered = ToolResult(success=True, output="delivered to the user as your final answer; the turn ends here")
        return await self._conclude(call, spec, turn, call.arguments, "allow", source, result=delivered)

    def _emit_judged(self, call: ToolCallRequest, spec: ToolSpec, decision: str, source: str) -> None:
        self._emit(EventType.TOOL_CALL, {"tool_call_id": call.id, "tool": spec.name,
                                         "arguments_hash": args_hash(call.arguments), "decision": decision,
                                         "source": source})

    async def _memory_tool(self, call: ToolCallRequest, spec: ToolSpec, turn: int) -> ToolResult:
        try:
            return await workflow.execute_activity_method(
                MemoryActivities.tool,
                MemoryToolCall(conversation_id=self._carried.conversation_id, turn=turn, tool=spec.name,
                               arguments=call.arguments, agent=self._template.name, user_id=self._input.user_id),
                summary=f"{spec.name} {_display(spec.name, call.arguments)}"[:200],
                **memory_tool_call(spec, self._carried.routing.llm_queue),
            )
        except ActivityError as err:
            return ToolResult(success=False, error=f"memory unavailable: {failure_message(err, 'memory call')}")

    def _context(self, spec: ToolSpec, arguments: dict) -> ToolCallContext:
        return ToolCallContext(
            tool=spec.name,
            action_type=spec.action_type,
            arguments=arguments,
            auto_accept=self._carried.auto_accept,
            consecutive_auto=self._consecutive_auto,
            content_bytes=content_bytes(arguments, CONTENT_KEYS),  # None unless content is by reference
        )

    def _judge(self, spec: ToolSpec, arguments: dict) -> Verdict:
        assert self._carried.policy is not None
        judge = evaluate if workflow.patched(POLICY_ENGINE_PATCH) else legacy.evaluate
        return judge(self._carried.policy, self._context(spec, arguments), self._carried.overrides)

    async def _await_approval(self, call: ToolCallRequest, spec: ToolSpec, verdict: Verdict) -> Approve | None:
        """Wait on a durable timer for a person's decision; ``None`` when it times out."""
        await self._flush_writes()  # the store shows what this step did before the call that waits
        self._pending[call.id] = PendingApproval(
            tool_call_id=call.id,
            tool=spec.name,
            arguments=call.arguments,
            args_hash=args_hash(call.arguments),
            payloads=call.payloads,
            action_type=spec.action_type.value,
            rule=verdict.rule_id,
            reason="this tool always needs a person" if verdict.decision == Decision.ALLOW else verdict.reason,
            requested_at=workflow.now(),
        )
        self._set_state(ConversationState.AWAITING_APPROVAL)
        self._emit(EventType.APPROVAL_REQUESTED, self._pending[call.id].model_dump(mode="json"))
        try:
            await workflow.wait_condition(
                lambda: call.id in self._decisions or self._ended,
                timeout=timedelta(seconds=self._input.approval_timeout_s),
            )
        except TimeoutError:
            pass
        finally:
            del self._pending[call.id]
            self._set_state(ConversationState.THINKING)
        if self._ended:
            raise _Ended()
        if call.id not in self._decisions:
            self._record_decided(call.id, "timeout", None)
        return self._decisions.get(call.id)

    async def _execute(self, call: ToolCallRequest, spec: ToolSpec, arguments: dict) -> ToolResult:
        summary = f"{spec.name} {_display(spec.name, arguments)}"
        self._running = summary
        self._set_state(ConversationState.RUNNING_TOOL)
        tool_input = ToolCallInput(
            conversation_id=self._carried.conversation_id,
            tool_call_id=call.id,
            tool=spec.name,
            arguments=arguments,
            agent=self._template.name,
            network=spec.needs_egress,
            task_queue=self._tool_queue(spec),
            llm_queue=self._carried.routing.llm_queue,
        )
        try:
            if spec.runs_on == RunsOn.WORKFLOW:  # private messages (workflows/message_tool.py)
                if spec.name == "answer_private_message":
                    return await self._messages.answer(self._template.name, arguments, lambda: self._ended)
                hops = self._answering.hops if self._answering else 0
                return await self._messages.send(self._template.name, workflow.info().workflow_id, arguments, hops,
                                                 self._carried.routing.llm_queue, lambda: self._ended)  # fmt: skip
            if self._one_trip and spec.name not in STEPS:
                result = await self._run_tool_activity(spec, tool_input, summary[:200])
            else:
                result = await workflow.execute_child_workflow(
                    ToolExecutionWorkflow.run,
                    args=[spec, tool_input],
                    id=tool_workflow_id(self._carried.conversation_id, call.id),
                    execution_timeout=run_timeout(spec, arguments, routed=bool(tool_input.task_queue)),
                    static_summary=summary[:200],
                )
        except ChildWorkflowError as err:  # terminated or timed out by an operator
            return ToolResult(success=False, error=f"the tool run was stopped: {err.cause or err}")
        else:
            if result.host_queue and spec.runs_on == RunsOn.SANDBOX:
                self._carried.host_queue = result.host_queue
            return result
        finally:
            self._running = None
            self._set_state(ConversationState.THINKING)

    async def _run_tool_activity(self, spec: ToolSpec, tool_input: ToolCallInput, summary: str) -> ToolResult:
        """A single-step call as an activity of the conversation (``TURN_PATCH``): what its child
        workflow did, without the child. In the Web UI it is the conversation's activity
        ``tool-<call>`` with the call as its summary, its attempts, heartbeats and last failure; an
        operator can address it (``temporal activity pause|reset|fail --activity-id tool-<call>``)."""
        try:
            return await workflow.execute_activity_method(
                ToolActivities.run, args=[spec, tool_input], activity_id=f"tool-{tool_input.tool_call_id}",
                summary=summary, **tool_call(spec, tool_input, tool_input.task_queue),
                schedule_to_close_timeout=run_timeout(spec, tool_input.arguments, routed=bool(tool_input.task_queue)),
            )  # fmt: skip
        except ActivityError as err:
            return ToolResult(success=False, error=tool_failure(err, tool_input))

    def _tool_queue(self, spec: ToolSpec) -> str | None:
        return (self._carried.host_queue if spec.runs_on == RunsOn.SANDBOX else None) or self._carried.routing.sandbox_queue

    async def _conclude(
        self,
        call: ToolCallRequest,
        spec: ToolSpec,
        turn: int,
        arguments: dict,
        decision: str,
        source: str,
        result: ToolResult | None = None,
        error: str | None = None,
        waited_ms: float | None = None,
    ) -> ToolCallOutcome:
        """Audit the call, then tell the model what happened."""
        record = ActionRecord(
            conversation_id=self._carried.conversation_id,
            tool_call_id=call.id,
            turn=turn,
            agent=self._template.name,
            tool=spec.name,
            action_type=spec.action_type.value,
            args_hash=args_hash(arguments),
            decision=decision,
            source=source,
            policy_version=self._carried.policy.version if self._carried.policy else "",
            success=result.success if result else None,
            exit_code=result.exit_code if result else None,
            duration_ms=result.duration_ms if result else None,
            error=(result.error if result else error),
            approval_wait_ms=waited_ms,
        )
        if self._one_trip:
            self._writes.actions.append(record)  # written with the tool message, by the next activity
        else:
            await workflow.execute_activity_method(
                AuditActivities.record, record, summary=f"audit {spec.name}: {decision}", **STORE_CALL
            )
        self._emit(EventType.TOOL_RESULT, {
            "tool_call_id": call.id, "tool": spec.name, "decision": decision,
            "success": result.success if result else False, "exit_code": result.exit_code if result else None,
            "duration_ms": result.duration_ms if result else None, "error": result.error if result else error})
        await self._append("tool", _tool_message(result, error), tool_call_id=call.id, stored=result)
        success = result.success if result else False
        return ToolCallOutcome(id=call.id, tool=spec.name, decision=decision, success=success)

    # --- decisions --------------------------------------------------------------------------

    def _apply(self, decision: Approve) -> DecisionApplied:
        """Hand a valid decision to the call waiting for it (``_await_approval`` wakes up)."""
        waiting = self._pending[decision.tool_call_id]
        self._decisions[decision.tool_call_id] = decision
        self._record_decided(decision.tool_call_id, decision.decision, decision.approver)
        runs = {"deny": None, "edit": decision.arguments}.get(decision.decision, waiting.arguments)
        return DecisionApplied(
            tool_call_id=decision.tool_call_id, tool=waiting.tool, decision=decision.decision,
            approver=decision.approver, arguments=runs, args_hash=waiting.args_hash,
        )  # fmt: skip

    def _record_decided(self, tool_call_id: str, decision: str, approver: str | None) -> None:
        self._carried.decided.append(
            DecidedCall(tool_call_id=tool_call_id, decision=decision, approver=approver, at=workflow.now())
        )
        del self._carried.decided[:-DECIDED_CALLS_KEPT]

    def _rejection(self, decision: Approve) -> DecisionRejection | None:
        return rejection(decision, self._pending, self._carried.decided)

    # --- state shown to operators -----------------------------------------------------------

    def _resting_state(self) -> ConversationState:
        if self._ended:
            return ConversationState.ENDED
        return ConversationState.PAUSED if self._carried.paused else ConversationState.IDLE

    def _set_state(self, state: ConversationState) -> None:
        if state != self._state:
            self._report_progress(self._state, state)
            self._state = state
            self._show_state(state)
            self._emit(EventType.STATE, {"state": state.value, "details": self._describe()})
        self._set_details(self._describe())

    def _show_state(self, state: ConversationState) -> None:
        """Search attributes follow the state, except the idle → thinking → idle flip of a turn
        whose model answered the previous call in under ``QUICK_MODEL_S`` (``TURN_PATCH``): each
        upsert is a write to the server's visibility store, and two per turn cost about a quarter
        of the throughput at 50 conversations (``bench.conversation``). Status, details and events
        always follow."""
        quick = state == ConversationState.THINKING and self._shown == ConversationState.IDLE and self._quick_turns()
        if state == self._shown or quick:
            return
        awaiting = state == ConversationState.AWAITING_APPROVAL
        updates = [search_attributes.STATE.value_set(state.value)]
        if awaiting != (self._shown == ConversationState.AWAITING_APPROVAL):
            updates.append(search_attributes.AWAITING_APPROVAL.value_set(awaiting))
        self._shown = state
        workflow.upsert_search_attributes(updates)

    def _quick_turns(self) -> bool:
        return quick(self._last_model_s) and self._one_trip

    def _describe(self) -> str:
        model = self._carried.template.model if self._carried.template else "?"
        if self._state == ConversationState.THINKING:
            return f"thinking · turn {self._carried.turn} · {model}"
        if self._state == ConversationState.AWAITING_APPROVAL and self._pending:
            waiting = "; ".join(f"{p.tool} {_display(p.tool, p.arguments)}" for p in self._pending.values())
            return f"awaiting approval: {waiting}"
        if self._state == ConversationState.RUNNING_TOOL and self._running:
            return f"running {self._running}"
        if self._state == ConversationState.PAUSED:
            reason = self._carried.pause_reason
            return f"paused: {reason}" if reason else "paused"
        if self._state == ConversationState.ENDED:
            return f"ended: {self._end_reason}" if self._end_reason else "ended"
        queued = f" · {len(self._carried.queue)} queued" if self._carried.queue else ""
        return f"idle · {self._carried.turn} turns · {model}{queued}"

    def _set_details(self, details: str) -> None:
        workflow.set_current_details(details)

    def _remember(self, seq: int, role: str, content: str) -> None:
        self._carried.recent.append(_view(role, content, seq))
        del self._carried.recent[:-RECENT_MESSAGES_KEPT]
        self._emit(EventType.MESSAGE, {"seq": seq, "role": role, "content": content[:EVENT_PREVIEW_CHARS],
                                       "truncated": len(content) > EVENT_PREVIEW_CHARS})

    def _emit(self, type: EventType, data: dict[str, Any]) -> None:
        """Events are workflow state only (no commands), so adding them never breaks replay."""
        event = ConversationEvent(id=self._carried.next_event_id, type=type, at=workflow.now(), data=data)
        self._carried.events.append(event)
        self._stream.publish(event)
        self._carried.next_event_id += 1
        del self._carried.events[:-EVENTS_KEPT]

    def _not_yet_seen(self) -> list[MessageView]:
        """What will enter the transcript, in that order: injected notes (before the model's next
        step), the message whose turn just began, then the queue."""
        waiting = [*self._carried.injected, *([self._unwritten] if self._unwritten else []), *self._carried.queue]
        return [_view(item.role, item.shown if isinstance(item, QueuedMessage) else item.content) for item in waiting]

    def _turn_over(self, turn_id: str) -> bool:
        answering = self._answering is not None and self._answering.update_id == turn_id
        return not answering and not any(item.update_id == turn_id for item in self._carried.queue)

    # --- reports to requesters (request_turn) -------------------------------------------------

    def _report(self, item: QueuedMessage, report: TurnDone) -> None:
        assert item.reply_to is not None
        self._emit(EventType.TURN_REPORTED, {"request_id": report.request_id, "outcome": report.outcome.value,
                                             "to": item.reply_to.workflow_id})  # fmt: skip
        self._send(item.reply_to, item.reply_to.signal, report)

    def _report_unanswered(self, item: QueuedMessage) -> None:
        if item.reply_to and item.request_id:
            why = f"the conversation ended before this request was answered: {self._end_reason}"
            self._report(item, not_answered(self._carried.conversation_id, item.request_id, TurnOutcome.ENDED, why))

    def _report_progress(self, before: ConversationState, after: ConversationState) -> None:
        item = self._answering
        if item is None or item.reply_to is None or item.reply_to.progress_signal is None:
            return
        if progress_changed(before, after):
            note = progress_note(self._carried.conversation_id, item, after, list(self._pending.values()),
                                 self._carried.pause_reason)  # fmt: skip
            self._send(item.reply_to, item.reply_to.progress_signal, note)

    def _send(self, address: ReplyAddress, signal: str, report: TurnDone | TurnProgressNote) -> None:
        """In order, without holding up the turns (``workflows/outbox.py``)."""
        self._reports.send(address.workflow_id, signal, report)

    def _reply_seq(self, first_seq: int) -> int | None:
        """The seq of the turn's last assistant message (its reply), if the turn wrote one."""
        return next((m.seq for m in reversed(self._carried.recent)
                     if m.role == "assistant" and m.seq is not None and m.seq >= first_seq), None)  # fmt: skip

    # --- updates ----------------------------------------------------------------------------

    @workflow.update
    async def send_message(self, message: SendMessage) -> TurnResult:
        update = workflow.current_update_info()
        item = QueuedMessage(id=str(workflow.uuid4()), content=message.content, has_caller=True,
                             update_id=update.id if update else None)  # fmt: skip
        self._carried.queue.append(item)
        if self._state == ConversationState.IDLE:
            self._set_details(self._describe())
        if self._answering is not None and self._double_texting == DoubleTexting.INTERRUPT:
            self._interrupt = True
        await workflow.wait_condition(lambda: item.id in self._results)
        result = self._results.pop(item.id)
        if isinstance(result, ApplicationError):
            raise result
        return result

    @send_message.validator
    def _validate_message(self, message: SendMessage) -> None:
        if self._ended:
            raise ApplicationError(f"conversation has ended ({self._end_reason or 'no reason given'}); start a new one",
                                   type="ConversationEnded")  # fmt: skip
        if not message.content.strip():
            raise ApplicationError("message content is empty", type="MessageRejected")
        limit = self._input.max_message_chars
        if len(message.content) > limit:
            raise ApplicationError(f"message is {len(message.content)} characters; the limit is {limit}",
                                   type="MessageRejected")  # fmt: skip
        if self._double_texting == DoubleTexting.REJECT and self._answering is not None:
            raise double_texting.turn_running(self._carried.turn, self._state, self._answering)
        why = queue_refusal(self._waiting_texts(), message.content)
        if why:
            raise ApplicationError(why, type=QUEUE_FULL)
        if overdue(self._turns_this_run, self._input.turns_per_run, workflow.info().is_continue_as_new_suggested()):
            raise ApplicationError("this conversation is handing over to its next run; send the message again",
                                   type=RUN_ENDING)  # fmt: skip

    def _waiting_texts(self) -> list[str]:
        """What waits to be answered, inline, as it would cross a continue-as-new."""
        return [item.content for item in self._carried.queue] + [note.content for note in self._carried.injected]

    @property
    def _double_texting(self) -> DoubleTexting:
        return self._carried.double_texting or self._input.double_texting

    @workflow.update
    def set_double_texting(self, change: SetDoubleTexting) -> DoubleTexting:
        """What a message sent while a turn runs does from now on (``models/streaming.py``);
        answers with the policy now in force."""
        self._carried.double_texting = change.policy
        self._emit(EventType.STATE, {"state": self._state.value, "details": self._describe(),
                                     "double_texting": change.policy.value})  # fmt: skip
        return change.policy

    @set_double_texting.validator
    def _validate_double_texting(self, change: SetDoubleTexting) -> None:
        if self._ended:
            raise ApplicationError("conversation has ended", type="ConversationEnded")
        DoubleTexting(change.policy)  # a dict that skipped the model still fails here, before it is accepted

    @workflow.update
    def decide(self, decision: Approve) -> DecisionApplied:
        """The ``approve`` signal's rules, with an answer: the decision applied, or ``DecisionRejected``
        carrying a ``DecisionRejection`` (unknown call, already decided by whom, arguments changed…)."""
        void = self._rejection(decision)  # again: a signal may have decided it since validation
        if void:
            raise _rejected(void)
        return self._apply(decision)

    @decide.validator
    def _validate_decision(self, decision: Approve) -> None:
        void = self._rejection(decision)
        if void:
            raise _rejected(void)

    @workflow.update
    async def watch_turn(self, watch: WatchTurn) -> TurnProgress:
        """Returns as soon as the turn of update ``turn_id`` is over, or the conversation waits for a
        person, is paused, or ended: a caller learns at once that a turn waits, without polling."""
        waits = (ConversationState.AWAITING_APPROVAL, ConversationState.PAUSED)
        await workflow.wait_condition(lambda: self._ended or self._state in waits or self._turn_over(watch.turn_id))
        return TurnProgress(
            turn_id=watch.turn_id, answered=self._turn_over(watch.turn_id), state=self._state,
            pending_approvals=list(self._pending.values()), pause_reason=self._carried.pause_reason,
        )  # fmt: skip

    # --- signals ----------------------------------------------------------------------------

    @workflow.signal
    def pause(self, signal: Pause | None = None) -> None:
        self._carried.paused = True
        self._carried.pause_reason = (signal.reason if signal else "") or None
        if self._state == ConversationState.IDLE:
            self._set_state(ConversationState.PAUSED)

    @workflow.signal
    def resume(self) -> None:
        self._carried.paused = False
        self._carried.pause_reason = None
        if self._state == ConversationState.PAUSED and self._answering is None:
            self._set_state(ConversationState.IDLE)

    @workflow.signal
    def inject(self, signal: Inject) -> None:
        if not signal.content.strip() or self._ended:
            workflow.logger.warning("inject ignored: %s", "conversation ended" if self._ended else "empty content")
            return
        why = queue_refusal(self._waiting_texts(), signal.content)
        if why and workflow.patched(QUEUE_PATCH):
            workflow.logger.warning("inject refused: %s", why)
            self._emit(EventType.INJECT_REFUSED, {"chars": len(signal.content), "reason": why})
            return
        if signal.priority == "next":
            self._carried.injected.append(signal)
        else:
            queued = QueuedMessage(id=str(workflow.uuid4()), content=signal.content, role=signal.role)
            self._carried.queue.append(queued)

    @workflow.signal
    def request_turn(self, request: TurnRequest) -> None:
        """Queue a message for a turn of its own, like ``send_message``, for a caller that is a
        workflow: it hears back through ``request.reply_to`` (``models.turn_requests``). A repeated
        request id is ignored; a request that cannot be queued is answered ``rejected`` at once."""
        if request.request_id in self._carried.requests:
            workflow.logger.warning("turn request %s ignored: already received", request.request_id)
            return
        self._carried.requests.append(request.request_id)
        del self._carried.requests[:-REQUESTS_REMEMBERED]
        self._emit(EventType.TURN_REQUESTED, {"request_id": request.request_id, "author": request.author})
        why = refusal(request, self._input.max_message_chars)
        if why is None and (full := queue_refusal(self._waiting_texts(), request.content)):
            why = full if workflow.patched(QUEUE_PATCH) else None
        if why is not None:
            workflow.logger.warning("turn request %s refused: %s", request.request_id, why)
            if request.reply_to:
                report = not_answered(self._carried.conversation_id, request.request_id, TurnOutcome.REJECTED, why)
                self._send(request.reply_to, request.reply_to.signal, report)
            return
        self._carried.queue.append(queued(request, str(workflow.uuid4())))
        if self._state == ConversationState.IDLE:
            self._set_details(self._describe())

    @workflow.signal
    def still_running(self) -> None:
        """Sent by a requester waiting for a report (a channel): that it is delivered is the
        answer — a closed run refuses it. Changes nothing."""

    @workflow.signal
    def private_message_update(self, update: MessageUpdate) -> None:
        """A private message this agent sent asks for input or ended: to the tool call waiting for
        it, else a note before the model's next step (``workflows/message_tool.py``)."""
        note = self._messages.heard(update)
        if note is not None:
            self.inject(note)

    @workflow.signal
    def approve(self, signal: Approve) -> None:
        """The same rules as ``decide``; a void decision is logged and listed in ``status.ignored_approvals``."""
        void = self._rejection(signal)
        if void:
            workflow.logger.warning("approval for %s ignored: %s", signal.tool_call_id, void.detail)
            self._ignored_approvals.append(ignored_line(signal, void))
            del self._ignored_approvals[:-IGNORED_APPROVALS_KEPT]
            return
        self._apply(signal)

    @workflow.signal
    def set_auto_accept(self, signal: SetAutoAccept) -> None:
        self._carried.auto_accept = signal.enabled

    @workflow.signal
    def end(self, signal: End | None = None) -> None:
        self._ended = True
        self._end_reason = (signal.reason if signal else "") or "ended by operator"

    # --- queries ----------------------------------------------------------------------------

    @workflow.query
    def status(self) -> Status:
        template = self._carried.template
        return Status(
            conversation_id=self._carried.conversation_id,
            state=self._state,
            paused=self._carried.paused,
            pause_reason=self._carried.pause_reason,
            turn=self._carried.turn,
            queued=len(self._carried.queue),
            pending_approvals=list(self._pending.values()),
            agent=template.name if template else self._input.agent,
            model=(template.model if template else self._input.model) or "",
            auto_accept=self._carried.auto_accept,
            double_texting=self._double_texting,
            last_error=self._carried.last_error,
            ended_reason=self._end_reason or None,
            ignored_approvals=list(self._ignored_approvals),
            messages_asking=dict(self._carried.messages_asking),
        )

    @workflow.query(name=WATCHED_QUERY)
    def stream_watched(self) -> bool:
        """Whether a subscriber watches the stream now (an unwatched model step asks, ``models/streaming.py``)."""
        return self._stream.watched()

    @workflow.query
    def history(self, query: HistoryQuery | None = None) -> list[MessageView]:
        """The latest messages the workflow saw, then (``pending``) those the model has not seen yet."""
        limit = (query or HistoryQuery()).limit
        return [*self._carried.recent, *self._not_yet_seen()][-limit:]

    @workflow.query
    def pending_approvals(self) -> list[PendingApproval]:
        return list(self._pending.values())

    @workflow.query
    def delegated_settings(self) -> DelegatedSettings:
        """Its policy rules, ``auto_accept`` as it is now, user and approval timeout (``create_plan``)."""
        return DelegatedSettings(policy=self._input.policy, auto_accept=self._carried.auto_accept,
                                 user_id=self._input.user_id, approval_timeout_s=self._input.approval_timeout_s)  # fmt: skip

    @workflow.query
    def events(self, query: EventsQuery | None = None) -> list[ConversationEvent]:
        query = query or EventsQuery()
        return [e for e in self._carried.events if e.id > query.after][: query.limit]


def _rejected(void: DecisionRejection) -> ApplicationError:
    return ApplicationError(void.detail, void.model_dump(mode="json"), type="DecisionRejected", non_retryable=True)


def _non_retryable(err: ActivityError) -> bool:
    return isinstance(err.cause, ApplicationError) and err.cause.non_retryable


def _failure_type(err: ActivityError) -> str | None:
    return err.cause.type if isinstance(err.cause, ApplicationError) else None


def _view(role: str, content: str, seq: int | None = None) -> MessageView:
    """A message as ``history`` shows it: cut to ``RECENT_MESSAGE_CHARS``; without seq it is pending."""
    cut = len(content) > RECENT_MESSAGE_CHARS
    return MessageView(seq=seq, role=role, content=content[:RECENT_MESSAGE_CHARS], truncated=cut, pending=seq is None)


def args_hash(arguments: dict) -> str:
    """The identity of a call's exact arguments; approvals and audit rows refer to it."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _display(tool: str, arguments: dict) -> str:
    """A call as an operator reads it: the command itself for shells, compact JSON otherwise."""
    text = arguments.get("command") if isinstance(arguments.get("command"), str) else None
    text = text or json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
    return f"`{text[:160]}{'…' if len(text) > 160 else ''}`"


def _source(verdict: Verdict) -> str:
    return f"rule:{verdict.rule_id}" if verdict.rule_id else "default"


def _tool_message(result: ToolResult | None, error: str | None) -> str:
    if result is None:
        return f"error: {error}"
    if result.output_ref:  # the output is in the store: this is what follows it
        rest = _tool_message(result.model_copy(update={"output": "", "output_ref": None}), None)
        return "" if rest == "(no output)" else "\n" + rest
    parts = [result.output] if result.output else []
    if result.exit_code is not None:
        parts.append(f"[exit code {result.exit_code}]")
    if result.truncated:
        artifact = f" {result.artifact_id}" if result.artifact_id else ""
        parts.append(f"[output truncated; the full output is kept as artifact{artifact}]")
    if result.error:
        parts.append(f"error: {result.error}")
    return "\n".join(parts) or "(no output)"
