"""The ``relevance.similarities`` activity: the only I/O the relevance engine needs.

For one post it returns, as a few rounded floats, how close the post is to each agent's closest
expertise entry and to each recent message; the workflow records them and scores with the pure
``relevance`` package. Every text that is not cached is embedded in **one** ``Embedder.embed()``
call (which sends ``embed_batch_size`` texts per HTTP request; agents' entries are cached, so
from the second post on that is one request with the post alone).

Without embeddings the post still gets its decisions: a missing or unsuitable embedding model
(non-retryable) switches straight to keyword mode (``relevance.keywords``), flagged in the result
and in every explanation; an unreachable embedding server fails the attempt so that Temporal retries it, up
to ``fallback_after_attempts``, and then answers in keyword mode too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.memory.embeddings import EmbeddingError
from activities.relevance.cache import EmbeddingCache, cosines, unit
from activities.relevance.texts import MissingPost, RequestTexts, TemplateExpertise, resolve
from config.settings import Settings
from models.relevance_scoring import ExpertiseMatch, Similarities, SimilarityMethod, SimilarityRequest
from relevance.curves import clamp, rounded
from relevance.keywords import content_words, keyword_similarity
from store.private_messages import PrivateMessageStore
from store.transcript import TranscriptStore

log = logging.getLogger(__name__)

MATCHED_CHARS = 80


class TextEmbedder(Protocol):
    """What this activity uses of ``activities.memory.embeddings.Embedder`` (any provider's)."""

    model: str

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def _expertise(texts: RequestTexts, similarity: Mapping[str, float]) -> dict[str, ExpertiseMatch]:
    """Each agent's closest entry (the first one on a tie; none named when nothing is close)."""
    matches = {}
    for agent, entries in texts.entries.items():
        if not entries:
            continue
        scored = [(rounded(clamp(similarity[entry], -1.0, 1.0)), entry) for entry in entries]
        best = max(scored, key=lambda item: item[0])
        matches[agent] = ExpertiseMatch(similarity=best[0], matched=best[1][:MATCHED_CHARS] if best[0] > 0 else "")
    return matches


def keyword_similarities(texts: RequestTexts, reason: str) -> Similarities:
    post = content_words(texts.post)
    similarity = {text: keyword_similarity(post, content_words(text)) for text in texts.all()}
    return Similarities(
        method=SimilarityMethod.KEYWORDS,
        degraded_reason=reason,
        expertise=_expertise(texts, similarity),
        recent={mid: rounded(similarity[text]) for mid, text in texts.recent.items()},
    )


def _attempt() -> int:
    return activity.info().attempt if activity.in_activity() else 1


class RelevanceActivities:
    def __init__(
        self, embedder: TextEmbedder, store: TranscriptStore, settings: Settings, cache: EmbeddingCache | None = None
    ) -> None:
        self._embedder = embedder
        self._store = store
        self.cache = cache if cache is not None else EmbeddingCache(settings.relevance_cache_size)
        self._templates = TemplateExpertise(settings.agents_dir)
        self._messages = PrivateMessageStore(store.engine)

    def all(self) -> list:
        return [self.similarities]

    @activity.defn(name="relevance.similarities")
    async def similarities(self, request: SimilarityRequest) -> Similarities:
        try:
            texts = await asyncio.to_thread(resolve, request, self._store, self._templates)
        except MissingPost as err:
            raise ApplicationError(str(err), type="MessageNotFound", non_retryable=True) from None
        try:
            measured = await self._by_embedding(texts)
        except EmbeddingError as err:
            if err.retryable and _attempt() < request.fallback_after_attempts:
                raise ApplicationError(str(err), type="EmbeddingUnavailable") from None
            log.warning("relevance: keyword mode for this post: %s", err)
            measured = keyword_similarities(texts, str(err))
        if request.trust_from is not None:  # relationship_trust from the private-message records
            agents = [profile.agent for profile in request.agents]
            measured.trust = await asyncio.to_thread(self._messages.trust, request.trust_from, agents)
        return measured

    async def _by_embedding(self, texts: RequestTexts) -> Similarities:
        wanted = texts.all()
        vectors = await self._vectors(wanted)
        similarity = cosines(vectors.get(texts.post), wanted, vectors)
        return Similarities(
            method=SimilarityMethod.EMBEDDING,
            model=self._embedder.model,
            expertise=_expertise(texts, similarity),
            recent={mid: rounded(similarity[text]) for mid, text in texts.recent.items()},
        )

    async def _vectors(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Cached vectors, and one ``embed()`` call for the rest."""
        model = self._embedder.model
        found = self.cache.get_many(model, texts)
        missing = [text for text in texts if text not in found]
        if missing:
            fresh = [unit(values) for values in await self._embedder.embed(missing)]
            self.cache.put_many(model, zip(missing, fresh, strict=True))
            found.update(zip(missing, fresh, strict=True))
        return found
