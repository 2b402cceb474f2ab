"""ChannelWorkflow: a shared room where agents speak only when what they would say is relevant.

Every agent member runs as a long-lived ``ConversationWorkflow`` of its own (``<channel>--<agent>``),
started by the channel with its template, overrides, the channel's user and policy, so it keeps
everything a conversation has (tools through the policy, approvals, memory, a sandbox, audit rows).
A post (the ``post`` update) is stored, scored for every agent by the relevance engine (similarities
from one activity, the scoring itself pure, here), recorded; observers remember it, the agents it is
relevant to answer one at a time through the conversation's ``request_turn`` signal, and each
answer is a message the others are scored on in turn, until nobody wants to speak or a budget
(``workflows/channel_chain.py``) ends the chain. Posts are handled one at a time, in order.

State: one ``CarriedChannel`` (``self._carried``), handed whole to the next run by continue-as-new
between posts; bodies stay in the store, history carries seqs, previews and scores.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.channels import ChannelActivities, ChannelMemoryActivities
    from activities.relevance import RelevanceRecordActivities
    from models.channel import (
        CHANNEL_WORKFLOW_PREFIX,
        AuthorKind,
        ChannelHistoryQuery,
        ChannelInput,
        ChannelMessageView,
        ChannelNote,
        ChannelReply,
        ChannelState,
        ChannelSummary,
        MemberScore,
        NotAnswered,
        Post,
        PostResult,
        ScoredMessage,
        ScoresQuery,
        WatchPost,
        member_conversation_id,
    )
    from models.channel_activities import (
        AppendChannelMessage,
        AppendedChannelMessage,
        CloseChannel,
        ComposeTurn,
        MessageSource,
        ObserveMessage,
        Observed,
        OpenChannel,
    )
    from models.archive import ARCHIVE_PATCH, ArchiveKind, ArchiveRecord
    from models.channel_events import ChannelEvent, ChannelEventType
    from models.channel_state import (
        EVENTS_KEPT,
        RECENT_KEPT,
        SCORED_KEPT,
        AgentSeat,
        CarriedChannel,
        ChannelStatus,
        MemberStatus,
        PostProgress,
        QueuedPost,
    )
    from models.conversation import ConversationInput, ConversationState, End, Pause, conversation_workflow_id
    from models.events import EventsQuery
    from models.relevance_calculation import ScoringContext
    from models.relevance_records import Outcome, RecordOutcome, RecordOutcomes, RecordRelevance
    from models.relevance_scoring import Decision, PostRelevance, Similarities, SimilarityRequest
    from models.turn_reports import TurnDone, TurnOutcome, TurnProgressNote
    from models.turn_requests import ReplyAddress, TurnRequest
    from relevance import score_post
    from workflows import archiving, search_attributes
    from workflows.idle_clock import IdleClock
    from workflows.activity_config import MEMORY_CALL, STORE_CALL, STORE_LOCAL
    from workflows.channel_chain import Chain, Turn
    from workflows.local_steps import LocalSteps
    from workflows.similarity_step import similarities
    from workflows.channel_scoring import (
        agent_profiles,
        agent_states,
        effective_config,
        member_scores,
        nobody_line,
        post_context,
        recent_messages,
        scored_agents,
        scored_message,
        similarity_request,
    )
    from workflows.conversation import ConversationWorkflow
    from workflows.deepthink import channel_deepthink_id, step_text, summary_text
    from models.payloads import PayloadRef
    from workflows.failures import failure_message
    from workflows.outbox import Outbox
    from workflows.queue_bound import QUEUE_FULL, RUN_ENDING, overdue, queue_refusal

CONTEXT_ALLOWANCE_CHARS = 100_000
"""Room a member's turn gets beyond the channel's ``max_message_chars``: the channel's messages
since its last turn come with the one to answer (``activities/channels/texts.py`` cuts each)."""
NOTICE_AUTHOR = "channel"
MEMBER_REFUSALS = ("not members of this channel", "is an agent of this channel")
"""Refusals that need the members: a reviving run checks them once its state is read back."""
TURN_STATES = {ConversationState.AWAITING_APPROVAL: "awaiting_approval", ConversationState.PAUSED: "paused"}
MEMBER_CHECK_PATCH = "member-presence-check"
"""Waiting for a member's report checks it still runs (``budgets.member_check_s``); histories
recorded before wait without timers."""


class _Ended(Exception):
    """Raised inside a post's chain when the channel is ended between two of its steps."""


