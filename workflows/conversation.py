"""ConversationWorkflow: one durable conversation with an agent.

The workflow decides and waits; every side effect is an activity. Message bodies live in the store
and activities pass only sequence numbers and small results, so history grows by a bounded number
of small events per turn. Messages arrive through the ``send_message`` update (or ``inject``), wait
in a queue and are answered one turn at a time; pause, resume, inject and end are honoured between
the steps of a turn.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from models.agent import AgentTemplate
    from models.conversation import (
        WORKFLOW_ID_PREFIX,
        Approve,
        CarriedState,
        ConversationInput,
        ConversationState,
        ConversationSummary,
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
        TurnResult,
        Usage,
    )
    from models.events import EVENT_PREVIEW_CHARS, EVENTS_KEPT, ConversationEvent, EventsQuery, EventType
    from models.llm import ChatRequest, ChatResult, ToolCallRequest
    from models.memory import MemoryToolCall, RecallRequest, RecallResult, StoredMemories, StoreTurnMemories
    from models.policy import Decision, PolicyRule, PolicySet, ToolCallContext, Verdict
    from models.tools import ActionRecord, RunsOn, ToolCallInput, ToolResult, ToolSpec
    from models.transcript import AppendMessage, CloseConversation, OpenConversation, OpenedConversation, Routing
    from workflows import search_attributes
    from workflows.arguments import argument_errors
    from policy import legacy
    from policy.approval import rule_for_approve_always
    from policy.engine import evaluate
    from workflows.tool_execution import ToolExecutionWorkflow, tool_workflow_id

RECENT_MESSAGES_KEPT = 50
IGNORED_APPROVALS_KEPT = 20
RECENT_MESSAGE_CHARS = 2_000

STORE_CALL = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=10)),
)
MODEL_CALL = dict(
    start_to_close_timeout=timedelta(minutes=15),
    heartbeat_timeout=timedelta(seconds=10),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_attempts=3,
    ),
)
MODEL_RETRY_FIRST_DELAY_S = 2
MODEL_RETRY_MAX_DELAY_S = 60
MEMORY_CALL = dict(
    start_to_close_timeout=timedelta(minutes=5),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3),
)
MEMORY_PATCH = "memory-v1"
"""Recall before and extraction after each turn; histories recorded before it replay without."""
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
        info = workflow.info()
        carried = self._input.carried
        self._conversation_id = (
            carried.conversation_id
            if carried
            else self._input.conversation_id or info.workflow_id.removeprefix(WORKFLOW_ID_PREFIX)
        )
        self._template: AgentTemplate | None = carried.template if carried else None
        self._next_seq = carried.next_seq if carried else 1
        self._turn = carried.turn if carried else 0
        self._queue: list[QueuedMessage] = list(carried.queue) if carried else []
        self._injected: list[Inject] = list(carried.injected) if carried else []
        self._paused = carried.paused if carried else False
        self._pause_reason = carried.pause_reason if carried else None
        self._auto_accept = carried.auto_accept if carried else self._input.auto_accept
        self._last_error = carried.last_error if carried else None
        self._recent: list[MessageView] = list(carried.recent) if carried else []
        self._tools: dict[str, ToolSpec] = {t.name: t for t in carried.tools} if carried else {}
        self._policy: PolicySet | None = carried.policy if carried else None
        self._overrides: list[PolicyRule] = list(carried.overrides) if carried else []
        self._routing = carried.routing if carried else Routing()
        self._host_queue = carried.host_queue if carried else None
        self._events: list[ConversationEvent] = list(carried.events) if carried else []
        self._next_event_id = carried.next_event_id if carried else 1
        self._memory_ids: list[str] = []
        self._pending: dict[str, PendingApproval] = {}
        self._decisions: dict[str, Approve] = {}
        self._ignored_approvals: list[str] = []
        self._consecutive_auto = 0
        self._running: str | None = None
        self._state = ConversationState.IDLE
        self._ended = False
        self._end_reason = ""
        self._turns_this_run = 0
        self._in_turn = False
        self._results: dict[str, TurnResult | ApplicationError] = {}
        if not carried and self._input.initial_message:
            self._queue.append(QueuedMessage(id="initial", content=self._input.initial_message))

    # --- main loop --------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: dict[str, Any] | None = None) -> ConversationSummary:
        if self._invalid_input:
            raise ApplicationError(self._invalid_input, type="InvalidInput", non_retryable=True)
        if self._template is None:
            self._template = await self._open()
        workflow.upsert_search_attributes([search_attributes.AGENT.value_set(self._template.name)])
        self._set_state(self._resting_state())

        while True:
            await workflow.wait_condition(
                lambda: self._ended or self._should_continue_as_new() or self._has_work()
            )
            if self._ended:
                break
            if not self._should_continue_as_new():
                await self._answer(self._queue.pop(0))
                continue
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self._ended or not self._should_continue_as_new():
                continue
            workflow.continue_as_new(ConversationInput(**self._input.model_dump(exclude={"carried"}), carried=self._carry()))

        return await self._finish()

    def _has_work(self) -> bool:
        return not self._paused and bool(self._queue)

    def _should_continue_as_new(self) -> bool:
        """Only between turns, and never while a caller waits for an answer from this run."""
        due = self._turns_this_run >= self._input.turns_per_run or workflow.info().is_continue_as_new_suggested()
        return due and not any(item.has_caller for item in self._queue)

    def _carry(self) -> CarriedState:
        assert self._template is not None
        return CarriedState(
            conversation_id=self._conversation_id,
            template=self._template,
            next_seq=self._next_seq,
            turn=self._turn,
            queue=self._queue,
            injected=self._injected,
            paused=self._paused,
            pause_reason=self._pause_reason,
            auto_accept=self._auto_accept,
            last_error=self._last_error,
            recent=self._recent,
            tools=list(self._tools.values()),
            policy=self._policy,
            overrides=self._overrides,
            routing=self._routing,
            host_queue=self._host_queue,
            events=self._events,
            next_event_id=self._next_event_id,
        )

    async def _open(self) -> AgentTemplate:
        try:
            opened: OpenedConversation = await workflow.execute_activity(
                "transcript.open",
                OpenConversation(
                    conversation_id=self._conversation_id,
                    agent=self._input.agent,
                    model=self._input.model,
                    system_prompt=self._input.system_prompt,
                    user_id=self._input.user_id,
                    policy=self._input.policy,
                ),
                result_type=OpenedConversation,
                summary=f"open conversation with agent {self._input.agent}",
                **STORE_CALL,
            )
        except ActivityError as err:
            raise ApplicationError(_cause_message(err), type="OpenFailed", non_retryable=True) from err
        self._next_seq = opened.next_seq
        self._tools = {t.name: t for t in opened.tools}
        self._policy = opened.policy
        self._overrides = list(opened.overrides)
        self._routing = opened.routing
        return opened.template

    async def _finish(self) -> ConversationSummary:
        for item in self._queue:
            if item.has_caller:
                self._results[item.id] = ApplicationError(
                    f"conversation ended before this message was answered: {self._end_reason}",
                    type="ConversationEnded",
                )
        self._queue.clear()
        self._set_state(ConversationState.ENDED)
        await workflow.wait_condition(workflow.all_handlers_finished)
        await workflow.execute_activity(
            "transcript.close",
            CloseConversation(conversation_id=self._conversation_id, reason=self._end_reason),
            summary="close conversation",
            **STORE_CALL,
        )
        return ConversationSummary(
            conversation_id=self._conversation_id, turns=self._turn, ended_reason=self._end_reason
        )

    # --- one turn ---------------------------------------------------------------------------

    async def _answer(self, item: QueuedMessage) -> None:
        self._turn += 1
        self._turns_this_run += 1
        result: TurnResult | ApplicationError
        self._in_turn = True
        first_seq = self._next_seq
        try:
            result = await self._run_turn(item)
            self._last_error = None
            self._emit(EventType.TURN_COMPLETED, result.model_dump(mode="json", exclude={"reply"}))
        except _Ended:
            result = ApplicationError(
                f"conversation ended during this turn: {self._end_reason}", type="ConversationEnded"
            )
        except ApplicationError as err:
            self._last_error = err.message
            result = err
        self._in_turn = False
        self._set_state(self._resting_state())
        if item.has_caller:
            self._results[item.id] = result
        if isinstance(result, TurnResult) and self._memory_on():
            await self._store_memories(result.turn, first_seq)

    async def _run_turn(self, item: QueuedMessage) -> TurnResult:
        assert self._template is not None
        turn = self._turn
        self._consecutive_auto = 0
        self._set_state(ConversationState.THINKING)
        await self._flush_injected()
        await self._append(item.role, item.content)
        self._memory_ids = await self._recall(self._next_seq - 1, turn) if self._memory_on() else []
        usage = Usage()
        outcomes: list[ToolCallOutcome] = []
        chat = ChatResult(reply="")
        for _step in range(self._input.max_steps_per_turn):
            await self._checkpoint()
            await self._flush_injected()
            chat = await self._ask_model(turn)
            usage = usage + chat.usage
            if not chat.tool_calls:
                break
            for call in chat.tool_calls:
                outcomes.append(await self._run_tool(call, turn))
        else:
            workflow.logger.warning("turn %s stopped after %s model steps", turn, self._input.max_steps_per_turn)
        return TurnResult(
            turn=turn,
            reply=chat.reply,
            reply_truncated=chat.reply_truncated,
            tool_calls=outcomes,
            usage=usage,
        )

    async def _checkpoint(self) -> None:
        """Between steps: wait while paused, stop if the conversation was ended."""
        if self._paused and not self._ended:
            self._set_state(ConversationState.PAUSED)
            await workflow.wait_condition(lambda: not self._paused or self._ended)
            self._set_state(ConversationState.THINKING)
        if self._ended:
            raise _Ended()

    async def _flush_injected(self) -> None:
        """Injected ``next`` messages enter the transcript before the model's next step."""
        while self._injected:
            injected = self._injected.pop(0)
            await self._append(injected.role, injected.content)

    async def _append(self, role: str, content: str, tool_call_id: str | None = None) -> None:
        seq = self._next_seq
        await workflow.execute_activity(
            "transcript.append",
            AppendMessage(
                conversation_id=self._conversation_id, seq=seq, role=role, content=content, tool_call_id=tool_call_id
            ),
            summary=f"store {role} message #{seq}",
            **STORE_CALL,
        )
        self._next_seq = seq + 1
        self._remember(seq, role, content)

    async def _ask_model(self, turn: int) -> ChatResult:
        """Ask the model, riding out an unreachable Ollama with durable back-off.

        The activity retries a few times by itself; past that the workflow records the error in
        ``status.last_error`` and tries again later, so an operator can see why a turn waits.
        """
        assert self._template is not None
        deadline = workflow.now() + timedelta(seconds=self._input.model_retry_timeout_s)
        delay = MODEL_RETRY_FIRST_DELAY_S
        while True:
            request = ChatRequest(
                conversation_id=self._conversation_id,
                turn=turn,
                reply_seq=self._next_seq,
                upto_seq=self._next_seq - 1,
                template=self._template,
                now=workflow.now(),
                tools=[spec.ollama_definition() for spec in self._tools.values()],
                memory_ids=self._memory_ids,
            )
            try:
                result: ChatResult = await workflow.execute_activity(
                    "llm.chat",
                    request,
                    result_type=ChatResult,
                    summary=f"{self._template.model} · turn {turn}",
                    task_queue=self._routing.llm_queue,
                    **MODEL_CALL,
                )
            except ActivityError as err:
                message = _cause_message(err)
                self._last_error = message
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
            self._next_seq += 1
            self._remember(request.reply_seq, "assistant", result.reply)
            return result

    # --- memory -----------------------------------------------------------------------------

    def _memory_on(self) -> bool:
        return bool(self._template and self._template.memory) and workflow.patched(MEMORY_PATCH)

    def _memory_call(self) -> dict[str, Any]:
        return dict(task_queue=self._routing.llm_queue, **MEMORY_CALL)

    async def _recall(self, seq: int, turn: int) -> list[str]:
        """Ids of the memories for message ``seq``; memory trouble never stops the turn."""
        assert self._template is not None
        try:
            recalled: RecallResult = await workflow.execute_activity(
                "memory.recall",
                RecallRequest(conversation_id=self._conversation_id, seq=seq, agent=self._template.name,
                              user_id=self._input.user_id),
                result_type=RecallResult,
                summary=f"recall memories · turn {turn}",
                **self._memory_call(),
            )
        except ActivityError as err:
            recalled = RecallResult(error=_cause_message(err))
        if recalled.error:
            workflow.logger.warning("turn %s answers without memories: %s", turn, recalled.error)
        self._emit(EventType.MEMORY_RECALLED, {"turn": turn, "count": len(recalled.memory_ids), "error": recalled.error})
        return recalled.memory_ids

    async def _store_memories(self, turn: int, first_seq: int) -> None:
        """After the caller has its answer: extract what the turn taught and remember it."""
        assert self._template is not None
        try:
            stored: StoredMemories = await workflow.execute_activity(
                "memory.store",
                StoreTurnMemories(conversation_id=self._conversation_id, turn=turn, from_seq=first_seq,
                                  upto_seq=self._next_seq - 1, agent=self._template.name,
                                  user_id=self._input.user_id, model=self._template.model),
                result_type=StoredMemories,
                summary=f"extract memories · turn {turn}",
                **self._memory_call(),
            )
        except ActivityError as err:
            stored = StoredMemories(skipped=f"extraction failed: {_cause_message(err)}")
            workflow.logger.warning("turn %s: %s", turn, stored.skipped)
        self._emit(EventType.MEMORY_STORED, {"turn": turn, **stored.model_dump()})

    # --- tools ------------------------------------------------------------------------------

    async def _run_tool(self, call: ToolCallRequest, turn: int) -> ToolCallOutcome:
        """Judge one tool call, wait for a person if the policy asks, run it, record everything."""
        spec = self._tools.get(call.name)
        if spec is None:
            await self._append("tool", f"error: there is no tool named {call.name!r}; answer without it")
            return ToolCallOutcome(id=call.id, tool=call.name, decision="deny", success=False)
        arguments = call.arguments
        errors = argument_errors(spec.parameters, arguments)
        if errors:
            message = f"invalid arguments for {spec.name}: {'; '.join(errors)}. Fix them and call again."
            return await self._conclude(call, spec, turn, arguments, "invalid", "schema", error=message)
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
                self._overrides.append(always(self._context(spec, arguments)))
        elif decision == Decision.DENY:
            return await self._conclude(call, spec, turn, arguments, "deny", source,
                                        error=f"not run: denied by policy ({verdict.reason})")
        else:
            self._consecutive_auto += 1
        await self._checkpoint()
        result = await self._execute(call, spec, arguments)
        return await self._conclude(call, spec, turn, arguments, label, source, result=result, waited_ms=waited_ms)

    def _emit_judged(self, call: ToolCallRequest, spec: ToolSpec, decision: str, source: str) -> None:
        self._emit(EventType.TOOL_CALL, {"tool_call_id": call.id, "tool": spec.name,
                                         "arguments_hash": args_hash(call.arguments), "decision": decision,
                                         "source": source})

    async def _memory_tool(self, call: ToolCallRequest, spec: ToolSpec, turn: int) -> ToolResult:
        assert self._template is not None
        try:
            return await workflow.execute_activity(
                "memory.tool",
                MemoryToolCall(conversation_id=self._conversation_id, turn=turn, tool=spec.name,
                               arguments=call.arguments, agent=self._template.name, user_id=self._input.user_id),
                result_type=ToolResult,
                summary=f"{spec.name} {_display(spec.name, call.arguments)}"[:200],
                task_queue=self._routing.llm_queue,
                start_to_close_timeout=timedelta(seconds=spec.timeout_s),
                retry_policy=RetryPolicy(maximum_attempts=spec.max_attempts,
                                         non_retryable_error_types=["InvalidArguments"]),
            )
        except ActivityError as err:
            return ToolResult(success=False, error=f"memory unavailable: {_cause_message(err)}")

    def _context(self, spec: ToolSpec, arguments: dict) -> ToolCallContext:
        return ToolCallContext(
            tool=spec.name,
            action_type=spec.action_type,
            arguments=arguments,
            auto_accept=self._auto_accept,
            consecutive_auto=self._consecutive_auto,
        )

    def _judge(self, spec: ToolSpec, arguments: dict) -> Verdict:
        assert self._policy is not None
        judge = evaluate if workflow.patched(POLICY_ENGINE_PATCH) else legacy.evaluate
        return judge(self._policy, self._context(spec, arguments), self._overrides)

    async def _await_approval(self, call: ToolCallRequest, spec: ToolSpec, verdict: Verdict) -> Approve | None:
        """Wait on a durable timer for a person's decision; ``None`` when it times out."""
        self._pending[call.id] = PendingApproval(
            tool_call_id=call.id,
            tool=spec.name,
            arguments=call.arguments,
            args_hash=args_hash(call.arguments),
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
        return self._decisions.get(call.id)

    async def _execute(self, call: ToolCallRequest, spec: ToolSpec, arguments: dict) -> ToolResult:
        self._running = f"{spec.name} {_display(spec.name, arguments)}"
        self._set_state(ConversationState.RUNNING_TOOL)
        try:
            result: ToolResult = await workflow.execute_child_workflow(
                ToolExecutionWorkflow.run,
                args=[
                    spec,
                    ToolCallInput(
                        conversation_id=self._conversation_id,
                        tool_call_id=call.id,
                        tool=spec.name,
                        arguments=arguments,
                        agent=self._template.name if self._template else "",
                        network=spec.needs_egress,
                        task_queue=(self._host_queue if spec.runs_on == RunsOn.SANDBOX else None)
                        or self._routing.sandbox_queue,
                    ),
                ],
                id=tool_workflow_id(self._conversation_id, call.id),
                static_summary=f"{spec.name} {_display(spec.name, arguments)}"[:200],
            )
        except ChildWorkflowError as err:  # terminated or timed out by an operator
            return ToolResult(success=False, error=f"the tool run was stopped: {err.cause or err}")
        else:
            if result.host_queue and spec.runs_on == RunsOn.SANDBOX:
                self._host_queue = result.host_queue
            return result
        finally:
            self._running = None
            self._set_state(ConversationState.THINKING)

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
        await workflow.execute_activity(
            "audit.record",
            ActionRecord(
                conversation_id=self._conversation_id,
                tool_call_id=call.id,
                turn=turn,
                agent=self._template.name if self._template else "",
                tool=spec.name,
                action_type=spec.action_type.value,
                args_hash=args_hash(arguments),
                decision=decision,
                source=source,
                policy_version=self._policy.version if self._policy else "",
                success=result.success if result else None,
                exit_code=result.exit_code if result else None,
                duration_ms=result.duration_ms if result else None,
                error=(result.error if result else error),
                approval_wait_ms=waited_ms,
            ),
            summary=f"audit {spec.name}: {decision}",
            **STORE_CALL,
        )
        self._emit(EventType.TOOL_RESULT, {
            "tool_call_id": call.id, "tool": spec.name, "decision": decision,
            "success": result.success if result else False, "exit_code": result.exit_code if result else None,
            "duration_ms": result.duration_ms if result else None, "error": result.error if result else error})
        await self._append("tool", _tool_message(result, error), tool_call_id=call.id)
        return ToolCallOutcome(id=call.id, tool=spec.name, decision=decision, success=result.success if result else False)

    # --- state shown to operators -----------------------------------------------------------

    def _resting_state(self) -> ConversationState:
        if self._ended:
            return ConversationState.ENDED
        return ConversationState.PAUSED if self._paused else ConversationState.IDLE

    def _set_state(self, state: ConversationState) -> None:
        if state != self._state:
            awaiting = state == ConversationState.AWAITING_APPROVAL
            updates = [search_attributes.STATE.value_set(state.value)]
            if awaiting != (self._state == ConversationState.AWAITING_APPROVAL):
                updates.append(search_attributes.AWAITING_APPROVAL.value_set(awaiting))
            self._state = state
            workflow.upsert_search_attributes(updates)
            self._emit(EventType.STATE, {"state": state.value, "details": self._describe()})
        self._set_details(self._describe())

    def _describe(self) -> str:
        model = self._template.model if self._template else "?"
        if self._state == ConversationState.THINKING:
            return f"thinking · turn {self._turn} · {model}"
        if self._state == ConversationState.AWAITING_APPROVAL and self._pending:
            waiting = "; ".join(f"{p.tool} {_display(p.tool, p.arguments)}" for p in self._pending.values())
            return f"awaiting approval: {waiting}"
        if self._state == ConversationState.RUNNING_TOOL and self._running:
            return f"running {self._running}"
        if self._state == ConversationState.PAUSED:
            return f"paused: {self._pause_reason}" if self._pause_reason else "paused"
        if self._state == ConversationState.ENDED:
            return f"ended: {self._end_reason}" if self._end_reason else "ended"
        queued = f" · {len(self._queue)} queued" if self._queue else ""
        return f"idle · {self._turn} turns · {model}{queued}"

    def _set_details(self, details: str) -> None:
        workflow.set_current_details(details)

    def _remember(self, seq: int, role: str, content: str) -> None:
        self._recent.append(
            MessageView(
                seq=seq,
                role=role,
                content=content[:RECENT_MESSAGE_CHARS],
                truncated=len(content) > RECENT_MESSAGE_CHARS,
            )
        )
        del self._recent[:-RECENT_MESSAGES_KEPT]
        self._emit(EventType.MESSAGE, {"seq": seq, "role": role, "content": content[:EVENT_PREVIEW_CHARS],
                                       "truncated": len(content) > EVENT_PREVIEW_CHARS})

    def _emit(self, type: EventType, data: dict[str, Any]) -> None:
        """Events are workflow state only (no commands), so adding them never breaks replay."""
        self._events.append(ConversationEvent(id=self._next_event_id, type=type, at=workflow.now(), data=data))
        self._next_event_id += 1
        del self._events[:-EVENTS_KEPT]

    # --- update -----------------------------------------------------------------------------

    @workflow.update
    async def send_message(self, message: SendMessage) -> TurnResult:
        item = QueuedMessage(id=str(workflow.uuid4()), content=message.content, has_caller=True)
        self._queue.append(item)
        if self._state == ConversationState.IDLE:
            self._set_details(self._describe())
        await workflow.wait_condition(lambda: item.id in self._results)
        result = self._results.pop(item.id)
        if isinstance(result, ApplicationError):
            raise result
        return result

    @send_message.validator
    def _validate_message(self, message: SendMessage) -> None:
        if self._ended:
            raise ValueError(f"conversation has ended ({self._end_reason or 'no reason given'}); start a new one")
        if not message.content.strip():
            raise ValueError("message content is empty")
        limit = self._input.max_message_chars
        if len(message.content) > limit:
            raise ValueError(f"message is {len(message.content)} characters; the limit is {limit}")

    # --- signals ----------------------------------------------------------------------------

    @workflow.signal
    def pause(self, signal: Pause | None = None) -> None:
        self._paused = True
        self._pause_reason = (signal.reason if signal else "") or None
        if self._state == ConversationState.IDLE:
            self._set_state(ConversationState.PAUSED)

    @workflow.signal
    def resume(self) -> None:
        self._paused = False
        self._pause_reason = None
        if self._state == ConversationState.PAUSED and not self._in_turn:
            self._set_state(ConversationState.IDLE)

    @workflow.signal
    def inject(self, signal: Inject) -> None:
        if not signal.content.strip() or self._ended:
            workflow.logger.warning("inject ignored: %s", "conversation ended" if self._ended else "empty content")
            return
        if signal.priority == "next":
            self._injected.append(signal)
        else:
            self._queue.append(QueuedMessage(id=str(workflow.uuid4()), content=signal.content, role=signal.role))

    @workflow.signal
    def approve(self, signal: Approve) -> None:
        pending = self._pending.get(signal.tool_call_id)
        why = None
        if pending is None:
            decided = signal.tool_call_id in self._decisions
            why = "already decided" if decided else "no tool call waits under this id"
        elif signal.arguments_hash and signal.arguments_hash != pending.args_hash:
            why = "the arguments shown to the approver are not the ones waiting"
        elif signal.decision == "edit" and signal.arguments is None:
            why = "an edit needs the new arguments"
        elif signal.decision in ("approve", "approve_always") and signal.arguments not in (None, pending.arguments):
            why = "approve runs the arguments shown; use decision=edit to change them"
        if why:
            workflow.logger.warning("approval for %s ignored: %s", signal.tool_call_id, why)
            self._ignored_approvals.append(f"{signal.tool_call_id} ({signal.decision} by {signal.approver}): {why}")
            del self._ignored_approvals[:-IGNORED_APPROVALS_KEPT]
            return
        self._decisions[signal.tool_call_id] = signal

    @workflow.signal
    def set_auto_accept(self, signal: SetAutoAccept) -> None:
        self._auto_accept = signal.enabled

    @workflow.signal
    def end(self, signal: End | None = None) -> None:
        self._ended = True
        self._end_reason = (signal.reason if signal else "") or "ended by operator"

    # --- queries ----------------------------------------------------------------------------

    @workflow.query
    def status(self) -> Status:
        return Status(
            conversation_id=self._conversation_id,
            state=self._state,
            paused=self._paused,
            pause_reason=self._pause_reason,
            turn=self._turn,
            queued=len(self._queue),
            pending_approvals=list(self._pending.values()),
            agent=self._template.name if self._template else self._input.agent,
            model=(self._template.model if self._template else self._input.model) or "",
            auto_accept=self._auto_accept,
            last_error=self._last_error,
            ended_reason=self._end_reason or None,
            ignored_approvals=list(self._ignored_approvals),
        )

    @workflow.query
    def history(self, query: HistoryQuery | None = None) -> list[MessageView]:
        limit = (query or HistoryQuery()).limit
        return self._recent[-limit:]

    @workflow.query
    def pending_approvals(self) -> list[PendingApproval]:
        return list(self._pending.values())

    @workflow.query
    def events(self, query: EventsQuery | None = None) -> list[ConversationEvent]:
        query = query or EventsQuery()
        return [e for e in self._events if e.id > query.after][: query.limit]


def _cause_message(err: ActivityError) -> str:
    cause = err.cause
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, TemporalTimeout):
        return f"model call timed out ({cause.type.name.lower() if cause.type else 'timeout'})"
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)


def _non_retryable(err: ActivityError) -> bool:
    return isinstance(err.cause, ApplicationError) and err.cause.non_retryable


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
    parts = [result.output] if result.output else []
    if result.exit_code is not None:
        parts.append(f"[exit code {result.exit_code}]")
    if result.truncated:
        parts.append("[output truncated; the full output is kept as an artifact]")
    if result.error:
        parts.append(f"error: {result.error}")
    return "\n".join(parts) or "(no output)"
