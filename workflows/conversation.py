"""ConversationWorkflow: one durable conversation with an agent.

The workflow decides and waits; every side effect is an activity. Message bodies live in the store
and activities pass only sequence numbers and small results, so history grows by a bounded number
of small events per turn. Messages arrive through the ``send_message`` update (or ``inject``), wait
in a queue and are answered one turn at a time; pause, resume, inject and end are honoured between
the steps of a turn.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError as TemporalTimeout

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
    from models.llm import ChatRequest, ChatResult, ToolCallRequest
    from models.transcript import AppendMessage, CloseConversation, OpenConversation, OpenedConversation
    from workflows import search_attributes

RECENT_MESSAGES_KEPT = 50
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
                ),
                result_type=OpenedConversation,
                summary=f"open conversation with agent {self._input.agent}",
                **STORE_CALL,
            )
        except ActivityError as err:
            raise ApplicationError(_cause_message(err), type="OpenFailed", non_retryable=True) from err
        self._next_seq = opened.next_seq
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
        try:
            result = await self._run_turn(item)
            self._last_error = None
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

    async def _run_turn(self, item: QueuedMessage) -> TurnResult:
        assert self._template is not None
        turn = self._turn
        self._set_state(ConversationState.THINKING)
        await self._flush_injected()
        await self._append(item.role, item.content)
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
                outcomes.append(await self._run_tool(call))
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

    async def _append(self, role: str, content: str) -> None:
        seq = self._next_seq
        await workflow.execute_activity(
            "transcript.append",
            AppendMessage(conversation_id=self._conversation_id, seq=seq, role=role, content=content),
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
            )
            try:
                result: ChatResult = await workflow.execute_activity(
                    "llm.chat",
                    request,
                    result_type=ChatResult,
                    summary=f"{self._template.model} · turn {turn}",
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

    async def _run_tool(self, call: ToolCallRequest) -> ToolCallOutcome:
        """No tool is offered to the model yet; a call to one it invented is answered as such."""
        await self._append("tool", f"error: there is no tool named {call.name!r}; answer without it")
        return ToolCallOutcome(id=call.id, tool=call.name, decision="deny", success=False)

    # --- state shown to operators -----------------------------------------------------------

    def _resting_state(self) -> ConversationState:
        if self._ended:
            return ConversationState.ENDED
        return ConversationState.PAUSED if self._paused else ConversationState.IDLE

    def _set_state(self, state: ConversationState) -> None:
        if state != self._state:
            self._state = state
            workflow.upsert_search_attributes([search_attributes.STATE.value_set(state.value)])
        self._set_details(self._describe())

    def _describe(self) -> str:
        model = self._template.model if self._template else "?"
        if self._state == ConversationState.THINKING:
            return f"thinking · turn {self._turn} · {model}"
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
        workflow.logger.warning("approval for unknown tool call %s ignored", signal.tool_call_id)

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
            pending_approvals=[],
            agent=self._template.name if self._template else self._input.agent,
            model=(self._template.model if self._template else self._input.model) or "",
            auto_accept=self._auto_accept,
            last_error=self._last_error,
            ended_reason=self._end_reason or None,
        )

    @workflow.query
    def history(self, query: HistoryQuery | None = None) -> list[MessageView]:
        limit = (query or HistoryQuery()).limit
        return self._recent[-limit:]

    @workflow.query
    def pending_approvals(self) -> list[PendingApproval]:
        return []


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
