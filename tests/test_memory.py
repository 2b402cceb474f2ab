"""The memory layer: embeddings over real HTTP (fake Ollama), every store, ranking.

Every behaviour test runs three times, through the ``memory_settings`` fixture and
:func:`open_service`: on the embedded engine (Qdrant Edge in a temp folder, the default), on the
qdrant-client code path of the Qdrant server store (against qdrant-client's local mode in a temp
folder: the same client API, no server needed), and on PostgreSQL + pgvector (a fresh database on
the session's pgserver). What only the embedded engine does (its lock, crash durability, the copy
of an old ``var/qdrant``) is in ``tests/test_memory_edge.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from activities.llm.ollama_provider import OllamaProvider
from activities.memory import TOUCH_EVERY, MemoryService, recall_weights
from activities.memory.edge_backend import EdgeMemoryStore
from activities.memory.embeddings import Embedder, EmbeddingError, EmbeddingModelNotFound, EmbeddingUnavailable
from activities.memory.pgvector_backend import PgvectorMemoryStore
from activities.memory.qdrant_backend import QdrantMemoryStore
from activities.memory.ranking import cosine, is_near_duplicate, normalise_text, rank, recency, score
from activities.memory.store import DimensionMismatch, MemoryStoreError, open_memory_store
from config.settings import Settings
from models.memory import (
    MemoryExtraction,
    MemoryKind,
    MemoryQuery,
    MemoryRecord,
    MemoryScope,
    NewMemory,
    RecallWeights,
    visible_scopes,
)
from tests.fakes.ollama import FakeOllama

PI = "my deployment target is a Raspberry Pi 5"
USER = MemoryScope.USER
AGENT = MemoryScope.AGENT
CONVERSATION = MemoryScope.CONVERSATION


@pytest.fixture(autouse=True)
def _remove_sandboxes_the_test_made() -> None:
    """Overrides the Docker clean-up of ``tests/fixtures/docker.py``: memory tests make no
    sandboxes, so they neither need the Docker engine nor touch containers that another test
    session on this machine is using."""


STORES = {"qdrant-edge": EdgeMemoryStore, "qdrant-client": QdrantMemoryStore, "pgvector": PgvectorMemoryStore}


@pytest.fixture(params=list(STORES))
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def memory_settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path, fake_ollama: FakeOllama) -> Settings:
    common = dict(
        _env_file=None,
        var_dir=tmp_path / "var",
        ollama_host=fake_ollama.url,
        embed_model="all-minilm",
        qdrant_url="",
        memory_collection="memories",
    )
    if backend == "pgvector":
        return Settings(memory_backend="pgvector", database_url=request.getfixturevalue("fresh_postgres_url"), **common)
    return Settings(memory_backend="qdrant", database_url="", **common)


def open_service(settings: Settings, backend: str) -> MemoryService:
    """The service ``settings`` describe on ``backend``. The factory gives qdrant-client's store
    only for a server URL; here its local mode in ``var/qdrant-client`` stands in for the server."""
    if backend != "qdrant-client":
        return MemoryService.from_settings(settings)
    store = QdrantMemoryStore(path=settings.var_dir / "qdrant-client", collection=settings.memory_collection)
    return MemoryService(store, Embedder.from_settings(settings), weights=recall_weights(settings),
                         duplicate_threshold=settings.memory_duplicate_threshold)


@pytest.fixture
async def memory(memory_settings: Settings, backend: str) -> AsyncIterator[MemoryService]:
    service = open_service(memory_settings, backend)
    try:
        yield service
    finally:
        await service.close()


def alice_scopes(conversation: str = "c-alice") -> list:
    return visible_scopes(agent="assistant", user_id="alice", conversation_id=conversation)


# --------------------------------------------------------------------------- behaviour, both backends


async def test_remember_and_recall(memory: MemoryService, backend: str) -> None:
    assert type(memory.store) is STORES[backend]
    record, created = await memory.remember(PI, USER, "alice", MemoryKind.SEMANTIC, 0.8, agent="assistant",
                                            source_conversation="c1", source_turn=3)
    assert created and record.scope is USER and record.scope_id == "alice"
    await memory.remember("the user likes green tea in the morning", USER, "alice")
    await memory.remember("the office printer jams on A3 paper", AGENT, "assistant", MemoryKind.EPISODIC)
    assert await memory.count() == 3
    assert memory.store.dimension == 384

    results = await memory.recall(MemoryQuery(text="what should I compile for my Raspberry Pi?", k=2,
                                              scopes=alice_scopes()))
    assert results[0].record.id == record.id
    assert results[0].record.text == PI
    assert results[0].record.source_conversation == "c1" and results[0].record.source_turn == 3
    assert len(results) <= 2
    assert [s.score for s in results] == sorted((s.score for s in results), reverse=True)
    assert 0 < results[0].similarity <= 1

    stored = await memory.get(record.id)
    assert stored is not None and stored.last_used_at == record.last_used_at  # used a moment ago (TOUCH_EVERY)
    assert stored.created_at == record.created_at


async def test_scope_isolation(memory: MemoryService) -> None:
    alice, _ = await memory.remember("alice's deployment target is a Raspberry Pi 5", USER, "alice")
    bob, _ = await memory.remember("bob's deployment target is an x86 server", USER, "bob")
    convo, _ = await memory.remember("in this conversation the deployment target is a Jetson", CONVERSATION, "c-alice")
    shared, _ = await memory.remember("deployment targets need cross-compilation", AGENT, "assistant")
    other_agent, _ = await memory.remember("deployment target notes of another agent", AGENT, "developer")

    query = "deployment target"
    bobs = await memory.recall(MemoryQuery(text=query, k=10, scopes=visible_scopes("assistant", "bob", "c-bob")))
    assert {s.record.id for s in bobs} == {bob.id, shared.id}

    alices = await memory.recall(MemoryQuery(text=query, k=10, scopes=alice_scopes("c-alice")))
    assert {s.record.id for s in alices} == {alice.id, convo.id, shared.id}

    other_conversation = await memory.recall(MemoryQuery(text=query, k=10, scopes=alice_scopes("c-other")))
    assert {s.record.id for s in other_conversation} == {alice.id, shared.id}

    no_user = await memory.recall(MemoryQuery(text=query, k=10, scopes=visible_scopes("assistant", None, "c-x")))
    assert {s.record.id for s in no_user} == {shared.id}

    assert await memory.recall(MemoryQuery(text=query, k=10, scopes=[])) == []
    with pytest.raises(ValueError, match="visible scopes"):
        await memory.recall(MemoryQuery(text=query, scopes=None))

    everything = await memory.search(query, k=10)  # operator search: every scope
    assert {s.record.id for s in everything} == {alice.id, bob.id, convo.id, shared.id, other_agent.id}


async def test_kind_filter(memory: MemoryService) -> None:
    fact, _ = await memory.remember("the build server runs Debian 12", AGENT, "assistant", MemoryKind.SEMANTIC)
    event, _ = await memory.remember("the build server crashed during the release", AGENT, "assistant",
                                     MemoryKind.EPISODIC)
    lesson, _ = await memory.remember("restart the build server before a release", AGENT, "assistant",
                                      MemoryKind.REFLECTIVE)
    scopes = visible_scopes("assistant")
    only_lessons = await memory.recall(MemoryQuery(text="build server", k=5, scopes=scopes,
                                                   kinds=[MemoryKind.REFLECTIVE]))
    assert [s.record.id for s in only_lessons] == [lesson.id]
    two_kinds = await memory.recall(MemoryQuery(text="build server", k=5, scopes=scopes,
                                                kinds=[MemoryKind.SEMANTIC, MemoryKind.EPISODIC]))
    assert {s.record.id for s in two_kinds} == {fact.id, event.id}
    assert [r.id for r in await memory.list(kind=MemoryKind.EPISODIC)] == [event.id]
    assert await memory.count(kind=MemoryKind.SEMANTIC) == 1


async def test_expiry_is_honoured(memory: MemoryService) -> None:
    now = datetime.now(UTC)
    expired, _ = await memory.remember("the staging password rotates on Mondays", USER, "alice",
                                       expires_at=now - timedelta(minutes=1))
    current, _ = await memory.remember("the staging database is on host db2", USER, "alice",
                                       expires_at=now + timedelta(days=1))
    results = await memory.recall(MemoryQuery(text="staging password database", k=5, scopes=alice_scopes()))
    assert [s.record.id for s in results] == [current.id]
    # Still stored (operators can see and forget it), just never recalled.
    assert await memory.count() == 2
    assert {r.id for r in await memory.list()} == {expired.id, current.id}
    assert [r.id for r in await memory.list(include_expired=False)] == [current.id]
    assert (await memory.get(expired.id)).expires_at is not None  # type: ignore[union-attr]
    # An expired memory is not a near-duplicate target either: storing it again adds a fresh row.
    again, created = await memory.remember("the staging password rotates on Mondays", USER, "alice")
    assert created and again.id != expired.id


async def test_recall_marks_memories_used_at_most_once_an_hour(memory: MemoryService) -> None:
    record, _ = await memory.remember(PI, USER, "alice")
    query = MemoryQuery(text="what should I compile for my Raspberry Pi?", k=1, scopes=alice_scopes())
    later = record.last_used_at + TOUCH_EVERY + timedelta(minutes=1)
    for at, written in ((record.last_used_at + TOUCH_EVERY / 2, record.last_used_at), (later, later)):
        in_an_hour = MemoryService(memory.store, memory.embedder, clock=lambda at=at: at)
        [found] = await in_an_hour.recall(query)
        assert found.record.id == record.id
        assert (await memory.get(record.id)).last_used_at == written  # type: ignore[union-attr]


async def test_near_duplicate_updates_instead_of_adding(memory: MemoryService) -> None:
    first, created = await memory.remember(PI, USER, "alice", importance=0.4)
    assert created
    second, created = await memory.remember("My deployment target is a Raspberry Pi 5!", USER, "alice",
                                            importance=0.9)
    assert not created
    assert second.id == first.id
    assert second.text == "My deployment target is a Raspberry Pi 5!"
    assert second.importance == 0.9
    assert second.last_used_at > first.last_used_at
    assert second.created_at == first.created_at
    assert await memory.count() == 1

    lower, created = await memory.remember(PI, USER, "alice", importance=0.1)
    assert not created and lower.importance == 0.9  # importance never drops on a repeat
    stored = await memory.get(first.id)
    assert stored is not None and stored.text == PI and stored.importance == 0.9

    # The same words in another scope are another memory.
    _, created = await memory.remember(PI, USER, "bob")
    assert created
    # A different fact in the same scope is added.
    _, created = await memory.remember("my laptop runs Fedora 40", USER, "alice")
    assert created
    assert await memory.count() == 3
    assert await memory.count(USER, "alice") == 2

    # Within one batch, a later near-duplicate updates the earlier one.
    results = await memory.remember_many([
        NewMemory(text="the VPN endpoint is vpn.example.org", scope=USER, scope_id="carol"),
        NewMemory(text="The VPN endpoint is vpn.example.org.", scope=USER, scope_id="carol"),
    ])
    assert [created for _, created in results] == [True, False]
    assert results[0][0].id == results[1][0].id
    assert await memory.count(USER, "carol") == 1


async def test_recall_deduplicates_across_scopes(memory: MemoryService) -> None:
    await memory.remember("deploy with make release", USER, "alice", importance=0.9)
    await memory.remember("Deploy with  make release.", AGENT, "assistant", importance=0.2)
    await memory.remember("releases happen on Fridays", AGENT, "assistant")
    results = await memory.recall(MemoryQuery(text="how do I deploy a release", k=5, scopes=alice_scopes()))
    texts = [normalise_text(s.record.text) for s in results]
    assert texts.count("deploy with make release") == 1
    assert results[0].record.scope is USER  # the better-scored copy is the one kept
    assert len(results) == 2


async def test_search_with_vectors_answers_what_search_then_vectors_answer(memory: MemoryService) -> None:
    """Recall asks for hits and their vectors at once (one trip on Edge and pgvector; the base
    class's two calls on qdrant-client): the same hits, the same vectors, none for one hit."""
    for text in ("deploy with make release", "releases happen on Fridays", "the CI runs on GitHub Actions"):
        await memory.remember(text, AGENT, "assistant")
    query = MemoryQuery(text="release", k=5, scopes=alice_scopes(), min_similarity=-1.0)
    vector = await memory.embedder.embed_one("how do I deploy a release")
    found, vectors = await memory.store.search_with_vectors(vector, query, limit=5)
    searched = await memory.store.search(vector, query, limit=5)
    assert [(r.id, pytest.approx(s)) for r, s in found] == [(r.id, s) for r, s in searched] and len(found) == 3
    stored = await memory.store.vectors([r.id for r, _ in found])
    assert vectors is not None and vectors.keys() == stored.keys()
    for key, expected in stored.items():
        assert vectors[key] == pytest.approx(expected, abs=1e-6)
    one, none = await memory.store.search_with_vectors(vector, query, limit=1)
    assert len(one) == 1 and none is None


async def test_forget_really_removes(memory: MemoryService) -> None:
    keep, _ = await memory.remember("the CI runs on GitHub Actions", USER, "alice")
    gone, _ = await memory.remember("my deployment target is a Raspberry Pi 5", USER, "alice")
    assert await memory.count() == 2

    assert await memory.forget([gone.id, "not-a-uuid", "00000000-0000-0000-0000-000000000000"]) == 1
    assert await memory.count() == 1
    assert await memory.get(gone.id) is None
    assert [r.id for r in await memory.list()] == [keep.id]
    for found in (
        await memory.recall(MemoryQuery(text="Raspberry Pi deployment target", k=5, scopes=alice_scopes())),
        await memory.search("Raspberry Pi deployment target", k=5),
    ):
        assert gone.id not in {s.record.id for s in found}
    assert await memory.store.vectors([gone.id]) == {}
    assert await memory.forget([gone.id]) == 0

    # Gone for a reopened store too (and not resurrected from a file).
    await memory.close()
    assert await memory.get(gone.id) is None
    assert await memory.count() == 1


async def test_dimension_mismatch_names_both_dimensions(
    memory: MemoryService, memory_settings: Settings, backend: str, fake_ollama: FakeOllama
) -> None:
    await memory.remember(PI, USER, "alice")
    await memory.close()  # the embedded stores are single-process: release the folder first

    fake_ollama.add_model("nomic-embed-text", embed_dim=768)
    other = open_service(memory_settings.model_copy(update={"embed_model": "nomic-embed-text"}), backend)
    try:
        for attempt in (
            lambda: other.remember("something else", USER, "alice"),
            lambda: other.recall(MemoryQuery(text="anything", scopes=alice_scopes())),
        ):
            with pytest.raises(DimensionMismatch) as caught:
                await attempt()
            message = str(caught.value)
            for needle in ("384", "768", "all-minilm", "nomic-embed-text", "'memories'"):
                assert needle in message, (needle, message)
            assert caught.value.existing_dimension == 384 and caught.value.dimension == 768
        assert await other.count() == 1  # nothing written
    finally:
        await other.close()

    # Another collection name takes the new model.
    fresh = open_service(
        memory_settings.model_copy(update={"embed_model": "nomic-embed-text", "memory_collection": "memories_768"}),
        backend,
    )
    try:
        _, created = await fresh.remember("something else", USER, "alice")
        assert created and fresh.store.dimension == 768
    finally:
        await fresh.close()


async def test_remember_many_embeds_in_one_call(memory: MemoryService, fake_ollama: FakeOllama) -> None:
    before = len(fake_ollama.embed_requests())
    texts = ["the build uses cmake", "tests run with ctest", "docs are written in Sphinx", "releases are signed"]
    results = await memory.remember_many(
        [NewMemory(text=t, scope=AGENT, scope_id="assistant", kind=MemoryKind.SEMANTIC) for t in texts]
    )
    assert all(created for _, created in results)
    calls = fake_ollama.embed_requests()[before:]
    assert len(calls) == 1
    assert calls[0]["model"] == "all-minilm"
    assert calls[0]["input"] == texts
    assert await memory.count() == 4


async def test_list_order_and_pages(memory: MemoryService) -> None:
    made = []
    for i in range(5):
        record, _ = await memory.remember(f"fact number {i} about topic {'abcde'[i]}", USER, "alice")
        made.append(record)
    await memory.remember("a fact for bob", USER, "bob")
    newest_first = [r.id for r in reversed(made)]
    assert [r.id for r in await memory.list(USER, "alice")] == newest_first
    assert [r.id for r in await memory.list(USER, "alice", limit=2, offset=1)] == newest_first[1:3]
    assert [r.text for r in await memory.list(scope_id="bob")] == ["a fact for bob"]
    assert len(await memory.list(scope=USER)) == 6
    assert await memory.list(CONVERSATION) == []
    assert await memory.count(USER) == 6 and await memory.count(USER, "bob") == 1
    assert [r.id for r in await memory.get_many([made[2].id, "nope", made[0].id])] == [made[2].id, made[0].id]


async def test_empty_store_reads(memory: MemoryService) -> None:
    """Reads before anything was stored neither fail nor need the collection."""
    assert await memory.count() == 0
    assert await memory.list() == []
    assert await memory.get("00000000-0000-0000-0000-000000000000") is None
    assert await memory.forget(["00000000-0000-0000-0000-000000000000"]) == 0
    assert await memory.recall(MemoryQuery(text="anything", scopes=alice_scopes())) == []


async def test_texts_without_words(memory: MemoryService) -> None:
    """The fake embeds punctuation as a zero vector: such a query recalls nothing, and such a
    memory is refused (it could never be found) rather than stored."""
    await memory.remember(PI, USER, "alice")
    assert await memory.recall(MemoryQuery(text="?!", scopes=alice_scopes())) == []
    with pytest.raises(EmbeddingError, match="zero vector"):
        await memory.remember("...", USER, "alice")
    assert await memory.count() == 1


# --------------------------------------------------------------------------- embeddings


async def test_embedder_batches_and_reads_dimension(fake_ollama: FakeOllama) -> None:
    embedder = Embedder("all-minilm", OllamaProvider(fake_ollama.url), batch_size=2)
    try:
        vectors = await embedder.embed(["one", "two", "three", "four", "five"])
        assert len(vectors) == 5 and {len(v) for v in vectors} == {384}
        assert [len(body["input"]) for body in fake_ollama.embed_requests()] == [2, 2, 1]
        assert await embedder.dimension() == 384
        assert len(fake_ollama.embed_requests()) == 3  # dimension came from the first embedding
    finally:
        await embedder.close()

    fake_ollama.add_model("mxbai-embed-large", embed_dim=1024)
    probe = Embedder("mxbai-embed-large", OllamaProvider(fake_ollama.url))
    try:
        assert await probe.dimension() == 1024
    finally:
        await probe.close()


async def test_embedder_errors_are_clear(fake_ollama: FakeOllama) -> None:
    missing = Embedder("nomic-embed-text", OllamaProvider(fake_ollama.url))
    with pytest.raises(EmbeddingModelNotFound) as caught:
        await missing.embed_one("hello")
    assert "nomic-embed-text" in str(caught.value) and "ollama pull nomic-embed-text" in str(caught.value)
    assert not caught.value.retryable
    await missing.close()

    embedder = Embedder("all-minilm", OllamaProvider(fake_ollama.url))
    with pytest.raises(EmbeddingError, match="empty"):
        await embedder.embed(["fine", "  "])
    fake_ollama.fail_next(1, status=500)
    with pytest.raises(EmbeddingUnavailable) as unavailable:
        await embedder.embed_one("hello")
    assert unavailable.value.retryable
    fake_ollama.down()
    try:
        with pytest.raises(EmbeddingUnavailable) as refused:
            await embedder.embed_one("hello")
        assert refused.value.retryable and fake_ollama.url in str(refused.value)
    finally:
        fake_ollama.up()
        await embedder.close()


# --------------------------------------------------------------------------- ranking (pure)


NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def record(text: str, importance: float = 0.5, days_ago: float = 0.0, **kw: object) -> MemoryRecord:
    when = NOW - timedelta(days=days_ago)
    return MemoryRecord(text=text, scope=USER, scope_id="alice", importance=importance,
                        created_at=when, last_used_at=when, **kw)  # type: ignore[arg-type]


def test_score_formula_on_known_inputs() -> None:
    weights = RecallWeights()
    assert recency(0, 30) == 1.0
    assert recency(30, 30) == pytest.approx(0.5)
    assert recency(90, 30) == pytest.approx(0.125)
    assert recency(-5, 30) == 1.0  # a clock skew never makes a memory "fresher than now"
    # The docstring's example: 0.6·0.8 + 0.2·0.5 + 0.2·0.5
    assert score(0.8, recency(30, 30), 0.5, weights) == pytest.approx(0.68)
    assert score(-0.3, 1.0, 0.0, weights) == pytest.approx(0.2)  # similarity clamped at 0
    custom = RecallWeights(similarity=1.0, recency=0.0, importance=0.0, half_life_days=7)
    assert score(0.42, 0.1, 1.0, custom) == pytest.approx(0.42)

    ranked = rank([(record("old relevant", 0.5, days_ago=30), 0.8)], k=1, now=NOW)
    assert ranked[0].score == pytest.approx(0.68)
    assert ranked[0].recency == pytest.approx(0.5)


def test_rank_orders_dedups_and_cuts() -> None:
    a = record("A fact", importance=0.0, days_ago=0)  # 0.6·0.9 + 0.2 = 0.74
    b = record("B fact", importance=1.0, days_ago=60)  # 0.6·0.5 + 0.2·0.25 + 0.2 = 0.55
    c = record("  a FACT. ", importance=1.0, days_ago=0)  # same text as a; 0.6·0.85 + 0.2 + 0.2 = 0.91
    d = record("D fact", importance=0.0, days_ago=365)  # 0.6·0.1 + ~0 = ~0.06
    candidates = [(a, 0.9), (b, 0.5), (c, 0.85), (d, 0.1)]
    ranked = rank(candidates, k=10, now=NOW)
    assert [s.record.id for s in ranked] == [c.id, b.id, d.id]  # a is c's duplicate, c scores higher
    assert [round(s.score, 4) for s in ranked] == [0.91, 0.55, round(0.06 + 0.2 * 0.5 ** (365 / 30), 4)]
    assert [s.record.id for s in rank(candidates, k=1, now=NOW)] == [c.id]
    assert [s.record.id for s in rank(candidates, k=10, now=NOW, min_score=0.5)] == [c.id, b.id]

    # Vector near-duplicates (cosine ≥ 0.95) are dropped too, texts aside.
    vectors = {a.id: [1.0, 0.0], b.id: [0.99, 0.1], c.id: [0.0, 1.0], d.id: [1.0, 0.0]}
    ranked = rank([(a, 0.9), (b, 0.5), (d, 0.1)], k=10, now=NOW, vectors=vectors)
    assert [s.record.id for s in ranked] == [a.id]
    assert cosine([0.99, 0.1], [1.0, 0.0]) > 0.95
    zero = {a.id: [0.0, 0.0], b.id: [0.0, 0.0]}  # no direction, so never a duplicate
    assert [s.record.id for s in rank([(a, 0.9), (b, 0.5)], k=10, now=NOW, vectors=zero)] == [a.id, b.id]


def test_near_duplicate_threshold_and_text_normalisation() -> None:
    assert is_near_duplicate(0.92) and is_near_duplicate(0.99)
    assert not is_near_duplicate(0.919)
    assert is_near_duplicate(0.85, threshold=0.8)
    assert normalise_text("  My  Target\tis a Pi 5! ") == "my target is a pi 5"


# --------------------------------------------------------------------------- models, factory


def test_models_validate() -> None:
    query = MemoryQuery(text="x", scopes=[["user", "alice"], {"scope": "agent", "scope_id": "assistant"}])
    assert query.scopes == [(USER, "alice"), (AGENT, "assistant")]
    assert MemoryQuery.model_validate_json(query.model_dump_json()) == query
    with pytest.raises(ValueError):
        NewMemory(text="   ", scope=USER, scope_id="alice")
    with pytest.raises(ValueError):
        MemoryRecord(text="x", scope=USER, scope_id="a", importance=1.5)
    naive = MemoryRecord(text="x", scope=USER, scope_id="a", created_at=datetime(2025, 1, 1))
    assert naive.created_at.tzinfo is UTC and naive.last_used_at == naive.created_at
    assert visible_scopes("assistant", None, "c1") == [(AGENT, "assistant"), (CONVERSATION, "c1")]
    schema = MemoryExtraction.model_json_schema()  # what extraction sends as Ollama's ``format``
    assert schema["properties"]["memories"]["type"] == "array"
    extracted = MemoryExtraction.model_validate_json(
        '{"memories": [{"text": "deploys to a Raspberry Pi 5", "kind": "semantic", "importance": 0.8}]}'
    )
    assert extracted.memories[0].kind is MemoryKind.SEMANTIC


def test_factory_picks_the_backend(tmp_path: Path) -> None:
    base = Settings(_env_file=None, var_dir=tmp_path, database_url="", qdrant_url="")
    embedded = open_memory_store(base)
    assert isinstance(embedded, EdgeMemoryStore)
    assert embedded.path == tmp_path / "qdrant-edge" / "memories" and embedded.legacy_path == tmp_path / "qdrant"
    assert not (tmp_path / "qdrant-edge").exists()  # opened lazily
    server = open_memory_store(base.model_copy(update={"qdrant_url": "http://qdrant:6333"}))
    assert isinstance(server, QdrantMemoryStore) and server.url == "http://qdrant:6333" and not server.local
    with pytest.raises(MemoryStoreError, match="PostgreSQL"):
        open_memory_store(base.model_copy(update={"memory_backend": "pgvector"}))
    pg = open_memory_store(base.model_copy(update={"memory_backend": "pgvector",
                                                   "database_url": "postgresql://u:secret@db/daemonflow"}))
    assert isinstance(pg, PgvectorMemoryStore) and "secret" not in repr(pg)
    with pytest.raises(MemoryStoreError, match="qdrant, pgvector"):
        open_memory_store(base.model_copy(update={"memory_backend": "chroma"}))
    with pytest.raises(MemoryStoreError, match="collection name"):
        open_memory_store(base.model_copy(update={"memory_collection": "drop table;"}))


async def test_qdrant_client_local_mode_is_single_process(tmp_path: Path) -> None:
    first = QdrantMemoryStore(path=tmp_path / "qdrant")
    second = QdrantMemoryStore(path=tmp_path / "qdrant")
    try:
        await first.ensure(4)
        with pytest.raises(MemoryStoreError, match="already open in another process") as caught:
            await second.count()
        assert "DAEMONFLOW_QDRANT_URL" in str(caught.value)
        await first.close()
        assert await second.count() == 0  # the lock is released on close
    finally:
        await first.close()
        await second.close()
