"""The embedded memory store shared by the processes of one worker (``daemonflow worker --processes N``).

Qdrant Edge admits one process per shard (``edge_backend.py`` takes a file lock), and the turn's
model step, which recalls, runs in whichever process holds the conversation's workflow task. So
the worker's first process opens the store as before and serves it (:class:`StoreShare`) on a
Unix socket in a private temporary folder, through ``multiprocessing.managers``: each call is
pickled, and a connection is accepted only from a peer that proves it knows the worker's key
(HMAC challenge). The key reaches the other processes on their stdin, never in an environment
or a command line. They use :class:`SharedMemoryStore`, the same ``MemoryStore`` interface, one
round trip per call; the owner runs the call on its store as if it were its own.

When the owner is gone its children stop with it (``workers/worker_group.py``); until then a call
that cannot reach it fails as a store error: a recall leaves the turn without memories, a memory
activity is retried by Temporal.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import pickle
import shutil
import socket
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import Any

from activities.memory.store import MemoryStore, MemoryStoreError
from models.memory import MemoryKind, MemoryQuery, MemoryRecord, MemoryScope

log = logging.getLogger(__name__)

OPERATIONS = frozenset({"ensure", "add", "update", "touch", "search", "search_with_vectors", "vectors",
                        "get_many", "list", "delete", "count"})  # fmt: skip


@dataclass(frozen=True)
class ShareAddress:
    """Where the owner serves its store, and the key to prove; sent to the other processes."""

    socket: str
    key: bytes
    collection: str


class _Facade:
    """On the owner, called from the manager's connection threads: runs the store's coroutine on the
    owner's event loop and answers with the result and the collection's dimension now."""

    def __init__(self, store: MemoryStore, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop

    def call(self, name: str, args: tuple, kwargs: dict) -> tuple[Any, int | None]:
        if name not in OPERATIONS:
            raise MemoryStoreError(f"not a memory store operation: {name!r}")
        try:
            done = asyncio.run_coroutine_threadsafe(getattr(self._store, name)(*args, **kwargs), self._loop)
            return done.result(), self._store.dimension
        except Exception as err:
            raise _portable(err) from None


def _portable(err: Exception) -> Exception:
    """The error as it can cross to the caller: itself if it pickles, else a store error saying it."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:  # noqa: BLE001 - any pickling failure means the same: send its text
        return MemoryStoreError(f"{type(err).__name__}: {err}")


def _manager(facade: _Facade | None = None) -> type[BaseManager]:
    class Manager(BaseManager):
        pass

    Manager.register("memory", callable=(lambda: facade) if facade is not None else None)
    return Manager