@workflow.defn(name="ChannelWorkflow")
class ChannelWorkflow:
    @workflow.init
    def __init__(self, input: dict[str, Any] | None = None) -> None:
        self._invalid_input: str | None = None
        try:
            self._input = ChannelInput.model_validate(input or {})
            self._carried = CarriedChannel.model_validate(self._input.carried) if self._input.carried else None
        except ValidationError as err:
            self._input = ChannelInput(agents=["assistant"])
            self._invalid_input = f"invalid ChannelInput: {err}"
            self._carried = None
        self._carried = self._carried or self._first_state()
        self._state = ChannelState.IDLE
        self._ended = False
        self._end_reason = ""
        self._posts_this_run = 0
        self._current: QueuedPost | None = None
        self._scoring: int | None = None
        self._observing: list[str] = []
        self._results: dict[str, PostResult | ApplicationError] = {}
        self._asked: dict[str, str] = {}
        """Request id → agent, for the turns asked of members and not reported yet."""
        self._done: dict[str, TurnDone] = {}
        self._signals = Outbox()
        self._local = LocalSteps()
        self._writes: list[asyncio.Task[None]] = []
        """A post's records and observations, written while its chain goes on; awaited at its end."""
        self._unrecorded: tuple[PostRelevance, list[MemberScore], int] | None = None
        """The latest scored message, recorded when the chain goes on (or with the outcomes at its end)."""
        self._outcomes: list[RecordOutcome] = []
        """What came of the post's decisions, written at its end."""
        self._clock = IdleClock()
        """Archiving after inactivity (``ARCHIVE_PATCH``)."""
        self._reopening = self._input.revive
        """A reviving run before its archive record is read: its members are not known yet."""

    def _first_state(self) -> CarriedChannel:
        channel_id = self._input.channel_id or workflow.info().workflow_id.removeprefix(CHANNEL_WORKFLOW_PREFIX)
        self._input.channel_id = channel_id
        seats = [AgentSeat(agent=m.agent, conversation_id=member_conversation_id(channel_id, m.agent))
                 for m in self._input.agents]  # fmt: skip
        return CarriedChannel(channel_id=channel_id, agents=seats, people=list(self._input.people))

    # --- main loop --------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: dict[str, Any] | None = None) -> ChannelSummary:
        if self._invalid_input:
            raise ApplicationError(self._invalid_input, type="InvalidInput", non_retryable=True)
        archives = workflow.patched(ARCHIVE_PATCH)
        if self._input.revive:
            await self._revive()
        self._input.channel_id = self._carried.channel_id
        if not self._carried.opened:
            await self._open()
        self._upsert_members()
        self._set_state(self._resting_state())
        if archives:
            after = self._input.archive_after_s
            self._clock.start(after if after is not None else self._carried.archive_after_s or 0, self._carried.last_activity_at)
        while True:
            await workflow.wait_condition(lambda: self._ended or self._should_continue_as_new() or self._has_work()
                                          or self._clock.due)  # fmt: skip
            if self._ended:
                break
            if self._clock.due and not self._has_work():
                record = await self._archive()
                if record is not None:
                    return ChannelSummary(channel_id=self._carried.channel_id, posts=self._carried.posts,
                                          ended_reason=f"archived after {record.idle_s}s idle", archive=record)  # fmt: skip
            elif self._carried.notes:
                await self._write_notes()
            elif not self._should_continue_as_new():
                await self._handle(self._carried.queue.pop(0))
            else:
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._signals.delivered()
                if not self._ended and self._should_continue_as_new():
                    self._carried.last_activity_at = self._clock.last
                    carried = self._carried.model_dump(mode="json")
                    workflow.continue_as_new(ChannelInput(**self._input.model_dump(exclude={"carried"}), carried=carried))
        return await self._finish()

    def _has_work(self) -> bool:
        """Notes are written even while paused (people see them at once); posts wait for resume."""
        return bool(self._carried.notes) or (not self._carried.paused and bool(self._carried.queue))

    def _should_continue_as_new(self) -> bool:
        due = self._posts_this_run >= self._input.posts_per_run or workflow.info().is_continue_as_new_suggested()
        return due and not any(item.has_caller for item in self._carried.queue)

    async def _open(self) -> None:
        request = OpenChannel(channel_id=self._carried.channel_id, title=self._input.title, topic=self._input.topic,
                              user_id=self._input.user_id, agents=self._input.agents, people=self._input.people,
                              relevance=self._input.relevance, policy=self._input.policy)  # fmt: skip
        try:
            opened = await workflow.execute_activity_method(
                ChannelActivities.open, request, summary=f"open channel #{self._carried.channel_id}", **STORE_CALL
            )
        except ActivityError as err:
            raise ApplicationError(failure_message(err, "opening the channel"), type="OpenFailed",
                                   non_retryable=True) from err  # fmt: skip
        self._carried.defaults, self._carried.routing = opened.defaults, opened.routing
        self._carried.archive_after_s = opened.archive_after_s
        self._carried.next_seq = opened.next_seq
        for seat in self._carried.agents:
            seat.system_prompt, seat.memory = opened.prompts[seat.agent], opened.memory.get(seat.agent, True)
        await asyncio.gather(*(self._start_member(seat) for seat in self._carried.agents))
        self._carried.opened = True
        if self._carried.paused:  # paused before its agents existed: they start paused
            self._pause_members()

    async def _start_member(self, seat: AgentSeat) -> None:
        """The agent's conversation, started once for the channel's life (abandoned on the channel's
        continue-as-new, which would otherwise close it; ``end`` ends it)."""
        request = self._member_input(seat, seat.conversation_id)
        try:
            await workflow.start_child_workflow(
                ConversationWorkflow.run, request, id=conversation_workflow_id(seat.conversation_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                search_attributes=TypedSearchAttributes([SearchAttributePair(search_attributes.CHANNEL,
                                                                             self._carried.channel_id)]),
                static_summary=f"{seat.agent} in channel #{self._carried.channel_id}",
            )  # fmt: skip
            seat.started = True
        except WorkflowAlreadyStartedError:
            seat.gone = f"conversation {seat.conversation_id!r} is already running outside this channel"

    def _member_input(self, seat: AgentSeat, conversation_id: str) -> ConversationInput:
        member = next(m for m in self._input.agents if m.agent == seat.agent)
        return ConversationInput(
            conversation_id=conversation_id, agent=seat.agent, model=member.model, system_prompt=seat.system_prompt,
            auto_accept=self._input.auto_accept if member.auto_accept is None else member.auto_accept,
            policy=self._input.policy, user_id=self._input.user_id, approval_timeout_s=self._input.approval_timeout_s,
            max_message_chars=self._input.max_message_chars + CONTEXT_ALLOWANCE_CHARS,
            archive_after_s=self._input.archive_after_s,
        )  # fmt: skip

    async def _finish(self) -> ChannelSummary:
        for item in self._carried.queue:
            if item.has_caller:
                self._results[item.id] = ApplicationError(
                    f"channel ended before this post was handled: {self._end_reason}", type="ChannelEnded")
        self._carried.queue.clear()
        self._set_state(ChannelState.ENDED)
        for seat in self._carried.agents:
            if seat.started and seat.gone is None:
                self._signals.send(self._member_id(seat), ConversationWorkflow.end,
                                   End(reason=f"channel #{self._carried.channel_id} ended: {self._end_reason}"))  # fmt: skip
        await workflow.wait_condition(workflow.all_handlers_finished)
        await workflow.execute_activity_method(
            ChannelActivities.close, CloseChannel(channel_id=self._carried.channel_id, reason=self._end_reason),
            summary="close channel", **STORE_CALL,
        )  # fmt: skip
        await self._signals.delivered()
        return ChannelSummary(channel_id=self._carried.channel_id, posts=self._carried.posts, ended_reason=self._end_reason)

    # --- one post ---------------------------------------------------------------------------

    async def _handle(self, item: QueuedPost) -> None:
        self._current = item
        self._posts_this_run += 1
        self._carried.posts += 1
        result: PostResult | ApplicationError
        try:
            result = await self._run_post(item.post)
        except _Ended:
            result = ApplicationError(f"channel ended during this post: {self._end_reason}", type="ChannelEnded")
        except ApplicationError as err:
            result = err
        await self._write_records()  # before the result: its score ids come from the records
        self._current = None
        self._set_state(self._resting_state())
        self._clock.touch()
        if item.has_caller:
            self._results[item.id] = result

    async def _run_post(self, post: Post) -> PostResult:
        if post.author not in self._carried.people:
            self._carried.people.append(post.author)
            self._emit(ChannelEventType.MEMBER_JOINED, {"person": post.author})
            self._upsert_members()
        view, appended = await self._append(post.author, AuthorKind.PERSON, content=post.content,
                                            reply_to=post.reply_to, mentions=post.mentions)  # fmt: skip
        result = PostResult(channel_id=self._carried.channel_id, seq=view.seq)
        relevance, result.scores = await self._score(view, appended)
        result.observed = self._settle(relevance, view)
        chain = Chain(self._input.budgets)
        chain.add(result.scores, view.seq, relevance.speakers)
        if not relevance.speakers:
            result.nobody = nobody_line(result.scores)
            await self._notice(result.nobody, ChannelEventType.NOBODY, {"seq": view.seq})
        while chain.line:
            await self._checkpoint()
            stop = chain.stop_reason(self._carried.tokens_used)
            if stop is not None:
                await self._stop(chain, stop, result)
                break
            await self._speak(chain.next(), chain, result)
        return result

    async def _speak(self, turn: Turn, chain: Chain, result: PostResult) -> None:
        """One agent's answer: asked, written into the channel, then scored by the others."""
        self._record_later()
        done = await (self._reflect(turn) if turn.score.decision == Decision.REFLECT else self._ask(turn))
        if done.outcome != TurnOutcome.ANSWERED or done.reply_seq is None:
            why = done.error or "its turn ended without a reply"
            result.not_answered.append(NotAnswered(agent=turn.agent, reason=why))
            self._emit(ChannelEventType.NOT_ANSWERED, {"agent": turn.agent, "reason": why})
            self._outcome(turn.answers, turn.agent, Outcome.FAILED)
            return
        chain.replies += 1
        seat = self._carried.seat(turn.agent)
        answered = self._view(turn.answers)
        view, appended = await self._append(turn.agent, AuthorKind.AGENT, answers=turn.answers,
                                            source=MessageSource(conversation_id=done.conversation_id, seq=done.reply_seq),
                                            reply_to=answered.author if answered else None)  # fmt: skip
        self._spoke(seat, done, view.seq)
        result.spoke.append(turn.agent)
        result.usage = result.usage + done.usage
        result.replies.append(ChannelReply(agent=turn.agent, seq=view.seq, answers=turn.answers, preview=view.content,
                                           chars=appended.chars, score=turn.score.score,
                                           reason=turn.score.explanation, usage=done.usage))  # fmt: skip
        self._outcome(turn.answers, turn.agent, Outcome.REPLIED)
        relevance, scores = await self._score(view, appended)
        result.reactions.append(scored_message(view, scores))
        self._settle(relevance, view)
        chain.add(scores, view.seq, relevance.speakers)

    def _spoke(self, seat: AgentSeat, done: TurnDone, seq: int) -> None:
        tokens = done.usage.prompt_tokens + done.usage.completion_tokens
        seat.last_spoke_at, seat.seen_seq = workflow.now(), seq
        seat.replies += 1
        seat.tokens += tokens
        self._carried.tokens_used += tokens

    async def _stop(self, chain: Chain, reason: str, result: PostResult) -> None:
        """A budget ends the chain: the channel says so, and those still in line did not answer."""
        dropped = chain.drop()
        names = list(dict.fromkeys(turn.agent for turn in dropped))
        result.stopped = f"{reason}; {', '.join(names)} did not answer"
        result.not_answered += [NotAnswered(agent=name, reason=reason) for name in names]
        budget = "replies_per_post" if reason.startswith("reply budget") else "tokens"
        await self._notice(result.stopped, ChannelEventType.BUDGET_REACHED, {"budget": budget, "skipped": names})
        for turn in dropped:
            self._outcome(turn.answers, turn.agent, Outcome.FAILED)

    async def _checkpoint(self) -> None:
        """Between two turns of a chain: notes are written, a pause holds, an end stops."""
        if self._carried.notes:
            await self._write_notes()
        if self._carried.paused and not self._ended:
            self._set_state(ChannelState.PAUSED)
            await workflow.wait_condition(lambda: not self._carried.paused or self._ended)
            self._set_state(self._busy_state())
        if self._ended:
            raise _Ended()

    # --- asking an agent --------------------------------------------------------------------

    async def _ask(self, turn: Turn) -> TurnDone:
        """The member's turn through ``request_turn``: the channel since its last turn, by reference."""
        seat = self._carried.seat(turn.agent)
        if seat.gone is not None:
            return TurnDone(request_id="", conversation_id=seat.conversation_id, outcome=TurnOutcome.ENDED, error=seat.gone)
        text = await self._compose(seat, turn, seat.conversation_id)
        request_id = f"{self._carried.channel_id}-{turn.answers}-{seat.agent}-{workflow.uuid4().hex[:8]}"
        address = ReplyAddress(workflow_id=workflow.info().workflow_id, signal="turn_done", progress_signal="turn_progress")
        request = TurnRequest(request_id=request_id, content_ref=text, author=f"#{self._carried.channel_id}",
                              reply_to=address)  # fmt: skip
        self._asked[request_id], seat.turn = seat.agent, "answering"
        self._set_state(self._busy_state())
        self._emit(ChannelEventType.TURN_REQUESTED, {"agent": seat.agent, "request_id": request_id, "answers": turn.answers})
        try:
            await self._signal_member(seat, request)
        except FailureError as err:
            seat.gone = f"its conversation cannot be reached: {err}"
        else:
            seat.gone = await self._reported(request_id, self._member_id(seat))
        self._asked.pop(request_id, None)
        seat.turn, seat.waiting = None, []
        self._set_state(self._busy_state())
        if seat.gone is not None:
            return TurnDone(request_id=request_id, conversation_id=seat.conversation_id, outcome=TurnOutcome.ENDED,
                            error=seat.gone)  # fmt: skip
        if request_id not in self._done:
            raise _Ended()
        done = self._done.pop(request_id)
        if done.outcome == TurnOutcome.ENDED:
            seat.gone = f"its conversation ended: {done.error}"
        return done

    async def _compose(self, seat: AgentSeat, turn: Turn, conversation_id: str) -> PayloadRef:
        """The channel since the agent's last turn, stored for ``conversation_id``."""
        text = await self._local.run(
            ChannelActivities.compose,
            ComposeTurn(channel_id=self._carried.channel_id, conversation_id=conversation_id, agent=seat.agent,
                        after_seq=seat.seen_seq, answering_seq=turn.answers,
                        limit=self._input.budgets.context_messages),
            summary=f"{seat.agent}'s turn on #{turn.answers}", config=STORE_LOCAL,
        )  # fmt: skip
        seat.seen_seq = max(seat.seen_seq, turn.answers)
        return text

    def _member_id(self, seat: AgentSeat) -> str:
        return conversation_workflow_id(seat.conversation_id)

    # --- reflecting (thresholds.reflect): a deepthink, then the summary -------------------------

    async def _reflect(self, turn: Turn) -> TurnDone:
        """The agent reasons in a deepthink conversation of its own (``workflows/deepthink.py``) for
        ``budgets.deepthink_steps`` turns, the first with the channel since its last turn; the summary
        is its answer. The steps stay in that transcript: no channel message, no other member's."""
        seat = self._carried.seat(turn.agent)
        thinking = channel_deepthink_id(self._carried.channel_id, seat.agent, turn.answers)
        try:
            await workflow.start_child_workflow(
                ConversationWorkflow.run, self._member_input(seat, thinking), id=conversation_workflow_id(thinking),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"deepthink of {seat.agent} on #{self._carried.channel_id} message {turn.answers}")  # fmt: skip
        except WorkflowAlreadyStartedError:
            pass
        text = await self._compose(seat, turn, thinking)
        steps = self._input.budgets.deepthink_steps
        self._emit(ChannelEventType.TURN_REQUESTED, {"agent": seat.agent, "deepthink": thinking, "answers": turn.answers})
        address = ReplyAddress(workflow_id=workflow.info().workflow_id, signal="turn_done", progress_signal="turn_progress")
        done = TurnDone(request_id="", conversation_id=thinking, outcome=TurnOutcome.ENDED, error="no step ran")
        for step in range(1, steps + 2):
            content = step_text(step, steps, f"what to answer in #{self._carried.channel_id}") if step <= steps \
                else summary_text(f"#{self._carried.channel_id}")
            request = TurnRequest(request_id=f"{thinking}-{step}", content=content, content_ref=text if step == 1 else None,
                                  author=f"#{self._carried.channel_id}", reply_to=address)  # fmt: skip
            done = await self._requested(seat, conversation_workflow_id(thinking), request)
            if done.outcome != TurnOutcome.ANSWERED:
                break
        self._signals.send(conversation_workflow_id(thinking), ConversationWorkflow.end, End(reason="deepthink over"))
        return done

    async def _requested(self, seat: AgentSeat, target: str, request: TurnRequest) -> TurnDone:
        """One deepthink step: asked of ``target`` and waited for, as ``_ask`` does for the member."""
        self._asked[request.request_id], seat.turn = seat.agent, "answering"
        self._set_state(self._busy_state())
        try:
            await workflow.get_external_workflow_handle(target).signal(ConversationWorkflow.request_turn, request)
        except FailureError as err:
            self._asked.pop(request.request_id, None)
            return TurnDone(request_id=request.request_id, conversation_id=target, outcome=TurnOutcome.ENDED,
                            error=f"its deepthink cannot be reached: {err}")  # fmt: skip
        stopped = await self._reported(request.request_id, target)
        self._asked.pop(request.request_id, None)
        seat.turn, seat.waiting = None, []
        self._set_state(self._busy_state())
        if stopped is not None:
            return TurnDone(request_id=request.request_id, conversation_id=target, outcome=TurnOutcome.ENDED, error=stopped)
        if request.request_id not in self._done:
            raise _Ended()
        return self._done.pop(request.request_id)

    async def _reported(self, request_id: str, target: str) -> str | None:
        """Until ``target`` reports on ``request_id`` or the channel ends; the reason if ``target``
        stopped without reporting (terminated by an operator: nothing else closes a conversation
        with a request unanswered). Checked every ``budgets.member_check_s`` with a signal that
        changes nothing, which a closed run refuses."""
        if not workflow.patched(MEMBER_CHECK_PATCH):
            await workflow.wait_condition(lambda: request_id in self._done or self._ended)
            return None
        every = timedelta(seconds=self._input.budgets.member_check_s)
        while True:
            try:
                await workflow.wait_condition(lambda: request_id in self._done or self._ended, timeout=every)
                return None
            except TimeoutError:
                pass
            try:
                await workflow.get_external_workflow_handle(target).signal(ConversationWorkflow.still_running)
            except FailureError as err:
                return None if request_id in self._done else f"its conversation stopped without answering: {err}"

    # --- archiving after inactivity (workflows/idle_clock.py, workflows/archiving.py) ----------

    def _archivable(self) -> bool:
        quiet = not (self._carried.queue or self._carried.notes or self._current or self._asked)
        return quiet and not self._ended and workflow.all_handlers_finished()

    async def _archive(self) -> ArchiveRecord | None:
        """The archive record, if nothing needs this run any more; else None (the clock waits another
        period). A post or a note arriving while the record is written takes it back."""
        await self._signals.delivered()
        if not self._archivable():
            self._clock.not_now()
            return None
        self._carried.last_activity_at = self._clock.last
        record = await archiving.write(ArchiveKind.CHANNEL, self._carried.channel_id, self._carried.posts, self._clock,
                                       self._input, self._carried)  # fmt: skip
        if not self._archivable():
            await archiving.reopen(ArchiveKind.CHANNEL, [])
            self._clock.touch()
            return None
        self._set_state(ChannelState.ARCHIVED)
        return record

    async def _revive(self) -> None:
        """A new run of an archived channel: input and state come back from the archive record; a
        post that arrived first stays queued after what was carried. Its agents' conversations are
        revived one by one when they are next asked for a turn (``_signal_member``)."""
        self._input.revive = False
        reopened = await archiving.reopen(ArchiveKind.CHANNEL, [])
        if reopened.input is None or reopened.carried is None:
            self._reopening = False
            return  # never archived: a plain start
        arrived = self._carried
        self._input = ChannelInput.model_validate({**reopened.input, "revive": False})
        self._carried = CarriedChannel.model_validate(reopened.carried)
        self._carried.queue += arrived.queue
        self._carried.notes += arrived.notes
        self._carried.last_activity_at = None
        self._reopening = False

    async def _signal_member(self, seat: AgentSeat, request: TurnRequest) -> None:
        """``request_turn`` to the agent's conversation; one that archived meanwhile (the store says
        so: an *ended* one is not revived) is revived first — a new run of the same id reading its
        archive record — then asked."""
        handle = workflow.get_external_workflow_handle(self._member_id(seat))
        try:
            await handle.signal(ConversationWorkflow.request_turn, request)
            return
        except FailureError:
            if not workflow.patched(ARCHIVE_PATCH) or not await archiving.archived(ArchiveKind.CONVERSATION, handle.id):
                raise  # ended (or never archived): the seat is gone
        revive = self._member_input(seat, seat.conversation_id).model_copy(update={"revive": True})
        try:
            await workflow.start_child_workflow(
                ConversationWorkflow.run, revive, id=self._member_id(seat), parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                search_attributes=TypedSearchAttributes([SearchAttributePair(search_attributes.CHANNEL, self._carried.channel_id)]),
                static_summary=f"{seat.agent} in channel #{self._carried.channel_id} (revived)",
            )  # fmt: skip
        except WorkflowAlreadyStartedError:
            pass  # it runs (revived by someone else): ask it
        self._emit(ChannelEventType.STATE, {"state": self._state.value, "details": f"{seat.agent}'s conversation revived"})
        await handle.signal(ConversationWorkflow.request_turn, request)

    # --- scoring, observing, recording ------------------------------------------------------

    async def _score(self, view: ChannelMessageView, appended: AppendedChannelMessage) -> tuple[PostRelevance, list[MemberScore]]:
        if not scored_agents(self._carried, view.author):
            return PostRelevance(channel_id=self._carried.channel_id, message_id=str(view.seq), scores=[]), []
        self._scoring = view.seq
        self._set_state(self._busy_state(ChannelState.SCORING))
        assert self._carried.defaults is not None
        config = effective_config(self._carried.defaults, appended.thresholds, self._input.relevance,
                                  self._carried.channel_id)
        similarities = await self._similarities(similarity_request(self._carried, self._input, view), view.seq)
        context = post_context(self._carried, view, appended.mentions, workflow.now())
        relevance = score_post(config, context, agent_states(self._carried, view.author, similarities.trust), similarities)
        scores = member_scores(relevance)
        self._unrecorded = (relevance, scores, view.seq)
        self._carried.scored.append(scored_message(view, scores))
        del self._carried.scored[:-SCORED_KEPT]
        self._scoring = None
        self._set_state(self._busy_state())
        self._emit(ChannelEventType.SCORED, {
            "seq": view.seq, "author": view.author, "speakers": relevance.speakers, "observers": relevance.observers,
            "scores": [s.model_dump(mode="json", include={"agent", "score", "decision", "explanation"}) for s in scores]})
        return relevance, scores

    async def _similarities(self, request: SimilarityRequest, seq: int) -> Similarities:
        return await similarities(request, f"similarities of #{seq}", self._carried.routing.llm_queue, self._local)

    def _record_later(self) -> None:
        """The latest scored message's decisions go to the records while the chain goes on."""
        if self._unrecorded is not None:
            self._writes.append(asyncio.create_task(self._record(*self._unrecorded)))
            self._unrecorded = None

    async def _record(self, relevance: PostRelevance, scores: list[MemberScore], seq: int,
                      outcomes: list[RecordOutcome] | None = None) -> None:  # fmt: skip
        """The decisions with their factor breakdowns into the records (then ``outcomes``); the ids
        into ``scores``."""
        ids = await self._local.run(
            RelevanceRecordActivities.record, RecordRelevance(post=relevance, at=workflow.now(), outcomes=outcomes or []),
            summary=f"record the scores of #{seq}" + (f" and {len(outcomes)} outcomes" if outcomes else ""), config=STORE_LOCAL,
        )  # fmt: skip
        for score, score_id in zip(scores, ids, strict=True):
            score.score_id = score_id

    async def _write_records(self) -> None:
        """At a post's end: what is still being written, then its last message's scores with what
        came of every decision of the post, in one call (outcomes need their scores written first)."""
        await asyncio.gather(*self._writes)
        self._writes.clear()
        outcomes, self._outcomes = self._outcomes, []
        if self._unrecorded is not None:
            pending, self._unrecorded = self._unrecorded, None
            await self._record(*pending, outcomes=outcomes)
        elif outcomes:
            await self._local.run(RelevanceRecordActivities.outcomes, RecordOutcomes(outcomes=outcomes),
                                  summary=f"{len(outcomes)} outcomes", config=STORE_LOCAL)  # fmt: skip

    def _settle(self, relevance: PostRelevance, view: ChannelMessageView) -> list[str]:
        """Observers remember the message (while the chain goes on); ignores are noted. The observers."""
        for score in relevance.scores:
            if score.decision == Decision.IGNORE:
                self._outcome(view.seq, score.agent, Outcome.IGNORED)
        for agent in relevance.observers:
            self._writes.append(asyncio.create_task(self._observe(agent, view)))
        return list(relevance.observers)

    async def _observe(self, agent: str, view: ChannelMessageView) -> None:
        seat = self._carried.seat(agent)
        observed = Observed(stored=False, skipped="memory is off for this agent")
        self._observing.append(agent)
        self._set_details()
        if seat.memory:
            try:
                observed = await workflow.execute_activity_method(
                    ChannelMemoryActivities.observe,
                    ObserveMessage(channel_id=self._carried.channel_id, seq=view.seq, agent=agent,
                                   conversation_id=seat.conversation_id, user_id=self._input.user_id),
                    summary=f"{agent} observes #{view.seq}", task_queue=self._carried.routing.llm_queue, **MEMORY_CALL,
                )  # fmt: skip
            except ActivityError as err:
                observed = Observed(stored=False, skipped=failure_message(err, "remembering the message"))
        self._observing.remove(agent)
        self._set_details()
        self._emit(ChannelEventType.OBSERVED, {"seq": view.seq, "agent": agent, **observed.model_dump()})
        failed = observed.skipped is not None and seat.memory
        self._outcome(view.seq, agent, Outcome.FAILED if failed else Outcome.OBSERVED)

    def _outcome(self, seq: int, agent: str, outcome: Outcome) -> None:
        self._outcomes.append(RecordOutcome(channel_id=self._carried.channel_id, message_id=str(seq), agent=agent,
                                            outcome=outcome, at=workflow.now()))  # fmt: skip



    # --- the channel's messages -------------------------------------------------------------

    async def _append(self, author: str, kind: AuthorKind, content: str = "", source: MessageSource | None = None,
                      reply_to: str | None = None, answers: int | None = None,
                      mentions: list[str] | None = None) -> tuple[ChannelMessageView, AppendedChannelMessage]:  # fmt: skip
        seq, now = self._carried.next_seq, workflow.now()
        appended = await self._local.run(
            ChannelActivities.append,
            AppendChannelMessage(channel_id=self._carried.channel_id, seq=seq, author=author, kind=kind, content=content,
                                 source=source, reply_to=reply_to, answers=answers, mentions=mentions or [],
                                 members=self._member_names(), at=now),
            summary=f"store {kind.value} message #{seq} by {author}", config=STORE_LOCAL,
        )  # fmt: skip
        self._carried.next_seq = seq + 1
        view = ChannelMessageView(seq=seq, author=author, kind=kind, content=appended.preview,
                                  truncated=appended.chars > len(appended.preview), reply_to=reply_to, at=now)  # fmt: skip
        self._carried.recent.append(view)
        del self._carried.recent[:-RECENT_KEPT]
        self._emit(ChannelEventType.MESSAGE, view.model_dump(mode="json", exclude={"at"}))
        return view, appended

    async def _notice(self, text: str, event: ChannelEventType, data: dict[str, Any]) -> None:
        """The channel's own word in its history (agents never read these)."""
        await self._append(NOTICE_AUTHOR, AuthorKind.NOTICE, content=text)
        self._emit(event, {**data, "detail": text})

    async def _write_notes(self) -> None:
        while self._carried.notes:
            note = self._carried.notes[0]
            await self._append(note.author, AuthorKind.NOTE, content=note.content)
            self._carried.notes.pop(0)

    def _view(self, seq: int) -> ChannelMessageView | None:
        return next((v for v in self._carried.recent if v.seq == seq), None)

    def _member_names(self) -> list[str]:
        return [seat.agent for seat in self._carried.agents] + self._carried.people

    # --- state shown to operators -----------------------------------------------------------

    def _resting_state(self) -> ChannelState:
        if self._ended:
            return ChannelState.ENDED
        return ChannelState.PAUSED if self._carried.paused else ChannelState.IDLE

    def _busy_state(self, doing: ChannelState = ChannelState.ANSWERING) -> ChannelState:
        """The state while a post is handled: ``doing``, unless paused or ended."""
        return ChannelState.PAUSED if self._carried.paused and not self._ended else doing

    def _set_state(self, state: ChannelState) -> None:
        if state == ChannelState.ANSWERING and any(s.turn == "awaiting_approval" for s in self._carried.agents):
            state = ChannelState.AWAITING_APPROVAL
        if state != self._state:
            awaiting = state == ChannelState.AWAITING_APPROVAL
            updates = [search_attributes.STATE.value_set(state.value)]
            if awaiting != (self._state == ChannelState.AWAITING_APPROVAL):
                updates.append(search_attributes.AWAITING_APPROVAL.value_set(awaiting))
            self._state = state
            workflow.upsert_search_attributes(updates)
            self._emit(ChannelEventType.STATE, {"state": state.value, "details": self._describe()})
        self._set_details()

    def _set_details(self) -> None:
        workflow.set_current_details(self._describe())

    def _describe(self) -> str:
        if self._state == ChannelState.ENDED:
            return f"ended: {self._end_reason}" if self._end_reason else "ended"
        if self._state == ChannelState.PAUSED:
            return f"paused: {self._carried.pause_reason}" if self._carried.pause_reason else "paused"
        parts = [f"scoring #{self._scoring}"] if self._scoring is not None else []
        for seat in self._carried.agents:
            if seat.turn == "awaiting_approval":
                parts.append(f"{seat.agent} awaiting approval: {', '.join(c.tool for c in seat.waiting) or 'a tool call'}")
            elif seat.turn is not None:
                parts.append(f"{seat.agent} {seat.turn}")
        parts += [f"{agent} observing" for agent in self._observing]
        if parts:
            return "; ".join(parts)
        if self._current is not None:
            return f"handling a post by {self._current.post.author}"
        queued = f" · {len(self._carried.queue)} queued" if self._carried.queue else ""
        return f"idle · {self._carried.posts} posts · {', '.join(s.agent for s in self._carried.agents)}{queued}"

    def _upsert_members(self) -> None:
        """Its id, members and state (set here too: a run starting idle changes no state)."""
        workflow.upsert_search_attributes([
            search_attributes.CHANNEL.value_set(self._carried.channel_id),
            search_attributes.MEMBERS.value_set(self._member_names()),
            search_attributes.STATE.value_set(self._state.value),
        ])  # fmt: skip

    def _emit(self, type: ChannelEventType, data: dict[str, Any]) -> None:
        event = ChannelEvent(id=self._carried.next_event_id, type=type, at=workflow.now(), data=data)
        self._carried.events.append(event)
        self._carried.next_event_id += 1
        del self._carried.events[:-EVENTS_KEPT]

    def _member_status(self, seat: AgentSeat) -> MemberStatus:
        state = "gone" if seat.gone else seat.turn or "idle"
        return MemberStatus(agent=seat.agent, conversation_id=seat.conversation_id, state=state,
                            last_spoke_at=seat.last_spoke_at, replies=seat.replies, tokens=seat.tokens,
                            waiting=list(seat.waiting), gone=seat.gone)  # fmt: skip

    def _post_over(self, post_id: str) -> bool:
        current = self._current is not None and self._current.update_id == post_id
        return not current and not any(item.update_id == post_id for item in self._carried.queue)

    # --- updates ----------------------------------------------------------------------------

    @workflow.update
    async def post(self, post: Post) -> PostResult:
        if self._reopening:  # validated against the members once they are read back
            await workflow.wait_condition(lambda: not self._reopening)
            why = self._post_refusal(post)
            if why:
                raise ApplicationError(why, type="PostRejected")
        update = workflow.current_update_info()
        item = QueuedPost(id=str(workflow.uuid4()), post=post, has_caller=True, update_id=update.id if update else None)
        self._carried.queue.append(item)
        if self._state == ChannelState.IDLE:
            self._set_details()
        await workflow.wait_condition(lambda: item.id in self._results)
        result = self._results.pop(item.id)
        if isinstance(result, ApplicationError):
            raise result
        return result

    @post.validator
    def _validate_post(self, post: Post) -> None:
        if self._ended:
            raise ApplicationError(f"channel has ended ({self._end_reason or 'no reason given'}); create a new one",
                                   type="ChannelEnded")  # fmt: skip
        why = self._post_refusal(post)
        if why and not (self._reopening and any(refusal in why for refusal in MEMBER_REFUSALS)):
            raise ApplicationError(why, type="PostRejected")
        full = queue_refusal([item.post.content for item in self._carried.queue], post.content, "channel")
        if full:
            raise ApplicationError(full, type=QUEUE_FULL)
        if overdue(self._posts_this_run, self._input.posts_per_run, workflow.info().is_continue_as_new_suggested()):
            raise ApplicationError("this channel is handing over to its next run; post again", type=RUN_ENDING)

    def _post_refusal(self, post: Post) -> str | None:
        agents = [seat.agent for seat in self._carried.agents]
        if not post.content.strip():
            return "post content is empty"
        if len(post.content) > self._input.max_message_chars:
            return f"post is {len(post.content)} characters; the limit is {self._input.max_message_chars}"
        if post.author in agents:
            return f"{post.author!r} is an agent of this channel; agents speak through their turns, not posts"
        if post.author == NOTICE_AUTHOR:
            return f"{NOTICE_AUTHOR!r} is the channel's own name (its notices); post under yours"
        members = set(self._member_names()) | {post.author}
        unknown = [name for name in [*post.mentions, *([post.reply_to] if post.reply_to else [])] if name not in members]
        if unknown:
            return f"not members of this channel: {', '.join(unknown)} (members: {', '.join(sorted(members))})"
        return None

    @workflow.update
    async def watch_post(self, watch: WatchPost) -> PostProgress:
        """Returns as soon as the post is over, or the channel waits for a person (an agent's tool
        call to approve) or a resume: a caller learns at once that a post waits, without polling."""
        waits = (ChannelState.AWAITING_APPROVAL, ChannelState.PAUSED)
        await workflow.wait_condition(lambda: self._ended or self._state in waits or self._post_over(watch.post_id))
        waiting = [self._member_status(seat) for seat in self._carried.agents if seat.turn in TURN_STATES.values()]
        return PostProgress(post_id=watch.post_id, done=self._post_over(watch.post_id), state=self._state,
                            waiting=waiting, pause_reason=self._carried.pause_reason)  # fmt: skip

    # --- signals ----------------------------------------------------------------------------

    @workflow.signal
    def turn_done(self, done: TurnDone) -> None:
        """A member's report on a turn this channel asked for (``models.turn_requests``)."""
        if done.request_id in self._asked:
            self._done[done.request_id] = done
        else:
            workflow.logger.warning("report on request %s ignored: not asked by this run", done.request_id)

    @workflow.signal
    def turn_progress(self, note: TurnProgressNote) -> None:
        agent = self._asked.get(note.request_id)
        if agent is None:
            return
        seat = self._carried.seat(agent)
        seat.turn, seat.waiting = TURN_STATES.get(note.state, "answering"), list(note.waiting)
        self._emit(ChannelEventType.WAITING, {"agent": agent, "state": note.state.value, "pause_reason": note.pause_reason,
                                              "waiting": [c.model_dump(include={"tool_call_id", "tool"}) for c in note.waiting]})
        self._set_state(self._busy_state())

    @workflow.signal
    def pause(self, signal: Pause | None = None) -> None:
        """Holds the channel between turns and pauses its agents' conversations (a turn in progress
        stops at its next step)."""
        self._carried.paused = True
        self._carried.pause_reason = (signal.reason if signal else "") or None
        self._pause_members()
        if self._state in (ChannelState.IDLE, ChannelState.ANSWERING, ChannelState.AWAITING_APPROVAL):
            self._set_state(ChannelState.PAUSED)

    @workflow.signal
    def resume(self) -> None:
        self._carried.paused = False
        self._carried.pause_reason = None
        self._to_members(ConversationWorkflow.resume, None)
        if self._state == ChannelState.PAUSED:
            self._set_state(self._busy_state() if self._current else ChannelState.IDLE)

    def _pause_members(self) -> None:
        self._to_members(ConversationWorkflow.pause, Pause(reason=f"channel #{self._carried.channel_id} paused"))

    def _to_members(self, signal: Any, arg: Any) -> None:
        for seat in self._carried.agents:
            if seat.started and seat.gone is None:
                self._signals.send(self._member_id(seat), signal, arg)

    @workflow.signal
    def inject(self, note: ChannelNote) -> None:
        if not note.content.strip() or self._ended:
            workflow.logger.warning("note ignored: %s", "channel ended" if self._ended else "empty content")
            return
        self._carried.notes.append(note)

    @workflow.signal
    def end(self, signal: End | None = None) -> None:
        self._ended = True
        self._end_reason = (signal.reason if signal else "") or "ended by operator"

    # --- queries ----------------------------------------------------------------------------

    @workflow.query
    def status(self) -> ChannelStatus:
        return ChannelStatus(
            channel_id=self._carried.channel_id, title=self._input.title, topic=self._input.topic, state=self._state,
            details=self._describe(), paused=self._carried.paused, pause_reason=self._carried.pause_reason,
            posts=self._carried.posts, queued=len(self._carried.queue),
            agents=[self._member_status(seat) for seat in self._carried.agents], people=list(self._carried.people),
            tokens_used=self._carried.tokens_used, token_budget=self._input.budgets.tokens,
            replies_per_post=self._input.budgets.replies_per_post, ended_reason=self._end_reason or None,
        )  # fmt: skip

    @workflow.query
    def history(self, query: ChannelHistoryQuery | None = None) -> list[ChannelMessageView]:
        """The latest messages (previews; the store has them whole)."""
        return self._carried.recent[-(query or ChannelHistoryQuery()).limit:]

    @workflow.query
    def scores(self, query: ScoresQuery | None = None) -> list[ScoredMessage]:
        """Every agent's score for the latest scored messages, newest last."""
        return self._carried.scored[-(query or ScoresQuery()).limit:]

    @workflow.query
    def scoring_context(self) -> ScoringContext:
        """What a hypothetical message would be scored with now (``POST /relevance/calculate``)."""
        return ScoringContext(
            channel_id=self._carried.channel_id, defaults=self._carried.defaults, overrides=self._input.relevance,
            agents=agent_states(self._carried, ""), profiles=agent_profiles(self._carried, self._input),
            recent=recent_messages(self._carried, self._carried.next_seq), members=self._member_names(),
        )  # fmt: skip

    @workflow.query
    def events(self, query: EventsQuery | None = None) -> list[ChannelEvent]:
        query = query or EventsQuery()
        return [e for e in self._carried.events if e.id > query.after][: query.limit]
