"""The relevance records on SQLite and PostgreSQL: written once per post and agent, outcomes,
feedback once per person, an agent's scores page by page, and the analytics the API will show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select
from temporalio.testing import ActivityEnvironment

from activities.relevance import RelevanceRecordActivities
from models.relevance import RelevanceConfig
from models.relevance_records import Feedback, Outcome, RecordOutcome, RecordRelevance
from models.relevance_scoring import (
    AgentState,
    Decision,
    ExpertiseMatch,
    PostContext,
    PostRelevance,
    Similarities,
)
from relevance import score_post
from store.engine import make_engine
from store.relevance import RelevanceScoreRow, RelevanceStore, UnknownScore

T0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
AGENTS = ["analyst", "developer", "moderator"]


@pytest.fixture
def store(database_url):
    engine = make_engine(database_url)
    yield RelevanceStore(engine)
    engine.dispose()


def scored(message: int, expertise: dict[str, float], channel: str = "team", mentions=()) -> PostRelevance:
    post = PostContext(channel_id=channel, message_id=str(message), author="alice", author_kind="person",
                       at=T0 + timedelta(minutes=message), mentions=list(mentions))
    similarities = Similarities(method="embedding", model="all-minilm",
                                expertise={a: ExpertiseMatch(similarity=s, matched=f"{a} things") for a, s in expertise.items()})
    return score_post(RelevanceConfig(), post, [AgentState(agent=a) for a in AGENTS], similarities)


def record(store: RelevanceStore, message: int, expertise: dict[str, float], **kwargs) -> dict[str, int]:
    post = scored(message, expertise, **kwargs)
    ids = store.record_post(post, T0 + timedelta(minutes=message))
    return {s.agent: score_id for s, score_id in zip(post.scores, ids, strict=True)}


def test_a_post_is_recorded_once_whatever_the_retries(store):
    post = scored(1, {"developer": 0.7, "analyst": 0.1})
    first = store.record_post(post, T0)
    assert store.record_post(post, T0 + timedelta(seconds=5)) == first
    assert len(set(first)) == 3
    with Session(store._engine) as session:  # noqa: SLF001 - counting the rows themselves
        assert len(session.exec(select(RelevanceScoreRow)).all()) == 3


def test_a_record_reads_back_exactly_what_was_decided(store):
    post = scored(1, {"developer": 0.7})
    ids = store.record_post(post, T0)
    for score, score_id in zip(post.scores, ids, strict=True):
        record_ = store.get(score_id)
        assert (record_.agent, record_.score, record_.decision, record_.explanation, record_.factors) == (
            score.agent, score.score, score.decision, score.explanation, score.factors)
        assert record_.at == T0 and record_.outcome is None and record_.feedback == []
    assert store.get(999_999) is None


def test_an_agents_scores_come_newest_first_a_page_at_a_time(store):
    for message in range(1, 8):
        record(store, message, {"developer": 0.1 * message}, channel="team" if message % 2 else "ops")
    first = store.scores_of("developer", limit=3)
    assert [r.message_id for r in first.items] == ["7", "6", "5"]
    second = store.scores_of("developer", limit=3, before=first.next_before)
    third = store.scores_of("developer", limit=3, before=second.next_before)
    assert [r.message_id for r in second.items + third.items] == ["4", "3", "2", "1"]
    assert third.next_before is None
    assert [r.message_id for r in store.scores_of("developer", channel_id="ops").items] == ["6", "4", "2"]
    assert store.scores_of("nobody").items == []


def test_outcomes_are_filled_in_later(store):
    record(store, 1, {"developer": 0.7})
    assert store.set_outcome("team", "1", "developer", Outcome.REPLIED, T0 + timedelta(minutes=2))
    assert not store.set_outcome("team", "404", "developer", Outcome.REPLIED, T0)
    [developer] = store.scores_of("developer").items
    assert (developer.outcome, developer.outcome_at) == (Outcome.REPLIED, T0 + timedelta(minutes=2))


def test_feedback_counts_once_per_person_and_score(store):
    ids = record(store, 1, {"developer": 0.7})
    feedback, created = store.record_feedback(ids["developer"], "alice", Feedback.USEFUL, T0)
    assert created and feedback.feedback == Feedback.USEFUL
    again, created = store.record_feedback(ids["developer"], "alice", Feedback.CONFLICT, T0 + timedelta(minutes=1),
                                           note="argued with the analyst")
    assert not created and (again.feedback, again.note, again.at) == (Feedback.CONFLICT, "argued with the analyst",
                                                                      T0 + timedelta(minutes=1))
    store.record_feedback(ids["developer"], "bob", Feedback.USEFUL, T0)
    people = {(f.person, f.feedback) for f in store.get(ids["developer"]).feedback}
    assert people == {("alice", Feedback.CONFLICT), ("bob", Feedback.USEFUL)}
    with pytest.raises(UnknownScore, match="no relevance score with id 424242"):
        store.record_feedback(424242, "alice", Feedback.USEFUL, T0)


def test_analytics_per_agent_over_a_window(store):
    record(store, 1, {"developer": 0.7, "analyst": 0.1})                   # developer 0.89, analyst 0
    ids = record(store, 2, {"developer": 0.25, "analyst": 0.7})            # developer 0.39 observes
    record(store, 3, {"developer": 0.0}, mentions=["analyst"])             # analyst forced
    record(store, 30, {"developer": 0.9})                                  # outside the window
    record(store, 4, {"developer": 0.9}, channel="ops")
    store.set_outcome("team", "1", "developer", Outcome.REPLIED, T0)
    store.set_outcome("team", "2", "developer", Outcome.OBSERVED, T0)
    store.record_feedback(ids["analyst"], "alice", Feedback.USEFUL, T0)
    store.record_feedback(ids["analyst"], "bob", Feedback.INAPPROPRIATE, T0)

    report = store.analytics(T0, T0 + timedelta(minutes=10), channel_id="team")
    assert report.scored == 9 and [a.agent for a in report.agents] == AGENTS
    stats = {a.agent: a for a in report.agents}
    developer, analyst, moderator = stats["developer"], stats["analyst"], stats["moderator"]
    assert developer.decisions == {Decision.INTERVENE: 1, Decision.OBSERVE: 1, Decision.IGNORE: 1}
    assert developer.intervention_rate == round(1 / 3, 4)
    assert developer.outcomes == {Outcome.REPLIED: 1, Outcome.OBSERVED: 1}
    assert analyst.decisions == {Decision.INTERVENE: 2, Decision.IGNORE: 1} and analyst.forced == 1
    assert analyst.feedback == {Feedback.USEFUL: 1, Feedback.INAPPROPRIATE: 1}
    assert moderator.decisions == {Decision.IGNORE: 3} and moderator.mean_score == 0.0
    assert moderator.histogram == [3] + [0] * 9
    assert sum(report.histogram) == 9 and report.histogram == [sum(a.histogram[i] for a in report.agents) for i in range(10)]
    assert store.analytics(T0, T0 + timedelta(minutes=10)).scored == 12  # every channel


def test_histogram_buckets_hold_their_lower_edge(store):
    post = scored(1, {})
    post.scores[0] = post.scores[0].model_copy(update={"score": 0.1})
    post.scores[1] = post.scores[1].model_copy(update={"score": 0.0999})
    post.scores[2] = post.scores[2].model_copy(update={"score": 1.0})
    store.record_post(post, T0)
    assert store.analytics(T0, T0 + timedelta(minutes=1)).histogram == [1, 1, 0, 0, 0, 0, 0, 0, 0, 1]


def test_a_decision_added_later_still_reads_back(store):
    post = scored(1, {})
    post.scores[0] = post.scores[0].model_copy(update={"decision": Decision.REFLECT})
    [reflected, *_] = store.record_post(post, T0)
    assert store.get(reflected).decision == Decision.REFLECT


async def test_the_record_and_outcome_activities_write_through_the_store(store):
    activities = RelevanceRecordActivities(store)
    post = scored(1, {"developer": 0.7})
    env = ActivityEnvironment()
    ids = await env.run(activities.record, RecordRelevance(post=post, at=T0))
    assert ids == await env.run(activities.record, RecordRelevance(post=post, at=T0))
    assert await env.run(activities.outcome, RecordOutcome(channel_id="team", message_id="1", agent="developer",
                                                           outcome=Outcome.REPLIED, at=T0))
    assert store.scores_of("developer").items[0].outcome == Outcome.REPLIED
