"""The pure relevance engine: factors at their edges, thresholds at their boundaries, the gate,
mentions, replies, an agent's own post, explanations, ranking, and determinism across processes.

No I/O here: similarities are given as the activity would return them."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models.relevance import Factor, RelevanceConfig
from models.relevance_scoring import (
    AgentState,
    Decision,
    ExpertiseMatch,
    PostContext,
    RecentMessage,
    Similarities,
    SimilarityMethod,
)
from relevance import apply_overrides, decide, find_mentions, score_agent, score_post
from relevance.factors import (
    conversation_gap,
    expertise_match,
    recent_participation,
    relationship_trust,
    timing_appropriateness,
    workload_capacity,
)

NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
DEFAULTS = RelevanceConfig()
PARAMS = DEFAULTS.factors
ONLY_EXPERTISE = apply_overrides(
    DEFAULTS,
    {"weights": {"expertise_match": 1.0, "conversation_gap": 0, "workload_capacity": 0, "recent_participation": 0,
                 "timing_appropriateness": 0}, "gate": {"expertise_open_at": 0, "gap_open_at": 0}},
    "test",
)
"""score = the expertise factor alone: thresholds can be hit exactly through the real pipeline."""
NO_GATE = apply_overrides(DEFAULTS, {"gate": {"expertise_open_at": 0, "gap_open_at": 0}}, "test")


def post(**fields) -> PostContext:
    return PostContext(**{"channel_id": "ops", "message_id": "m9", "author": "alice", "author_kind": "person",
                          "at": NOW, **fields})


def sims(expertise: dict[str, float] | None = None, recent: dict[str, float] | None = None, **fields) -> Similarities:
    return Similarities(
        method=fields.pop("method", SimilarityMethod.EMBEDDING),
        expertise={a: ExpertiseMatch(similarity=s, matched=f"{a} things") for a, s in (expertise or {}).items()},
        recent=recent or {},
        **fields,
    )


def recent(message_id: str, author: str, minutes_ago: float) -> RecentMessage:
    return RecentMessage(message_id=message_id, author=author, at=NOW - timedelta(minutes=minutes_ago))


# -- factors at their edges


@pytest.mark.parametrize(("similarity", "raw"), [(-0.3, 0.0), (0.0, 0.0), (0.15, 0.0), (0.35, 0.5), (0.55, 1.0), (0.9, 1.0)])
def test_expertise_is_a_ramp_from_min_to_full_similarity(similarity, raw):
    assert expertise_match(ExpertiseMatch(similarity=similarity), PARAMS.expertise_match).raw == raw


def test_an_agent_without_expertise_has_no_expertise_match():
    reading = expertise_match(None, PARAMS.expertise_match)
    assert reading == (0.0, "no expertise listed")


@pytest.mark.parametrize(("similarity", "raw"), [(0.1, 1.0), (0.3, 1.0), (0.55, 0.5), (0.8, 0.0), (0.95, 0.0)])
def test_gap_falls_as_a_recent_reply_covers_the_post(similarity, raw):
    context = post(recent=[recent("m8", "developer", 2)])
    assert conversation_gap(context, {"m8": similarity}, PARAMS.conversation_gap).raw == raw


def test_gap_counts_only_recent_messages_by_someone_else():
    context = post(recent=[recent("own", "alice", 1), recent("old", "developer", 61), recent("later", "bob", -1),
                           recent("unmeasured", "bob", 1)])
    reading = conversation_gap(context, {"own": 0.99, "old": 0.99, "later": 0.99}, PARAMS.conversation_gap)
    assert reading == (1.0, "nothing recent covers it")
    context = post(recent=[recent("m1", "bob", 5), recent("m2", "developer", 59)])
    reading = conversation_gap(context, {"m1": 0.4, "m2": 0.7}, PARAMS.conversation_gap)
    assert reading.raw == 0.2 and "by developer" in reading.note


@pytest.mark.parametrize(("tasks", "raw"), [(0, 1.0), (1, 0.6667), (2, 0.3333), (3, 0.0), (7, 0.0)])
def test_workload_is_the_free_share_of_three_concurrent_tasks(tasks, raw):
    assert workload_capacity(AgentState(agent="a", active_tasks=tasks), PARAMS.workload_capacity).raw == raw


@pytest.mark.parametrize(("minutes_ago", "raw"), [(None, 1.0), (0, 0.0), (15, 0.5), (30, 1.0), (300, 1.0), (-5, 0.0)])
def test_cooldown_recovers_over_thirty_minutes(minutes_ago, raw):
    spoke = None if minutes_ago is None else NOW - timedelta(minutes=minutes_ago)
    state = AgentState(agent="a", last_spoke_at=spoke)
    assert recent_participation(state, post(), PARAMS.recent_participation).raw == raw


@pytest.mark.parametrize(
    ("mid_turn", "reply_to", "raw"),
    [(False, None, 1.0), (True, None, 0.0), (False, "bob", 0.3), (False, "analyst", 0.3), (False, "developer", 1.0),
     (False, "alice", 1.0), (True, "bob", 0.0)],
)
def test_timing_holds_back_mid_turn_and_inside_a_thread_between_others(mid_turn, reply_to, raw):
    state = AgentState(agent="developer", mid_turn=mid_turn)
    assert timing_appropriateness(state, post(reply_to=reply_to), PARAMS.timing_appropriateness).raw == raw


def test_trust_is_neutral_until_known():
    assert relationship_trust(AgentState(agent="a"), PARAMS.relationship_trust).raw == 0.5
    assert relationship_trust(AgentState(agent="a", trust=0.9), PARAMS.relationship_trust).raw == 0.9


# -- thresholds, through the whole pipeline


@pytest.mark.parametrize(
    ("similarity", "score", "decision", "high"),
    [(0.0, 0.0, Decision.IGNORE, False), (0.2298, 0.1995, Decision.IGNORE, False), (0.23, 0.2, Decision.OBSERVE, False),
     (0.3498, 0.4995, Decision.OBSERVE, False), (0.35, 0.5, Decision.INTERVENE, False),
     (0.4698, 0.7995, Decision.INTERVENE, False), (0.47, 0.8, Decision.INTERVENE, True), (0.9, 1.0, Decision.INTERVENE, True)],
)
def test_a_boundary_score_belongs_to_the_upper_band(similarity, score, decision, high):
    """(0.35 − 0.15) / 0.4 is 0.49999999999999994 in binary: the rounded score (what a person reads)
    is what is compared, so it intervenes."""
    result = score_agent(ONLY_EXPERTISE, post(), AgentState(agent="developer"), sims({"developer": similarity}))
    assert (result.score, result.decision, result.high_priority) == (score, decision, high)


def test_decide_uses_the_configured_thresholds():
    strict = apply_overrides(DEFAULTS, {"thresholds": {"observe": 0.4, "intervene": 0.7}}, "test").thresholds
    assert [decide(s, strict) for s in (0.39, 0.4, 0.69, 0.7)] == [Decision.IGNORE, Decision.OBSERVE, Decision.OBSERVE,
                                                                     Decision.INTERVENE]


# -- the gate


def test_an_idle_agent_with_nothing_to_say_is_ignored_not_pushed_over_by_availability():
    result = score_agent(DEFAULTS, post(), AgentState(agent="analyst"), sims({"analyst": 0.05}))
    assert (result.score, result.decision, result.gate) == (0.0, Decision.IGNORE, 0.0)
    assert result.explanation == "ignore 0.00: gated ×0.00 by expertise 0.00"
    plain = score_agent(NO_GATE, post(), AgentState(agent="analyst"), sims({"analyst": 0.05}))
    assert plain.decision == Decision.INTERVENE and plain.score == 0.7  # the seed's sum: gap, workload, cooldown, timing


def test_the_gate_scales_the_score_and_the_contributions_add_up_to_it():
    result = score_agent(DEFAULTS, post(), AgentState(agent="developer"), sims({"developer": 0.25}))
    assert result.gate == 0.5  # expertise 0.25 of the 0.5 that opens it
    assert math.isclose(sum(f.contribution for f in result.factors), result.score, abs_tol=5e-4)
    assert result.decision == Decision.OBSERVE
    assert result.explanation.startswith("observe 0.39: gated ×0.50 by expertise 0.25; ")


def test_a_covered_question_closes_the_gate_too():
    covered = post(recent=[recent("m8", "developer", 1)])
    result = score_agent(DEFAULTS, covered, AgentState(agent="analyst"), sims({"analyst": 0.7}, {"m8": 0.78}))
    assert result.gate == 0.08 and result.decision == Decision.IGNORE
    assert "gated ×0.08 by gap 0.04" in result.explanation


# -- mentions, replies, own posts


def test_a_mention_forces_intervene_whatever_the_score():
    busy = AgentState(agent="analyst", active_tasks=3, mid_turn=True, last_spoke_at=NOW)
    result = score_agent(DEFAULTS, post(mentions=["Analyst"]), busy, sims({"analyst": 0.0}))
    assert (result.decision, result.forced, result.gate) == (Decision.INTERVENE, "mentioned", 1.0)
    assert result.score == 0.25  # the score is kept as it is (gap alone), and shown
    assert result.explanation.startswith(f"intervene {result.score:.2f} (mentioned): ")


def test_who_may_force_by_mention_is_configurable():
    by_agent = post(author="developer", author_kind="agent", mentions=["analyst"])
    assert score_agent(DEFAULTS, by_agent, AgentState(agent="analyst"), sims()).forced == "mentioned"
    quiet = apply_overrides(DEFAULTS, {"mentions": {"from_agents": False}}, "test")
    result = score_agent(quiet, by_agent, AgentState(agent="analyst"), sims())
    assert (result.forced, result.decision) == (None, Decision.IGNORE)


def test_a_reply_to_an_agent_raises_its_score_by_the_addressed_boost():
    state, similarities = AgentState(agent="developer", last_spoke_at=NOW - timedelta(minutes=3)), sims({"developer": 0.3})
    plain = score_agent(NO_GATE, post(), state, similarities)
    reply = score_agent(NO_GATE, post(reply_to="developer"), state, similarities)
    assert reply.boost == 0.25 and math.isclose(reply.score - plain.score, 0.25, abs_tol=1e-9)
    assert "+0.25 as the post replies to it" in reply.explanation
    gated = score_agent(DEFAULTS, post(reply_to="developer"), state, sims({"developer": 0.0}))
    assert gated.gate == 1.0 and gated.decision == Decision.INTERVENE  # addressed: the gate is open


def test_an_agent_never_answers_its_own_post_even_when_it_mentions_or_replies_to_itself():
    own = post(author="developer", author_kind="agent", mentions=["developer"], reply_to="developer")
    result = score_agent(DEFAULTS, own, AgentState(agent="developer"), sims({"developer": 0.9}))
    assert (result.decision, result.score, result.factors) == (Decision.IGNORE, 0.0, [])
    assert result.explanation == "ignore: its own message (an agent never answers itself)"


# -- cooldown, busy, mid-turn, explanations


def test_cooldown_holds_back_an_agent_that_just_spoke_and_says_so():
    similarities = sims({"developer": 0.5})
    fresh = score_agent(DEFAULTS, post(), AgentState(agent="developer"), similarities)
    recent_speaker = AgentState(agent="developer", last_spoke_at=NOW - timedelta(minutes=12))
    cooled = score_agent(DEFAULTS, post(), recent_speaker, similarities)
    assert cooled.score == round(fresh.score - 0.15 * 0.6, 4)
    assert cooled.explanation.endswith("cooldown 0.40 held it back")


def test_a_busy_agent_scores_lower_and_a_mid_turn_one_lower_still():
    similarities = sims({"developer": 0.6})
    idle = score_agent(DEFAULTS, post(), AgentState(agent="developer"), similarities)
    busy = score_agent(DEFAULTS, post(), AgentState(agent="developer", active_tasks=3), similarities)
    mid = score_agent(DEFAULTS, post(), AgentState(agent="developer", active_tasks=3, mid_turn=True), similarities)
    assert idle.score > busy.score > mid.score
    assert (idle.score - busy.score, busy.score - mid.score) == (pytest.approx(0.2), pytest.approx(0.1))
    assert "workload 0.00, timing 0.00 held it back" in mid.explanation


def test_the_explanation_names_the_factors_that_decided():
    state = AgentState(agent="developer", active_tasks=2, last_spoke_at=NOW - timedelta(minutes=12))
    context = post(recent=[recent("m8", "bob", 3)])
    result = score_agent(DEFAULTS, context, state, sims({"developer": 0.518}, {"m8": 0.4}))
    assert result.explanation == "intervene 0.70: expertise 0.92, gap 0.80; workload 0.33, cooldown 0.40 held it back"
    breakdown = {f.factor: (f.raw, f.weight, f.contribution) for f in result.factors}
    assert breakdown[Factor.EXPERTISE_MATCH] == (0.92, 0.3, 0.276)
    assert breakdown[Factor.RECENT_PARTICIPATION] == (0.4, 0.15, 0.06)
    assert breakdown[Factor.RELATIONSHIP_TRUST] == (0.5, 0.0, 0.0)
    assert "trust" not in result.explanation  # weight 0 is never named


def test_keyword_mode_is_flagged_in_every_explanation():
    result = score_agent(DEFAULTS, post(), AgentState(agent="developer"), sims({"developer": 0.6}, method="keywords"))
    assert result.method == SimilarityMethod.KEYWORDS
    assert result.explanation.endswith("; keyword match (embeddings unavailable)")


# -- ranking


def test_speakers_answer_mentioned_first_then_by_score_then_by_name():
    agents = [AgentState(agent=name) for name in ("zed", "amy", "bob", "cal", "dan")]
    result = score_post(DEFAULTS, post(mentions=["dan"]), agents,
                        sims({"zed": 0.6, "amy": 0.6, "bob": 0.25, "cal": 0.9, "dan": 0.0}))
    assert result.speakers == ["dan", "amy", "cal", "zed"]  # amy, cal, zed tie at 1.0: by name
    assert result.observers == ["bob"]
    assert [s.agent for s in result.scores] == ["dan", "amy", "cal", "zed", "bob"]


def test_an_agent_is_scored_once_per_post():
    with pytest.raises(ValueError, match="once per post"):
        score_post(DEFAULTS, post(), [AgentState(agent="a"), AgentState(agent="a")], sims())


def test_scores_stay_within_bounds_and_their_breakdown_adds_up():
    rng = random.Random(13)
    for _ in range(300):
        state = AgentState(agent="a", active_tasks=rng.randrange(5), mid_turn=rng.random() < 0.2,
                           last_spoke_at=NOW - timedelta(minutes=rng.uniform(-5, 60)), trust=rng.random())
        context = post(recent=[recent("m1", "bob", rng.uniform(0, 90))], reply_to=rng.choice([None, "a", "bob"]))
        result = score_agent(DEFAULTS, context, state, sims({"a": rng.uniform(-1, 1)}, {"m1": rng.uniform(-1, 1)}))
        assert 0.0 <= result.score <= 1.0
        assert result.score == pytest.approx(min(1.0, sum(f.contribution for f in result.factors) + result.boost),
                                             abs=5e-4)


# -- mentions in text


@pytest.mark.parametrize(
    ("text", "found"),
    [("@analyst can you check?", ["analyst"]), ("ask @Analyst, then @developer.", ["analyst", "developer"]),
     ("@analyst's numbers", ["analyst"]), ("@analysts", []), ("mail me@analyst.org", []), ("@@analyst", []),
     ("(@developer) and @developer again", ["developer"]), ("no mention here", []), ("@data-bot: hi", ["data-bot"])],
)
def test_mentions_are_members_named_after_an_at_sign(text, found):
    assert find_mentions(text, ["analyst", "developer", "data-bot"]) == found


# -- determinism


SCENARIO = """
import json, sys
from datetime import UTC, datetime, timedelta
from models.relevance import RelevanceConfig
from models.relevance_scoring import AgentState, ExpertiseMatch, PostContext, RecentMessage, Similarities
from relevance import score_post
now = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
agents = [AgentState(agent=f"agent-{i}", active_tasks=i % 4, last_spoke_at=now - timedelta(minutes=7 * i), mid_turn=i % 5 == 0,
                     trust=(i % 3) / 3 or None) for i in range(12)]
