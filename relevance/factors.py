"""The six factors of seed 003, each a pure function of the post, one agent's state and the
measured similarities, giving a raw value in [0, 1] and a short note for the breakdown.

Time comes in as ``post.at`` (the workflow's time of the post); nothing here reads a clock,
draws a random number or does I/O, so the same inputs give the same floats on every replay and in
every process. Where each input comes from is in docs/ARCHITECTURE.md ("Relevance engine").
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from models.relevance import (
    CooldownParams,
    ExpertiseParams,
    Factor,
    GapParams,
    RelevanceConfig,
    TimingParams,
    TrustParams,
    WorkloadParams,
)
from models.relevance_scoring import AgentState, ExpertiseMatch, PostContext, Similarities
from relevance.curves import clamp, ramp, rounded


class Reading(NamedTuple):
    raw: float
    note: str = ""


def expertise_match(match: ExpertiseMatch | None, params: ExpertiseParams) -> Reading:
    """How close the post is to the agent's closest expertise entry, on the configured ramp."""
    if match is None:
        return Reading(0.0, "no expertise listed")
    raw = ramp(match.similarity, params.min_similarity, params.full_similarity)
    note = f"similarity {match.similarity:.2f}" + (f" to {match.matched!r}" if match.matched else "")
    return Reading(rounded(raw), note)


def conversation_gap(post: PostContext, recent: dict[str, float], params: GapParams) -> Reading:
    """1 while nothing recent covers the post; falls as the closest recent message by someone other
    than its author (within ``max_age_minutes``) gets as similar as ``covered_at``."""
    oldest = post.at - timedelta(minutes=params.max_age_minutes)
    best: tuple[float, str] | None = None
    for message in post.recent:
        similarity = recent.get(message.message_id)
        if similarity is None or message.author == post.author or not oldest <= message.at <= post.at:
            continue
        if best is None or similarity > best[0]:
            best = (similarity, message.author)
    if best is None:
        return Reading(1.0, "nothing recent covers it")
    raw = ramp(best[0], params.covered_at, params.open_below)
    return Reading(rounded(raw), f"closest recent message {best[0]:.2f} (by {best[1]})")


def workload_capacity(state: AgentState, params: WorkloadParams) -> Reading:
    raw = clamp(1.0 - state.active_tasks / params.max_concurrent_tasks)
    return Reading(rounded(raw), f"{state.active_tasks} of {params.max_concurrent_tasks} tasks")


def recent_participation(state: AgentState, post: PostContext, params: CooldownParams) -> Reading:
    """Minutes since the agent last spoke over the cooldown, capped at 1; a time after the post
    (a clock disagreement) counts as just now."""
    if state.last_spoke_at is None:
        return Reading(1.0, "has not spoken yet")
    minutes = (post.at - state.last_spoke_at).total_seconds() / 60.0
    raw = clamp(minutes / params.cooldown_minutes)
    return Reading(rounded(raw), f"spoke {max(minutes, 0.0):.0f} min ago")


def timing_appropriateness(state: AgentState, post: PostContext, params: TimingParams) -> Reading:
    """Not mid-turn, and not inside a thread between others: the lower of the applicable values."""
    readings = [Reading(1.0, "a good moment")]
    if state.mid_turn:
        readings.append(Reading(params.mid_turn, "answering something else"))
    if post.reply_to is not None and post.reply_to not in (state.agent, post.author):
        readings.append(Reading(params.others_thread, f"a reply to {post.reply_to}"))
    return min(readings, key=lambda reading: reading.raw)


def relationship_trust(state: AgentState, params: TrustParams) -> Reading:
    if state.trust is None:
        return Reading(params.neutral, "not known yet")
    return Reading(rounded(state.trust), "")


def measure(config: RelevanceConfig, post: PostContext, state: AgentState, similarities: Similarities) -> dict[Factor, Reading]:
    """Every factor for one agent, in :class:`Factor` order."""
    params = config.factors
    return {
        Factor.EXPERTISE_MATCH: expertise_match(similarities.expertise.get(state.agent), params.expertise_match),
        Factor.CONVERSATION_GAP: conversation_gap(post, similarities.recent, params.conversation_gap),
        Factor.WORKLOAD_CAPACITY: workload_capacity(state, params.workload_capacity),
        Factor.RECENT_PARTICIPATION: recent_participation(state, post, params.recent_participation),
        Factor.TIMING_APPROPRIATENESS: timing_appropriateness(state, post, params.timing_appropriateness),
        Factor.RELATIONSHIP_TRUST: relationship_trust(state, params.relationship_trust),
    }
