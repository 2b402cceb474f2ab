"""PrivateMessageWorkflow: one private message to an agent, from submission to its end.

Lifecycle (``models/private_messages.py``): submitted → refused, or accepted → working →
completed | failed, with input_required rounds back to the sender in between. The accept rule is
``workflows/message_acceptance.py`` (hops, workload, expertise, then the recipient's model). Once
accepted, the recipient's conversation (``dm-<recipient>`` unless the sender named one; started
here if it is not running) answers through ``request_turn``, which reports back on ``turn_done``;
a reply starting ``NEED INPUT:`` asks the sender, who answers with the ``provide_input`` update.
With ``deepthink`` the recipient first reasons in a private conversation of its own
(``deepthink-<message_id>-<recipient>``, a few turns, then a summary) and the summary is the
answer: the reasoning stays in that transcript, which operators read as any conversation's.

Everything it knows is workflow state (``self._status``), so a worker crash at any step replays to
the same place: the request ids are fixed per round (``<message_id>-<round>``) and the
conversation ignores a repeat. Each step is written to the store (``messages.record``, an upsert,
a local activity since ``LOCAL_STEPS_PATCH``) for the collaboration tracker and
``relationship_trust``; the sender's conversation, when there is
one, hears of input_required and of the end through the ``private_message_update`` signal
(in order, ``workflows/outbox.py``) — and of ``working`` again once a question was answered, so
it stops offering that question. It never continues as new: its steps are bounded
(``MAX_INPUT_ROUNDS``, ``MAX_DEEPTHINK_STEPS``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.messages import MessageModelActivities, MessageRecordActivities
    from models.conversation import ConversationInput, End, conversation_workflow_id
    from models.private_messages import (
        MAX_INPUT_ROUNDS,
        AcceptAnswer,
        Admission,
        ConsiderRequest,
        MessageState,
        MessageStatus,
        MessageUpdate,
        PrivateMessageInput,
        ProvideInput,
        WorkloadRequest,
        deepthink_conversation_id,
        dm_conversation_id,
    )
    from models.relevance_scoring import AgentProfile, SimilarityRequest, TextRef
    from models.turn_reports import TurnDone, TurnOutcome
    from models.turn_requests import ReplyAddress, TurnRequest
    from workflows import deepthink
    from workflows import message_acceptance as rule
    from workflows.activity_config import MODEL_CALL, STORE_CALL, STORE_LOCAL
    from workflows.conversation import ConversationWorkflow
    from workflows.failures import failure_message
    from workflows.outbox import Outbox
    from workflows.similarity_step import similarities

ADMISSION_PATCH = "message-admission"
"""``messages.admit`` after the accept rule (histories recorded before it accept without it)."""
ANSWERED_PATCH = "message-input-answered"
"""The sender hears ``working`` once its question was answered (by it or by a person)."""
LOCAL_STEPS_PATCH = "message-local-steps"
"""The store steps (record, workload, admission) and, with no llm queue of its own, the expertise
similarity run as local activities, as a channel's do: each saves a workflow task, and the chain of
them was most of a message's latency (``bench.messages``)."""
UPDATE_SIGNAL = "private_message_update"
"""The sender conversation's signal (``ConversationWorkflow.private_message_update``)."""


class _Failed(Exception):
    """The message cannot go on; the reason is its ``str``."""


