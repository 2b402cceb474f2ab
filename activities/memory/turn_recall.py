"""Recall for one turn: the memories closest to the user's message, from the scopes the
conversation may see, as ids (best first) or the reason there are none.

Used by the ``memory.recall`` activity (histories recorded before a turn took one round trip) and
by ``llm.chat`` itself, which now recalls before it asks the model (``activities/turn_prelude.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from activities.memory import EmbeddingError, EmbeddingUnavailable, MemoryService, MemoryStoreError
from activities.memory.store import StoreLocked
from config.settings import Settings
from models.memory import MemoryQuery, RecallResult, visible_scopes

log = logging.getLogger(__name__)

QUERY_CHARS = 4_000
"""The most of a message that is embedded as the recall query."""


def recall_query(settings: Settings, text: str, k: int, agent: str, user_id: str | None,
                 conversation_id: str) -> MemoryQuery:
    return MemoryQuery(
        text=text,
        k=k,
        scopes=visible_scopes(agent, user_id, conversation_id),
        min_score=settings.memory_min_score,
        min_similarity=settings.memory_min_similarity,
    )


@dataclass(frozen=True)
class TurnRecall:
    result: RecallResult
    """What goes back to the workflow: ids, or why there are none."""
    texts: list[str] = field(default_factory=list)
    """The recalled memories' texts, in the same order: ``llm.chat`` puts them in the prompt it is
    building without loading the records a second time (recall has just read them)."""


async def recall_for_turn(memory: MemoryService, settings: Settings, text: str, agent: str, user_id: str | None,
                          conversation_id: str) -> RecallResult:
    """Raises ``EmbeddingUnavailable`` and ``StoreLocked`` (the caller decides whether to retry); any
    other memory failure is configuration (a missing model, a mismatched collection) and comes back as the
    result's ``error``: the turn goes on without memories."""
    return (await recall_with_texts(memory, settings, text, agent, user_id, conversation_id)).result


async def recall_with_texts(memory: MemoryService, settings: Settings, text: str, agent: str, user_id: str | None,
                            conversation_id: str) -> TurnRecall:
    """:func:`recall_for_turn`, with the memories' texts."""
    if not text.strip():
        return TurnRecall(RecallResult())
    query = recall_query(settings, text[:QUERY_CHARS], settings.memory_recall_k, agent, user_id, conversation_id)
    try:
        found = await memory.recall(query)
    except (EmbeddingUnavailable, StoreLocked):
        raise
    except (EmbeddingError, MemoryStoreError) as err:
        log.warning("memory recall skipped: %s", err)
        return TurnRecall(RecallResult(error=str(err)))
    return TurnRecall(RecallResult(memory_ids=[m.record.id for m in found]), [m.record.text for m in found])
