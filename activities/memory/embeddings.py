"""Embeddings through Ollama's ``/api/embed``, several texts per call.

``Embedder.embed(texts)`` sends the texts in chunks of ``batch_size`` (one HTTP call per chunk) and
returns one vector per text, in order. The dimension is whatever the model returns; it is read from
the first embedding and then held to: a model that changes its answer size mid-run is an error.

Errors are :class:`EmbeddingError` with a ``retryable`` flag for the activity wrappers: a missing
model (404) names the model and ``ollama pull``; other 4xx (e.g. a chat model that cannot embed)
are not retryable; connection failures, timeouts and 5xx are.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import ollama

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
    def __init__(self, model: str, host: str, detail: str = "") -> None:
        message = (
            f"embedding model {model!r} is not installed on Ollama at {host}: "
            f"run `ollama pull {model}` there, or set DAEMONFLOW_EMBED_MODEL to an installed embedding model"
        )
        if detail:
            message += f" (Ollama said: {detail})"
        super().__init__(message, retryable=False, model=model)


class EmbeddingUnavailable(EmbeddingError):
    def __init__(self, model: str, host: str, detail: str) -> None:
        super().__init__(
            f"cannot get embeddings from Ollama at {host} (model {model!r}): {detail}",
            retryable=True,
            model=model,
        )


class Embedder:
    """Texts → vectors with one Ollama embedding model."""

    def __init__(
        self,
        model: str,
        host: str | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        timeout_s: float = 120.0,
        client: ollama.AsyncClient | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model = model
        self.host = host or "http://localhost:11434"
        self.batch_size = batch_size
        self._timeout_s = timeout_s
        self._client = client
        self._owns_client = client is None
        self._dimension: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Embedder:
        return cls(
            settings.embed_model,
            settings.ollama_host,
            batch_size=settings.embed_batch_size,
            timeout_s=min(settings.ollama_timeout_s, 120.0),
        )

    def _ollama(self) -> ollama.AsyncClient:
        if self._client is None:
            self._client = ollama.AsyncClient(
                host=self.host,
                timeout=httpx.Timeout(self._timeout_s, connect=5.0),
                transport=httpx.AsyncHTTPTransport(retries=0),
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.close()
            self._client = None

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
            response = await self._ollama().embed(model=self.model, input=texts)
        except ollama.ResponseError as error:
            raise self._classify(error) from None
        except (ConnectionError, httpx.TransportError) as error:
            raise EmbeddingUnavailable(self.model, self.host, str(error) or type(error).__name__) from None
        vectors = [list(map(float, v)) for v in response.embeddings or []]
        if len(vectors) != len(texts):
            raise EmbeddingError(
                f"Ollama returned {len(vectors)} embeddings for {len(texts)} texts (model {self.model!r})",
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

    def _classify(self, error: ollama.ResponseError) -> EmbeddingError:
        status = error.status_code
        if status == 404:
            return EmbeddingModelNotFound(self.model, self.host, error.error)
        if 400 <= status < 500:
            return EmbeddingError(
                f"Ollama refused to embed with model {self.model!r} (HTTP {status}): {error.error}; "
                "is DAEMONFLOW_EMBED_MODEL an embedding model?",
                retryable=False,
                model=self.model,
            )
        return EmbeddingUnavailable(self.model, self.host, f"HTTP {status}: {error.error}")