similarities = Similarities(method="embedding", expertise={a.agent: ExpertiseMatch(similarity=round(0.05 * i + 0.013, 4))
                            for i, a in enumerate(agents)}, recent={"m1": 0.4137, "m2": 0.6219})
post = PostContext(channel_id="c", message_id="m3", author="alice", author_kind="person", at=now, mentions=["agent-7"],
                   reply_to="agent-3", recent=[RecentMessage(message_id="m1", author="bob", at=now - timedelta(minutes=2)),
                   RecentMessage(message_id="m2", author="agent-1", at=now - timedelta(minutes=1))])
sys.stdout.write(score_post(RelevanceConfig(), post, agents, similarities).model_dump_json())
"""


def test_the_same_inputs_give_the_same_floats_in_every_process():
    """Different hash seeds change set and dict-of-str iteration order between processes: nothing
    the engine computes may depend on it."""
    root = Path(__file__).resolve().parents[1]
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": seed}
        outputs.add(subprocess.run([sys.executable, "-c", SCENARIO], env=env, cwd=root, capture_output=True,
                                   text=True, check=True).stdout)
    here = io.StringIO()
    with contextlib.redirect_stdout(here):
        exec(SCENARIO, {})  # noqa: S102 - the same scenario in this process
    outputs.add(here.getvalue())
    assert len(outputs) == 1
    result = json.loads(outputs.pop())
    assert result["speakers"][0] == "agent-7"  # mentioned: first
    assert len(result["scores"]) == 12
