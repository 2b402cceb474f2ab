"""A turn's recall costs the worker one trip to the embedded store, and the prompt is built from
what that trip read: real Qdrant Edge shard, real SQLite, the fake Ollama over real HTTP (that the
one-trip search answers what search and vectors answer, on every store: ``tests/test_memory.py``).

Each trip to the store's thread wakes a thread and the event loop; at 50 concurrent conversations
the worker's profile had three per turn (search, the candidates' vectors, the recalled records
again for the prompt) where one does (``bench/README.md``, *Figures*)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.llm import LlmActivities
from activities.memory import MemoryService
from activities.memory.edge_backend import EdgeMemoryStore
from activities.memory.embeddings import Embedder
from config.settings import Settings
from config.templates import load_template
from models.llm import ChatRequest
from models.memory import MemoryScope, NewMemory, RecallRequest
from models.transcript import AppendMessage
from models.turn_writes import TurnWrites
from store.engine import make_engine
from store.transcript import TranscriptStore

FACTS = ["The user's editor is Helix.", "The user deploys to a Raspberry Pi.", "The user's shell is fish."]


class TripCountingEdgeStore(EdgeMemoryStore):
    """The real store, counting the calls it hands to its thread."""

    trips: list[str] = []

    async def _run(self, fn: Any, *args: Any) -> Any:
        self.trips = [*self.trips, getattr(fn, "__name__", repr(fn))]
        return await super()._run(fn, *args)


@pytest.fixture
async def memory(tmp_path, fake_ollama):
    settings = Settings(_env_file=None, var_dir=tmp_path, ollama_host=fake_ollama.url, database_url="sqlite://")
    service = MemoryService(TripCountingEdgeStore(tmp_path / "qdrant-edge"), Embedder.from_settings(settings))
    await service.remember_many([NewMemory(text=t, scope=MemoryScope.AGENT, scope_id="assistant", agent="assistant")
                                 for t in FACTS])
    yield service
    await service.close()


async def test_one_store_trip_per_turn_and_the_prompt_holds_the_recalled_texts(memory, tmp_path, fake_ollama):
    store = TranscriptStore(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    store.open_conversation("c1", "assistant", "llama3.2")
    settings = Settings(_env_file=None, ollama_host=fake_ollama.url, database_url="sqlite://", var_dir=tmp_path,
                        memory_min_similarity=-1.0, memory_min_score=-1.0)  # the fake's vectors are hashes: all 3
    llm = LlmActivities(store, settings, memory)
    message = "Which editor should I configure? " + FACTS[0]
    request = ChatRequest(
        conversation_id="c1", turn=1, reply_seq=2, upto_seq=1, template=load_template("assistant"),
        now=datetime(2026, 12, 3, 4, 0, tzinfo=UTC),
        writes=TurnWrites(conversation_id="c1", messages=[AppendMessage(conversation_id="c1", seq=1, role="user", content=message)]),
        recall=RecallRequest(conversation_id="c1", seq=1, agent="assistant"),
    )
    memory.store.trips = []
    result = await ActivityEnvironment().run(llm.chat, request)

    assert memory.store.trips == ["_search"]  # no second trip for the vectors, none to load the records again
    assert result.recalled is not None and result.recalled.error is None and len(result.recalled.memory_ids) == 3
    texts = {r.id: r.text for r in await memory.get_many(result.recalled.memory_ids)}
    system = fake_ollama.chat_requests()[0]["messages"][0]["content"]
    positions = [system.index(texts[i]) for i in result.recalled.memory_ids]  # every one, best first
    assert positions == sorted(positions)
    assert [m.content for m in store.list_messages("c1")] == [message, result.reply]
