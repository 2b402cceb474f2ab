"""Embeddings from the embedding server, several texts per call.

``Embedder.embed(texts)`` sends the texts in chunks of ``batch_size`` (one HTTP call per chunk) and
returns one vector per text, in order. The dimension is whatever the model returns; it is read from
the first embedding and then held to: a model that changes its answer size mid-run is an error.

The server is a provider (``activities/llm``): Ollama's ``/api/embed`` or an OpenAI-compatible
``/v1/embeddings`` (for llama.cpp, a second ``llama-server --embeddings --pooling mean``), chosen
by ``DAEMONFLOW_EMBED_PROVIDER`` / ``DAEMONFLOW_EMBED_BASE_URL`` (default: the chat server's).

Errors are :class:`EmbeddingError` with a ``retryable`` flag for the activity wrappers: a missing
model (404) names the model and how to get it; other 4xx (e.g. a chat model that cannot embed)
are not retryable; connection failures, timeouts and 5xx are.
"""

from __future__ import annotations

from collections.abc import Sequence

from activities.llm.chat_models import embedding_provider
from activities.llm.errors import LlmError, ModelBadRequest, ModelNotFound
from activities.llm.provider import LlmProvider
from config.settings import Settings

DEFAULT_BATCH_SIZE = 32
PROBE_TEXT = "dimension probe"


class EmbeddingError(RuntimeError):
    """Embedding failed; ``retryable`` says whether trying again later may help."""

    def __init__(self, message: str, *, retryable: bool = False, model: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.model = model


class EmbeddingModelNotFound(EmbeddingError):
    def __init__(self, model: str, detail: str) -> None:
        super().__init__(
            f"embedding model {model!r} is missing: {detail}; "
            "or set DAEMONFLOW_EMBED_MODEL to an embedding model the server has",
            retryable=False,
            model=model,
        )


class EmbeddingUnavailable(EmbeddingError):
    def __init__(self, model: str, server: str, detail: str) -> None:
        super().__init__(f"cannot get embeddings from {server} (model {model!r}): {detail}", retryable=True, model=model)


class Embedder:
    """Texts → vectors with one embedding model on one server; owns (and closes) its provider."""

    def __init__(self, model: str, provider: LlmProvider, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model = model
        self.provider = provider
        self.batch_size = batch_size
        self._dimension: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Embedder:
        return cls(settings.embed_model, embedding_provider(settings), batch_size=settings.embed_batch_size)

    async def close(self) -> None:
        await self.provider.close()

    @property
    def known_dimension(self) -> int | None:
        """The dimension seen so far, or ``None`` before the first embedding."""
        return self._dimension

    async def dimension(self) -> int:
        """The model's vector size: from the embeddings seen so far, else from one probe call."""
        if self._dimension is None:
            await self.embed([PROBE_TEXT])
        assert self._dimension is not None
        return self._dimension

    async def embed_one(self, text: str) -> list[float]:
        return (await self.embed([text]))[0]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order; ``batch_size`` texts per HTTP call."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts; use embed_one() for one")
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            vectors.extend(await self._embed_chunk(chunk))
        return vectors

    async def _embed_chunk(self, texts: list[str]) -> list[list[float]]:
        for text in texts:
            if not text or not text.strip():
                raise EmbeddingError("cannot embed an empty text", model=self.model)
        try:
            vectors = await self.provider.embed(self.model, texts)
        except LlmError as error:
            raise self._classify(error) from None
        if len(vectors) != len(texts):
            raise EmbeddingError(
                f"{self.provider.label} returned {len(vectors)} embeddings for {len(texts)} texts (model {self.model!r})",
                retryable=True,
                model=self.model,
            )
        for vector in vectors:
            self._check_dimension(vector)
        return vectors

    def _check_dimension(self, vector: list[float]) -> None:
        if not vector:
            raise EmbeddingError(f"model {self.model!r} returned an empty embedding", model=self.model)
        if self._dimension is None:
            self._dimension = len(vector)
        elif len(vector) != self._dimension:
            raise EmbeddingError(
                f"model {self.model!r} returned a {len(vector)}-dimensional embedding after "
                f"{self._dimension}-dimensional ones",
                model=self.model,
            )

    def _classify(self, error: LlmError) -> EmbeddingError:
        server = self.provider.label
        if isinstance(error, ModelNotFound):
            return EmbeddingModelNotFound(self.model, str(error))
        if isinstance(error, ModelBadRequest):
            return EmbeddingError(
                f"{server} refused to embed with model {self.model!r}: {error}; "
                "is DAEMONFLOW_EMBED_MODEL an embedding model (and, for llama-server, was it started with --embeddings)?",
                retryable=False,
                model=self.model,
            )
        return EmbeddingUnavailable(self.model, server, str(error))