class StoreShare:
    """Serves ``store`` to the worker's other processes while entered (on the owner's event loop).

    Its own accept loop rather than ``Server.serve_forever``: that one's never ends (it retries any
    ``OSError``, so closing its socket makes it spin) and its thread exits through ``sys.exit``."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._folder: Path | None = None
        self._server: Any = None
        self._stopping = threading.Event()
        self.address: ShareAddress | None = None

    async def __aenter__(self) -> StoreShare:
        self._folder = Path(tempfile.mkdtemp(prefix="daemonflow-memory-"))  # 0700: only this user
        socket_path, key = str(self._folder / "store.sock"), os.urandom(32)
        facade = _Facade(self._store, asyncio.get_running_loop())
        self._server = _manager(facade)(address=socket_path, authkey=key).get_server()
        self._server.stop_event = self._stopping  # what its connections' loops check (``serve_forever`` sets one)
        threading.Thread(target=self._accept, name="memory-share", daemon=True).start()
        self.address = ShareAddress(socket_path, key, self._store.collection)
        return self

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection = self._server.listener.accept()  # the key's challenge runs in handle_request
            except OSError:  # the socket closed
                continue
            if self._stopping.is_set():
                connection.close()
                return
            threading.Thread(target=self._server.handle_request, args=(connection,), daemon=True).start()

    async def __aexit__(self, *exc: object) -> None:
        """No new connection once this returns; calls already connected may still end."""
        if self._server is None or self.address is None:
            return
        self._stopping.set()
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as waking:  # out of accept()
            waking.connect(self.address.socket)
        self._server.listener.close()  # and its socket file
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


class SharedMemoryStore(MemoryStore):
    """The owner's store, reached through its share: every call one round trip on a thread."""

    backend = "qdrant-edge (through the worker's first process)"

    def __init__(self, address: ShareAddress) -> None:
        self.collection = address.collection
        self._address = address
        self._dimension: int | None = None
        self._remote: Any = None
        self._connecting = threading.Lock()

    @property
    def dimension(self) -> int | None:
        return self._dimension

    def _proxy(self) -> Any:
        with self._connecting:
            if self._remote is None:
                manager = _manager()(address=self._address.socket, authkey=self._address.key)
                manager.connect()
                self._remote = manager.memory()  # type: ignore[attr-defined] - registered above
            return self._remote

    def _call_now(self, name: str, args: tuple, kwargs: dict) -> Any:
        try:
            result, self._dimension = self._proxy().call(name, args, kwargs)
        except (OSError, EOFError) as err:
            raise MemoryStoreError(f"the worker's memory store (its first process) is not reachable: {err}") from None
        return result

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self._call_now, name, args, kwargs)

    async def ensure(self, dimension: int, model: str | None = None) -> None:
        if self._dimension == dimension:
            return  # known: the owner checked it (a store of another dimension refuses the vectors anyway)
        await self._call("ensure", dimension, model)

    async def add(self, records: Sequence[MemoryRecord], vectors: Sequence[Sequence[float]]) -> None:
        await self._call("add", list(records), [list(v) for v in vectors])

    async def update(self, record_id: str, *, text: str | None = None, vector: Sequence[float] | None = None,
                     importance: float | None = None, last_used_at: datetime | None = None) -> MemoryRecord | None:  # fmt: skip
        return await self._call("update", record_id, text=text, vector=list(vector) if vector is not None else None,
                                importance=importance, last_used_at=last_used_at)  # fmt: skip

    async def touch(self, record_ids: Sequence[str], at: datetime) -> None:
        await self._call("touch", list(record_ids), at)

    async def search(self, query_vector: Sequence[float], query: MemoryQuery, limit: int
                     ) -> builtins.list[tuple[MemoryRecord, float]]:  # fmt: skip
        return await self._call("search", list(query_vector), query, limit)

    async def search_with_vectors(self, query_vector: Sequence[float], query: MemoryQuery, limit: int
                                  ) -> tuple[builtins.list[tuple[MemoryRecord, float]], dict[str, builtins.list[float]] | None]:  # fmt: skip
        return await self._call("search_with_vectors", list(query_vector), query, limit)

    async def vectors(self, record_ids: Sequence[str]) -> dict[str, builtins.list[float]]:
        return await self._call("vectors", list(record_ids))

    async def get_many(self, record_ids: Sequence[str]) -> builtins.list[MemoryRecord]:
        return await self._call("get_many", list(record_ids))

    async def list(self, scope: MemoryScope | None = None, scope_id: str | None = None, kind: MemoryKind | None = None,
                   limit: int = 50, offset: int = 0, include_expired: bool = True) -> builtins.list[MemoryRecord]:  # fmt: skip
        return await self._call("list", scope, scope_id, kind, limit, offset, include_expired)

    async def delete(self, record_ids: Sequence[str]) -> int:
        return await self._call("delete", list(record_ids))

    async def count(self, scope: MemoryScope | None = None, scope_id: str | None = None,
                    kind: MemoryKind | None = None) -> int:  # fmt: skip
        return await self._call("count", scope, scope_id, kind)

    async def close(self) -> None:
        """The owner's store stays open; this process only drops its connections."""
        self._remote = None
