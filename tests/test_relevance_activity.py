"""The I/O half of the relevance engine against the fake Ollama's real ``/api/embed``: batched and
cached embeddings, keyword mode when embeddings are missing or unreachable, and the routing
scenario (coding → developer, data → analyst, dispute → moderator) scored inside a workflow on
the real Temporal dev server, recorded in the store, and replayed.

The fake embeds with ``content_word_embedding`` (texts sharing content words point the same way),
whose cosines for a topical match (0.35–0.6) sit where all-minilm's do (0.5–0.7), so the
scenario runs on the default configuration.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Replayer, Worker

from activities.memory import MemoryService
from activities.memory.embeddings import Embedder
from activities.relevance import EmbeddingCache, RelevanceActivities
from activities.relevance.cache import cosines, unit
from activities.relevance.texts import TemplateExpertise
from config.settings import Settings
from models.relevance_scoring import (
    AgentProfile,
    AgentState,
    Decision,
    PostContext,
    RecentMessage,
    SimilarityMethod,
    SimilarityRequest,
    TextRef,
)
from store.engine import make_engine
from store.relevance import RelevanceStore
from store.transcript import TranscriptStore
from tests.fakes.ollama import content_word_embedding
from tests.fixtures.temporal import daemon_settings
from tests.relevance_probe import ProbeInput, RelevanceProbeWorkflow
from workers.main import build_activities

CODING = "My FastAPI endpoint raises an exception when I run the pytest tests. How do I debug it?"
DATA = "What is the average of the sales column in this CSV, and can you chart the monthly trend?"
DISPUTE = "You are both wrong, and this is rude."
TEAM = ["developer", "analyst", "moderator"]
NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


@pytest.fixture
def settings(fake_ollama, tmp_path) -> Settings:
    fake_ollama.embedder = content_word_embedding
    return Settings(ollama_host=fake_ollama.url, database_url=f"sqlite:///{tmp_path / 'daemonflow.db'}",
                    var_dir=tmp_path / "var")


@pytest.fixture
def transcript(settings) -> TranscriptStore:
    return TranscriptStore(make_engine(settings.effective_database_url))


@pytest.fixture
async def relevance(settings, transcript):
    embedder = Embedder.from_settings(settings)
    yield RelevanceActivities(embedder, transcript, settings)
    await embedder.close()


def request(post: str, agents=TEAM, **fields) -> SimilarityRequest:
    return SimilarityRequest(post=TextRef(text=post), agents=[AgentProfile(agent=a) for a in agents], **fields)


async def run(activities: RelevanceActivities, req: SimilarityRequest, attempt: int = 1):
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return await env.run(activities.similarities, req)


# -- batching and caching


async def test_one_embed_request_for_everything_then_only_the_new_post(relevance, fake_ollama, transcript):
    transcript.append("ops", 1, "user", CODING)
    transcript.append("ops", 2, "assistant", "Run pytest with -x to stop at the first failing test.")
    first = await run(relevance, SimilarityRequest(
        post=TextRef(conversation_id="ops", seq=2), recent={"1": TextRef(conversation_id="ops", seq=1)},
        agents=[AgentProfile(agent=a) for a in TEAM]))
    [embed] = fake_ollama.embed_requests()
    assert len(embed["input"]) == len(relevance.cache) == 2 + 7 + 6 + 6 + 3  # 2 messages, entries, descriptions
    assert set(first.recent) == {"1"} and 0.2 < first.recent["1"] < 1  # the answer shares "pytest", "test", "run"

    transcript.append("ops", 3, "user", DATA)
    await run(relevance, SimilarityRequest(
        post=TextRef(conversation_id="ops", seq=3),
        recent={"1": TextRef(conversation_id="ops", seq=1), "2": TextRef(conversation_id="ops", seq=2)},
        agents=[AgentProfile(agent=a) for a in TEAM]))
    second = fake_ollama.embed_requests()[1:]
    assert [r["input"] for r in second] == [[DATA]]


async def test_fifty_agents_are_embedded_in_batches_of_the_configured_size(settings, transcript, fake_ollama):
    embedder = Embedder.from_settings(settings.model_copy(update={"embed_batch_size": 32}))
    activities = RelevanceActivities(embedder, transcript, settings)
    agents = [AgentProfile(agent=f"agent-{i}", expertise=[f"topic {i} alpha", f"topic {i} beta"], description="")
              for i in range(50)]
    result = await run(activities, SimilarityRequest(post=TextRef(text=CODING), agents=agents))
    sizes = [len(r["input"]) for r in fake_ollama.embed_requests()]
    assert sizes == [32, 32, 32, 5]  # 101 texts, one embed() call
    assert len(result.expertise) == 50
    await embedder.close()


def test_the_cache_is_bounded_least_recently_used_first_and_keyed_by_model():
    cache = EmbeddingCache(max_entries=2)
    cache.put_many("m", [("a", unit([1.0, 0.0])), ("b", unit([0.0, 2.0]))])
    assert set(cache.get_many("m", ["a"])) == {"a"}  # a is now the most recently used
    cache.put_many("m", [("c", unit([3.0, 4.0]))])
    assert set(cache.get_many("m", ["a", "b", "c"])) == {"a", "c"}
    assert cache.get_many("other-model", ["a"]) == {}
    nothing_kept = EmbeddingCache(max_entries=0)
    nothing_kept.put_many("m", [("a", unit([1.0, 0.0]))])
    assert len(nothing_kept) == 0


def test_cosines_are_of_unit_vectors_and_zero_for_an_empty_text():
    vectors = {"a": unit([3.0, 4.0]), "b": unit([4.0, -3.0]), "c": unit([0.0, 0.0]), "d": unit([6.0, 8.0])}
    assert cosines(vectors["a"], ["a", "b", "c", "d"], vectors) == pytest.approx({"a": 1.0, "b": 0.0, "c": 0.0, "d": 1.0})
    assert cosines(None, ["a"], vectors) == {"a": 0.0}


async def test_the_result_is_a_few_rounded_floats_per_agent(relevance):
    result = await run(relevance, request(CODING, agents=["developer", "analyst", "moderator", "assistant"]))
    for match in result.expertise.values():
        assert match.similarity == round(match.similarity, 4) and len(match.matched) <= 80
    per_agent = len(json.dumps(result.model_dump(mode="json")["expertise"])) / 4
    assert per_agent < 90  # bytes of history per agent


# -- degraded modes


async def test_without_the_embedding_model_the_post_is_scored_by_keywords_at_once(relevance, fake_ollama):
    fake_ollama.models = ["llama3.2"]
    result = await run(relevance, request(CODING))
    assert result.method == SimilarityMethod.KEYWORDS and result.model is None
    assert "ollama pull all-minilm" in result.degraded_reason
    assert result.expertise["developer"].matched == "pytest tests, test failures"
    assert result.expertise["developer"].similarity > 0.3 > result.expertise["analyst"].similarity


async def test_an_unreachable_ollama_is_retried_then_answered_by_keywords(relevance, fake_ollama):
    fake_ollama.down()
    with pytest.raises(ApplicationError) as caught:
        await run(relevance, request(CODING), attempt=1)
    assert caught.value.type == "EmbeddingUnavailable" and not caught.value.non_retryable
    result = await run(relevance, request(CODING), attempt=3)
    assert result.method == SimilarityMethod.KEYWORDS and "cannot get embeddings" in result.degraded_reason


async def test_a_post_missing_from_the_store_is_a_clear_non_retryable_error(relevance):
    with pytest.raises(ApplicationError, match="post ops#7 is not in the store") as caught:
        await run(relevance, SimilarityRequest(post=TextRef(conversation_id="ops", seq=7),
                                               agents=[AgentProfile(agent="developer")]))
    assert caught.value.non_retryable and caught.value.type == "MessageNotFound"


async def test_an_agent_without_a_template_has_no_expertise_but_the_post_goes_on(relevance):
    result = await run(relevance, request(CODING, agents=["developer", "ghost"]))
    assert "ghost" not in result.expertise and "developer" in result.expertise


async def test_a_channel_may_give_an_agent_its_own_expertise(relevance):
    result = await run(relevance, SimilarityRequest(post=TextRef(text=DATA), agents=[
        AgentProfile(agent="developer", expertise=["monthly sales charts"], description="")]))
    assert result.expertise["developer"].matched == "monthly sales charts"


def test_templates_are_read_again_after_their_ttl(tmp_path):
    (tmp_path / "scout.yaml").write_text("expertise: [maps]\nsystem_prompt: x\n", encoding="utf-8")
    kept, fresh = TemplateExpertise(tmp_path), TemplateExpertise(tmp_path, ttl_s=0)
    assert kept.of("scout") == fresh.of("scout") == (["maps"], "")
    (tmp_path / "scout.yaml").write_text("expertise: [tides]\ndescription: Sailor.\nsystem_prompt: x\n", encoding="utf-8")
    assert kept.of("scout") == (["maps"], "")
    assert fresh.of("scout") == (["tides"], "Sailor.")
    assert fresh.entries(AgentProfile(agent="scout", expertise=["own entry", " "])) == ["own entry", "Sailor."]
    assert fresh.of("nobody") == ([], "")


def test_a_text_is_either_a_stored_message_or_inline():
    for fields in ({}, {"text": "x", "conversation_id": "c", "seq": 1}, {"conversation_id": "c"}, {"seq": 2}):
        with pytest.raises(ValueError, match="either conversation_id and seq"):
            TextRef(**fields)
    with pytest.raises(ValueError, match="at most 4000 characters"):
        TextRef(text="x" * 4001)


# -- the scenario, inside a workflow on the real dev server


@pytest.fixture
async def probe(temporal_env, temporal_address, fake_ollama, tmp_path):
    fake_ollama.embedder = content_word_embedding
    settings = daemon_settings(tmp_path, temporal_address, fake_ollama.url)
    memory = MemoryService.from_settings(settings)
    activities = [a for role in build_activities(settings, None, memory).values() for a in role]
    worker = Worker(temporal_env.client, task_queue=settings.task_queue, workflows=[RelevanceProbeWorkflow],
                    activities=activities)
    async with worker:
        yield temporal_env.client, settings
    await memory.close()


async def score(client, settings, seq: int, author: str, recent: list[tuple[int, str]], **fields) -> tuple:
    probe = ProbeInput(
        post=PostContext(channel_id="team", message_id=str(seq), author=author,
                         author_kind="person" if author == "alice" else "agent", at=NOW,
                         recent=[RecentMessage(message_id=str(s), author=a, at=NOW) for s, a in recent]),
        text=TextRef(conversation_id="team", seq=seq),
        recent={str(s): TextRef(conversation_id="team", seq=s) for s, _ in recent},
        agents=[AgentState(agent=a) for a in TEAM], **fields,
    )
    handle = await client.start_workflow(RelevanceProbeWorkflow.run, probe, id=f"probe-{uuid.uuid4().hex[:8]}",
                                         task_queue=settings.task_queue)
    return await handle.result(), handle


async def test_each_question_reaches_the_agent_it_is_for_and_replays(probe, fake_ollama):
    client, settings = probe
    transcript = TranscriptStore(make_engine(settings.effective_database_url))
    for seq, text in enumerate([CODING, "Run pytest with -x and read the traceback.", DATA, DISPUTE], start=1):
        transcript.append("team", seq, "user", text)

    coding, handle = await score(client, settings, 1, "alice", [])
    assert coding.speakers == ["developer"] and "analyst" not in coding.speakers
    data, _ = await score(client, settings, 3, "alice", [(1, "alice"), (2, "developer")])
    assert data.speakers == ["analyst"] and "developer" not in data.speakers
    dispute, _ = await score(client, settings, 4, "alice", [(1, "alice"), (2, "developer"), (3, "alice")])
    assert dispute.speakers == ["moderator"]

    developer = next(s for s in coding.scores if s.agent == "developer")
    assert developer.explanation.startswith("intervene (high priority) ") and "expertise" in developer.explanation
    assert all(s.method == SimilarityMethod.EMBEDDING for s in coding.scores + data.scores + dispute.scores)

    records = RelevanceStore(transcript.engine).scores_of("developer")
    assert [(r.message_id, r.decision) for r in records.items] == [
        ("4", Decision.IGNORE), ("3", Decision.IGNORE), ("1", Decision.INTERVENE)]
    assert records.items[-1].explanation == developer.explanation

    history = await handle.fetch_history()
    await Replayer(workflows=[RelevanceProbeWorkflow], data_converter=pydantic_data_converter).replay_workflow(history)


async def test_a_post_is_scored_by_keywords_when_ollama_stays_down(probe, fake_ollama):
    client, settings = probe
    TranscriptStore(make_engine(settings.effective_database_url)).append("team", 1, "user", CODING)
    fake_ollama.down()
    result, handle = await score(client, settings, 1, "alice", [])
    assert result.speakers == ["developer"]
    assert all("keyword match (embeddings unavailable)" in s.explanation for s in result.scores)
    attempts = [e.activity_task_started_event_attributes.attempt for e in (await handle.fetch_history()).events
                if e.HasField("activity_task_started_event_attributes")]
    assert attempts[0] == 3  # two failed attempts (retried by Temporal), then keyword mode

