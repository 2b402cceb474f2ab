"""What a channel hands the relevance engine for one message, and what it keeps of the answer.

Pure: the channel's carried state and the message in, the engine's inputs out (``PostContext``,
``AgentState``s, the ``SimilarityRequest`` by reference to the store), then the decisions as the
small ``MemberScore`` lines a ``PostResult`` and the ``scores`` query show (the factor breakdowns
stay in the relevance records).

Configuration, lowest first: ``config/relevance.yaml`` as the channel opened, the thresholds set at
run time (``PUT /relevance/thresholds``, read with each message), the channel's own overrides. A
run-time change that the channel's overrides cannot sit on (thresholds out of order) is left out
for this channel, with a warning.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.channel import AuthorKind, ChannelInput, ChannelMessageView, MemberScore, ScoredMessage, transcript_id
    from models.channel_state import AgentSeat, CarriedChannel
    from models.relevance import RelevanceConfig, RelevanceOverrides, Thresholds
    from models.relevance_scoring import AgentProfile, AgentState, PostContext, PostRelevance, RecentMessage
    from models.relevance_scoring import AuthorKind as ScoredAuthor
    from models.relevance_scoring import SimilarityRequest, TextRef
    from relevance import RelevanceConfigError, apply_overrides

RECENT_COMPARED = 10
"""Earlier messages the post is compared with (the engine's ``conversation_gap``)."""


def effective_config(defaults: RelevanceConfig, run_time: Thresholds | None, overrides: RelevanceOverrides | None,
                     channel_id: str) -> RelevanceConfig:  # fmt: skip
    source = f"relevance overrides of channel {channel_id}"
    base = defaults if run_time is None else defaults.model_copy(update={"thresholds": run_time})
    try:
        return apply_overrides(base, overrides, source)
    except RelevanceConfigError as err:
        workflow.logger.warning("run-time thresholds left out for this channel: %s", err)
        return apply_overrides(defaults, overrides, source)


def scored_agents(state: CarriedChannel, author: str | None = None) -> list[AgentSeat]:
    """The agents a message is scored for: all that can still act on it (their conversation has not
    gone), but its author — an agent never answers itself, and is not scored on its own words."""
    return [seat for seat in state.agents if seat.gone is None and seat.agent != author]


def agent_profiles(state: CarriedChannel, channel: ChannelInput, author: str | None = None) -> list[AgentProfile]:
    """Names, and the member's own expertise when the channel overrides its template's."""
    members = {member.agent: member for member in channel.agents}
    return [AgentProfile(agent=seat.agent, expertise=members[seat.agent].expertise,
                         description=members[seat.agent].description) for seat in scored_agents(state, author)]  # fmt: skip


def recent_refs(channel_id: str, recent: list[RecentMessage]) -> dict[str, TextRef]:
    """The recent messages by reference to the channel's transcript (their ids are their seqs)."""
    return {m.message_id: TextRef(conversation_id=transcript_id(channel_id), seq=int(m.message_id)) for m in recent}


def similarity_request(state: CarriedChannel, channel: ChannelInput, view: ChannelMessageView) -> SimilarityRequest:
    return SimilarityRequest(
        post=TextRef(conversation_id=transcript_id(state.channel_id), seq=view.seq),
        recent=recent_refs(state.channel_id, recent_messages(state, view.seq)),
        agents=agent_profiles(state, channel, view.author), trust_from=view.author,
    )


def post_context(state: CarriedChannel, view: ChannelMessageView, mentions: list[str], at: datetime) -> PostContext:
    return PostContext(
        channel_id=state.channel_id, message_id=str(view.seq), author=view.author,
        author_kind=ScoredAuthor.AGENT if view.kind == AuthorKind.AGENT else ScoredAuthor.PERSON, at=at,
        mentions=mentions, reply_to=view.reply_to, recent=recent_messages(state, view.seq),
    )  # fmt: skip


def recent_messages(state: CarriedChannel, seq: int) -> list[RecentMessage]:
    """The people's and agents' messages before ``seq`` the post is compared with (notes and the
    channel's notices are not part of the conversation)."""
    earlier = [v for v in state.recent if v.seq < seq and v.kind in (AuthorKind.PERSON, AuthorKind.AGENT)]
    return [RecentMessage(message_id=str(v.seq), author=v.author, at=v.at) for v in earlier[-RECENT_COMPARED:] if v.at]


def agent_states(state: CarriedChannel, author: str, trust: dict[str, float] | None = None) -> list[AgentState]:
    """Workload is what the channel knows: an agent's turn in progress and the calls it waits on
    (posts are handled one at a time, so between turns that is nothing; other channels' work is not
    counted). ``trust``: ``Similarities.trust`` (private-message outcomes with the post's author)."""
    return [
        AgentState(agent=seat.agent, active_tasks=(seat.turn is not None) + len(seat.waiting),
                   last_spoke_at=seat.last_spoke_at, mid_turn=seat.turn is not None,
                   trust=(trust or {}).get(seat.agent))
        for seat in scored_agents(state, author)
    ]  # fmt: skip


def member_scores(relevance: PostRelevance) -> list[MemberScore]:
    """The one-line view of each decision (``score_id`` is filled in once the records are written)."""
    return [
        MemberScore(agent=s.agent, score=s.score, decision=s.decision, high_priority=s.high_priority,
                    forced=s.forced, explanation=s.explanation)
        for s in relevance.scores
    ]  # fmt: skip


def scored_message(view: ChannelMessageView, scores: list[MemberScore]) -> ScoredMessage:
    return ScoredMessage(seq=view.seq, author=view.author, scores=scores)


def nobody_line(scores: list[MemberScore]) -> str:
    """"no agent found this relevant: developer 0.31 (observe 0.31: …), analyst 0.05 (…)"."""
    best = ", ".join(f"{s.agent} {s.score:.2f} ({s.explanation})" for s in scores[:3]) or "there is no agent to ask"
    return f"no agent found this relevant: {best}"