@workflow.defn(name="PrivateMessageWorkflow")
class PrivateMessageWorkflow:
    @workflow.init
    def __init__(self, request: PrivateMessageInput) -> None:
        self._request = request
        self._status = MessageStatus(
            message_id=request.message_id, sender=request.sender, sender_kind=request.sender_kind,
            recipient=request.recipient, hops=request.hops, created_at=workflow.now(),
        )  # fmt: skip
        self._done: dict[str, TurnDone] = {}
        self._input: ProvideInput | None = None
        self._outbox = Outbox()

    @workflow.run
    async def run(self, request: PrivateMessageInput) -> MessageStatus:
        await self._record()
        refusal = await self._refusal()
        if refusal is None:
            refusal = await self._admitted()
        if refusal is not None:
            self._status.decided_by, self._status.decided_at = refusal.rule, workflow.now()
            await self._finish(MessageState.REFUSED, refusal.reason)
        else:
            try:
                await self._work()
            except _Failed as failed:
                await self._finish(MessageState.FAILED, str(failed))
        await self._outbox.delivered()
        return self._status

    # --- the accept rule ----------------------------------------------------------------------

    async def _refusal(self) -> rule.Refusal | None:
        request = self._request
        refusal = rule.hops_refusal(request)
        if refusal is None:
            busy = await self._store_step(
                MessageRecordActivities.workload,
                WorkloadRequest(recipient=request.recipient, exclude_message_id=request.message_id),
                f"{request.recipient}'s open messages",
            )
            refusal = rule.workload_refusal(request, busy)
        if refusal is None:
            similar = await similarities(
                SimilarityRequest(post=TextRef(text=request.content), agents=[AgentProfile(agent=request.recipient)]),
                f"relevance to {request.recipient}", request.llm_queue, local_allowed=workflow.patched(LOCAL_STEPS_PATCH),
            )
            refusal = rule.expertise_refusal(request, similar)
        if refusal is None:
            answer = await self._consider()
            self._status.decided_by, self._status.reason = "model", answer.reason or None
            if not answer.accept:
                refusal = rule.Refusal("model", answer.reason or f"{request.recipient} declined without a reason")
        return refusal

    async def _admitted(self) -> rule.Refusal | None:
        """Accepted, unless the recipient filled up meanwhile: the workload step again, atomic
        this time (``messages.admit``), so messages decided at once never exceed ``max_open``."""
        if not workflow.patched(ADMISSION_PATCH):  # histories from before: accepted as they were
            await self._set(MessageState.ACCEPTED, decided_at=workflow.now())
            return None
        self._status.state, self._status.decided_at = MessageState.ACCEPTED, workflow.now()
        busy = await self._store_step(
            MessageRecordActivities.admit, Admission(status=self._status, max_open=self._request.max_open),
            f"{self._request.recipient} takes it?",
        )
        if busy is None:
            return None
        self._status.state = MessageState.SUBMITTED
        return rule.workload_refusal(self._request, busy)

    async def _consider(self) -> AcceptAnswer:
        request = self._request
        try:
            return await workflow.execute_activity_method(
                MessageModelActivities.consider,
                ConsiderRequest(message_id=request.message_id, recipient=request.recipient, sender=request.sender,
                                content=request.content),
                summary=f"does {request.recipient} accept?", task_queue=request.llm_queue, **MODEL_CALL)  # fmt: skip
        except ActivityError as err:
            return AcceptAnswer(accept=False, reason=failure_message(err, "asking the recipient")[:500])

    # --- the work -----------------------------------------------------------------------------

    async def _work(self) -> None:
        request = self._request
        if request.deepthink:
            await self._set(MessageState.WORKING)
            done = await self._deepthink()
        else:
            conversation_id = request.conversation_id or dm_conversation_id(request.recipient)
            await self._start_conversation(conversation_id, f"private messages to {request.recipient}")
            await self._set(MessageState.WORKING, conversation_id=conversation_id)
            done = await self._turn(conversation_id, 0, rule.request_text(request))
            while (question := rule.input_question(done.reply)) is not None:
                if self._status.input_rounds >= MAX_INPUT_ROUNDS:
                    raise _Failed(f"the recipient still asks for more after {MAX_INPUT_ROUNDS} answers: {question}")
                answer = await self._ask_sender(question)
                done = await self._turn(conversation_id, self._status.input_rounds, rule.input_text(request, answer.content, answer.author))
        self._status.reply, self._status.reply_chars, self._status.reply_seq = done.reply, done.reply_chars, done.reply_seq
        await self._finish(MessageState.COMPLETED, self._status.reason)

    async def _ask_sender(self, question: str) -> ProvideInput:
        self._input = None
        self._status.input_rounds += 1
        self._status.question = question
        await self._set(MessageState.INPUT_REQUIRED)
        try:
            await workflow.wait_condition(lambda: self._input is not None,
                                          timeout=timedelta(seconds=self._request.input_timeout_s))  # fmt: skip
        except TimeoutError:
            raise _Failed(f"the sender gave no answer within {self._request.input_timeout_s}s to: {question}") from None
        assert self._input is not None
        self._status.question = None
        await self._set(MessageState.WORKING)
        if workflow.patched(ANSWERED_PATCH):  # the sender's question is closed, whoever answered it
            self._tell_sender()
        return self._input

    async def _deepthink(self) -> TurnDone:
        """Several private steps, then the summary; the deepthink conversation ends with it."""
        request = self._request
        conversation_id = deepthink_conversation_id(request.message_id, request.recipient)
        self._status.deepthink_conversation_id = conversation_id
        await self._start_conversation(conversation_id, f"deepthink of {request.recipient} on message {request.message_id}")
        await self._record()
        for step in range(1, request.deepthink_steps + 1):
            await self._turn(conversation_id, step, rule.deepthink_step_text(request, step, request.deepthink_steps))
        done = await self._turn(conversation_id, request.deepthink_steps + 1, deepthink.summary_text(request.sender))
        self._outbox.send(conversation_workflow_id(conversation_id), "end", End(reason="deepthink finished"))
        self._status.conversation_id = conversation_id
        return done

    async def _start_conversation(self, conversation_id: str, summary: str) -> None:
        """The recipient's conversation, started unless it runs already (abandoned when this ends)."""
        start = ConversationInput(conversation_id=conversation_id, agent=self._request.recipient)
        try:
            await workflow.start_child_workflow(
                ConversationWorkflow.run, start, id=conversation_workflow_id(conversation_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON, static_summary=summary)  # fmt: skip
        except WorkflowAlreadyStartedError:
            pass

    async def _turn(self, conversation_id: str, round_: int, text: str) -> TurnDone:
        """One requested turn of ``conversation_id``, answered within ``reply_timeout_s``."""
        request_id = f"{self._request.message_id}-{round_}"
        turn = TurnRequest(request_id=request_id, content=text, author=self._request.sender, hops=self._request.hops,
                           reply_to=ReplyAddress(workflow_id=workflow.info().workflow_id, signal="turn_done"))  # fmt: skip
        try:
            await workflow.get_external_workflow_handle(conversation_workflow_id(conversation_id)).signal(
                ConversationWorkflow.request_turn, turn)
        except FailureError as err:
            raise _Failed(f"the recipient's conversation {conversation_id} cannot be reached: {err}") from None
        try:
            await workflow.wait_condition(lambda: request_id in self._done,
                                          timeout=timedelta(seconds=self._request.reply_timeout_s))  # fmt: skip
        except TimeoutError:
            raise _Failed(f"no answer from {self._request.recipient} within {self._request.reply_timeout_s}s") from None
        done = self._done[request_id]
        if done.outcome != TurnOutcome.ANSWERED:
            raise _Failed(f"the recipient's turn was {done.outcome.value}: {done.error or 'no reason given'}")
        return done

    # --- state, records, the sender ------------------------------------------------------------

    async def _set(self, state: MessageState, **changes: object) -> None:
        for name, value in changes.items():
            setattr(self._status, name, value)
        self._status.state = state
        await self._record()
        if state == MessageState.INPUT_REQUIRED:
            self._tell_sender()

    async def _finish(self, state: MessageState, reason: str | None) -> None:
        self._status.reason = reason
        self._status.finished_at = workflow.now()
        await self._set(state)
        self._tell_sender()

    async def _record(self) -> None:
        await self._store_step(MessageRecordActivities.record, self._status, f"message {self._status.state.value}")

    async def _store_step(self, step: Callable[..., Awaitable[Any]], argument: Any, summary: str) -> Any:
        """A store step (idempotent, short): a local activity since ``LOCAL_STEPS_PATCH``."""
        if workflow.patched(LOCAL_STEPS_PATCH):
            return await workflow.execute_local_activity_method(step, argument, summary=summary, **STORE_LOCAL)
        return await workflow.execute_activity_method(step, argument, summary=summary, **STORE_CALL)

    def _tell_sender(self) -> None:
        if self._request.notify:
            status = self._status
            update = MessageUpdate(message_id=status.message_id, recipient=status.recipient, state=status.state,
                                   reason=status.reason, question=status.question, reply=status.reply,
                                   reply_chars=status.reply_chars)  # fmt: skip
            self._outbox.send(self._request.notify, UPDATE_SIGNAL, update)

    # --- handlers -------------------------------------------------------------------------------

    @workflow.signal
    def turn_done(self, done: TurnDone) -> None:
        self._done[done.request_id] = done

    @workflow.signal
    def sender_input(self, answer: ProvideInput) -> None:
        """The sender conversation's answer (``answer_private_message``: a workflow cannot send an
        update); the same rule as ``provide_input``, and an answer that comes too late is logged."""
        try:
            self._validate_input(answer)
        except ApplicationError as err:
            workflow.logger.warning("answer to message %s ignored: %s", self._status.message_id, err.message)
            return
        self._input = answer

    @workflow.update
    def provide_input(self, answer: ProvideInput) -> MessageStatus:
        """The sender's answer to the recipient's question; the message is working again."""
        self._input = answer
        return self._status

    @provide_input.validator
    def _validate_input(self, answer: ProvideInput) -> None:
        if self._status.state != MessageState.INPUT_REQUIRED or self._input is not None:
            raise ApplicationError(f"message {self._status.message_id} is {self._status.state.value}, not waiting "
                                   "for input", type="NotWaitingForInput")  # fmt: skip

    @workflow.query
    def status(self) -> MessageStatus:
        return self._status
