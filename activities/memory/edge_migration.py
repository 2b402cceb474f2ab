"""The one-time copy of an old embedded store (qdrant-client local mode, ``var/qdrant``) into the
embedded engine (Qdrant Edge, ``var/qdrant-edge``).

Earlier versions kept embedded memories with qdrant-client's local mode in ``<var_dir>/qdrant``.
The first time :class:`~activities.memory.edge_backend.EdgeMemoryStore` opens a collection that
also exists there and has not been copied yet, it calls :func:`copy_local_collection`, which
reads every point of that collection — id, vector, payload, verbatim (the engine keeps cosine
vectors normalised, as a Qdrant server does; local mode returned them as given) — and hands them,
a page at a time, to the store; the store then checks that it holds as many points as were read and records
the copy in its ``daemonflow.json``, so it happens once.

Nothing can be lost: the old folder is only read (never changed, moved or deleted — remove it once
satisfied), and the copy is recorded only after it is complete. A copy interrupted by a crash is
simply done again at the next open: points are written by id, so a second copy overwrites the
first with the same values. The old folder is locked by qdrant-client while it is read; an old
worker still holding it gets a clear :class:`~activities.memory.store.StoreLocked`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from activities.memory.store import MemoryStoreError, StoreLocked

PAGE = 256
"""Points read (and written) per step of the copy."""


@dataclass(frozen=True)
class LocalPoint:
    id: str | int
    vector: list[float]
    payload: dict[str, Any]


class MigrationTarget(Protocol):
    def prepare(self, dimension: int, embed_model: str | None) -> None:
        """Make the collection ready for vectors of ``dimension`` (or refuse another size)."""

    def write(self, points: list[LocalPoint]) -> None:
        """Store these points (by id: writing one twice keeps the last)."""


def has_local_collection(source: Path, collection: str) -> bool:
    """Whether ``source`` holds ``collection`` in qdrant-client's local-mode layout; reads only
    the folder names, so a store with nothing to copy never opens (nor locks) the old folder."""
    return (source / "collection" / collection).is_dir()


def copy_local_collection(source: Path, collection: str, target: MigrationTarget) -> int:
    """Copy every point of ``collection`` from ``source`` into ``target``; returns how many."""
    client = _open(source)
    try:
        if not client.collection_exists(collection):
            return 0
        dimension, embed_model = _vector_facts(client, source, collection)
        target.prepare(dimension, embed_model)
        copied = 0
        for page in _pages(client, collection):
            target.write(page)
            copied += len(page)
        return copied
    finally:
        client.close()


def _open(source: Path) -> QdrantClient:
    with warnings.catch_warnings():  # "local mode is not recommended for … points": we only read
        warnings.simplefilter("ignore")
        try:
            return QdrantClient(path=str(source))
        except RuntimeError as error:
            if "already accessed" not in str(error):
                raise
            raise StoreLocked(
                f"the old embedded memory store {source} (qdrant-client local mode) is open in another "
                "process — a worker of an earlier Daemonflow version? Stop it: its memories are copied "
                f"into the new embedded engine at the next start. Qdrant said: {error}"
            ) from None


def _vector_facts(client: QdrantClient, source: Path, collection: str) -> tuple[int, str | None]:
    config = client.get_collection(collection).config
    vectors = config.params.vectors
    if not isinstance(vectors, qm.VectorParams):
        raise MemoryStoreError(
            f"collection {collection!r} in {source} has named vectors: it was not made by Daemonflow and "
            "cannot be copied; move that folder away or set DAEMONFLOW_MEMORY_COLLECTION to another name"
        )
    return vectors.size, (config.metadata or {}).get("embed_model")


def _pages(client: QdrantClient, collection: str) -> Iterator[list[LocalPoint]]:
    offset: Any = None
    while True:
        points, offset = client.scroll(
            collection, limit=PAGE, offset=offset, with_payload=True, with_vectors=True
        )
        if points:
            yield [LocalPoint(p.id, [float(x) for x in p.vector], dict(p.payload or {})) for p in points]  # type: ignore[union-attr]
        if offset is None:
            return
