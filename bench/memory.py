"""How fast is each memory store: insert throughput, search and recall latency, top-5 hit rate
and reopen time at 1k, 10k and 100k memories.

Run ``python -m bench.memory [--quick]`` from the repository root. The stores, each in one run:

- **qdrant-edge**: the embedded default (Qdrant Edge in a temp folder);
- **pgvector**: PostgreSQL + pgvector (a pgserver started by this script in a temp folder, or
  ``--postgres-url`` for an existing server);
- **qdrant-client local**: the embedded store of earlier versions (qdrant-client local mode), for
  comparison; it writes 60–900 points/s (fewer as it grows, and on a busy disk) and scans in
  Python, so it stops at ``--legacy-max`` (10k; 1k with ``--quick``) unless told otherwise.

One store per backend is filled step by step to each size, and at each size:

- **insert/s**: memories per second written by ``MemoryStore.add`` (batches of 1000) while growing
  from the previous size to this one (0 → 1k, 1k → 10k, 10k → 100k);
- **search p50/p95**: one ``MemoryStore.search`` (``limit`` = 3·k = 15 candidates, filtered by
  the scopes a turn sees: the agent's and one user's, and by expiry);
- **recall p50/p95**: one ``MemoryService.recall`` (k = 5) — the search plus fetching the
  candidates' vectors, ranking, de-duplication and marking the results used — as the recall
  activity will run it, minus the embedding call;
- **top-5 hit**: of the queries whose target (the stored vector the query was made from) is
  visible to the query's scopes, how many found it in the search's first five (an approximate
  index may miss it; an exact search never does);
- **reopen**: closing the store and answering one ``count`` from a new open (a worker restart:
  the embedded stores load from disk).

Vectors are precomputed (random unit vectors, 384 dimensions as all-minilm's), so no model is
measured; queries are stored vectors with noise added, so each has real neighbours. The data:
half the memories in the agent scope ``assistant``, half spread over 100 users; kinds and
importance random; ages up to 90 days; so one recall's filter admits about half the collection.

``--quick`` stops at 10k; ``--sizes`` picks others; ``--insert-budget-s S`` stops growing a store
after S seconds per size and measures what is there (the row says so), for machines where 100k
inserts would take too long. Figures move with the machine's load (``/proc/loadavg`` is printed
before and after); compare runs made on the same machine. This prints figures; it never judges them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, make_url, text

from activities.memory import MemoryService
from activities.memory.edge_backend import EdgeMemoryStore
from activities.memory.pgvector_backend import PgvectorMemoryStore
from activities.memory.qdrant_backend import QdrantMemoryStore
from activities.memory.store import MemoryStore
from models.memory import MemoryKind, MemoryQuery, MemoryRecord, MemoryScope, visible_scopes

DIM = 384
USERS = 100
INSERT_BATCH = 1000
K = 5
SIZES = {"full": [1_000, 10_000, 100_000], "quick": [1_000, 10_000]}
BACKENDS = ("qdrant-edge", "pgvector", "qdrant-local")


class PrecomputedEmbedder:
    """Stands in for :class:`activities.memory.embeddings.Embedder`: hands out prepared vectors."""

    model = "precomputed-384"

    def __init__(self) -> None:
        self.next: list[float] = []

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.next for _ in texts]

    async def embed_one(self, text: str) -> list[float]:
        return self.next

    async def dimension(self) -> int:
        return DIM

    async def close(self) -> None:
        pass


@dataclass
class Row:
    backend: str
    size: int
    insert_per_s: float
    search_ms: list[float] = field(default_factory=list)
    recall_ms: list[float] = field(default_factory=list)
    hits: str = ""
    reopen_ms: float = float("nan")
    note: str = ""


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def make_records(rng: random.Random, n: int, now: datetime) -> list[MemoryRecord]:
    kinds = list(MemoryKind)
    records = []
    for i in range(n):
        if rng.random() < 0.5:
            scope, scope_id = MemoryScope.AGENT, "assistant"
        else:
            scope, scope_id = MemoryScope.USER, f"user-{rng.randrange(USERS)}"
        when = now - timedelta(days=rng.uniform(0, 90))
        records.append(
            MemoryRecord(
                id=str(uuid.UUID(int=rng.getrandbits(128))),
                text=f"memory {i}: fact about topic {rng.randrange(10_000)}",
                scope=scope,
                scope_id=scope_id,
                kind=rng.choice(kinds),
                importance=round(rng.random(), 2),
                created_at=when,
                last_used_at=when,
                agent="assistant",
            )
        )
    return records


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def measure(
    backend: str,
    open_store: Callable[[], MemoryStore],
    sizes: list[int],
    queries: int,
    max_query_s: float,
    seed: int,
    insert_budget_s: float | None = None,
) -> list[Row]:
    rows: list[Row] = []
    now = datetime.now(UTC)
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    biggest = max(sizes)
    print(f"[{backend}] preparing {biggest} records and vectors", file=sys.stderr)
    records = make_records(rng, biggest, now)
    vectors = unit_vectors(nprng, biggest)
    store = open_store()
    embedder = PrecomputedEmbedder()
    service = MemoryService(store, embedder)  # type: ignore[arg-type]
    try:
        await store.ensure(DIM, embedder.model)
        stored = 0
        for size in sizes:
            print(f"[{backend}] inserting {stored} → {size}", file=sys.stderr)
            started = time.perf_counter()
            reached = stored
            for start in range(stored, size, INSERT_BATCH):
                end = min(start + INSERT_BATCH, size)
                await store.add(records[start:end], vectors[start:end].tolist())
                reached = end
                if insert_budget_s is not None and time.perf_counter() - started > insert_budget_s:
                    break
            elapsed = time.perf_counter() - started
            row = Row(backend, reached, (reached - stored) / elapsed)
            if reached < size:
                row.note = f"stopped at {reached:,} of {size:,} (insert budget)"
                print(f"[{backend}] {row.note}", file=sys.stderr)
            stored = size = reached

            print(f"[{backend}] querying at {size}", file=sys.stderr)
            await query(store, service, embedder, row, records, vectors, rng, nprng, queries, max_query_s)
            t0 = time.perf_counter()
            await store.close()
            await store.count()
            row.reopen_ms = (time.perf_counter() - t0) * 1000
            rows.append(row)
            if row.note:
                break
            print(
                f"[{backend}] {size}: {row.insert_per_s:,.0f} inserts/s, "
                f"search p50 {percentile(row.search_ms, 0.5):.1f} ms ({len(row.search_ms)} queries)",
                file=sys.stderr,
            )
    finally:
        await store.close()
    return rows


async def query(
    store: MemoryStore,
    service: MemoryService,
    embedder: PrecomputedEmbedder,
    row: Row,
    records: list[MemoryRecord],
    vectors: np.ndarray,
    rng: random.Random,
    nprng: np.random.Generator,
    queries: int,
    max_query_s: float,
) -> None:
    """Fill ``row``'s search and recall latencies and its top-5 hits over the first ``row.size`` records."""
    deadline = time.perf_counter() + max_query_s
    found = visible_total = 0
    for q in range(queries):
        target = rng.randrange(row.size)
        noisy = vectors[target] + nprng.standard_normal(DIM).astype(np.float32) * 0.05
        noisy /= np.linalg.norm(noisy)
        user = f"user-{rng.randrange(USERS)}"
        query = MemoryQuery(text="bench query", k=K, scopes=visible_scopes("assistant", user), min_similarity=-1.0)
        t0 = time.perf_counter()
        hits = await store.search(noisy.tolist(), query, limit=K * 3)
        row.search_ms.append((time.perf_counter() - t0) * 1000)
        if records[target].scope is MemoryScope.AGENT or records[target].scope_id == user:
            visible_total += 1
            found += any(r.id == records[target].id for r, _ in hits[:K])

        embedder.next = noisy.tolist()
        t0 = time.perf_counter()
        await service.recall(query)
        row.recall_ms.append((time.perf_counter() - t0) * 1000)
        if q >= 10 and time.perf_counter() > deadline:
            break
    row.hits = f"{found}/{visible_total}"


@contextmanager
def postgres(url: str | None) -> Iterator[tuple[str, str]]:
    """A fresh database on ``url``'s server, or on a pgserver started here; yields (url, versions)."""
    root: Path | None = None
    server = None
    if url is None:
        import pgserver  # noqa: PLC0415 - optional dev dependency

        root = Path(tempfile.mkdtemp(prefix="daemonflow-bench-pg-"))
        server = pgserver.get_server(root / "pgdata", cleanup_mode="stop")
        url = server.get_uri()
    admin_url = make_url(url).set(drivername="postgresql+psycopg")
    name = f"bench_memory_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
            pg_version = connection.execute(text("SHOW server_version")).scalar_one()
        database_url = admin_url.set(database=name).render_as_string(hide_password=False)
        probe = create_engine(database_url)
        with probe.begin() as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
            vector_version = connection.execute(
                text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            ).scalar_one()
        probe.dispose()
        yield database_url, f"PostgreSQL {pg_version}, pgvector {vector_version}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        if server is not None:
            server.cleanup()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def table(rows: list[Row]) -> str:
    header = ("backend", "memories", "insert/s", "search p50", "search p95", "recall p50", "recall p95", "queries",
              "top-5 hit", "reopen")
    lines = [header]
    for row in rows:
        lines.append((
            row.backend,
            f"{row.size:,}",
            f"{row.insert_per_s:,.0f}",
            f"{percentile(row.search_ms, 0.5):.1f} ms",
            f"{percentile(row.search_ms, 0.95):.1f} ms",
            f"{percentile(row.recall_ms, 0.5):.1f} ms",
            f"{percentile(row.recall_ms, 0.95):.1f} ms",
            str(len(row.search_ms)),
            row.hits,
            f"{row.reopen_ms:.0f} ms",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else f"{os.getloadavg()}"


async def main_async(args: argparse.Namespace) -> None:
    sizes = args.sizes or SIZES["quick" if args.quick else "full"]
    backends = args.backends.split(",")
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        raise SystemExit(f"unknown backends {sorted(unknown)}; choose among {', '.join(BACKENDS)}")
    print(f"# memory store benchmark — {'quick' if args.quick else 'full'}: sizes {sizes}, {DIM} dims, k={K}")
    print(
        f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"qdrant-edge-py {version('qdrant-edge-py')}, qdrant-client {version('qdrant-client')}, "
        f"pgvector (py) {version('pgvector')}"
    )
    print(f"# /proc/loadavg at start: {loadavg()}")
    rows: list[Row] = []
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="daemonflow-bench-memory-"))
    common = dict(queries=args.queries, max_query_s=args.max_query_s, seed=args.seed, insert_budget_s=args.insert_budget_s)
    try:
        if "qdrant-edge" in backends:
            print("# qdrant-edge: exact filtered search over payload indexes (see activities/memory/edge_backend.py)")
            rows += await measure("qdrant-edge", lambda: EdgeMemoryStore(workdir / "qdrant-edge"), sizes, **common)
        if "pgvector" in backends:
            with postgres(args.postgres_url) as (url, versions):
                print(f"# pgvector: {versions}, HNSW (m=16, ef_construction=64), cosine")
                rows += await measure("pgvector", lambda: PgvectorMemoryStore(url), sizes, **common)
        legacy_sizes = [size for size in sizes if size <= args.legacy_max]
        if "qdrant-local" in backends and legacy_sizes:
            rows += await measure(
                "qdrant-client local", lambda: QdrantMemoryStore(path=workdir / "qdrant-local"), legacy_sizes, **common
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(rows))
    for row in rows:
        if row.note:
            print(f"# {row.backend}: {row.note}")
    if "qdrant-local" in backends and legacy_sizes != sizes:
        print(f"# qdrant-client local: sizes above --legacy-max {args.legacy_max:,} skipped")
    print()
    print(f"# {time.perf_counter() - started:.0f} s in all; /proc/loadavg at the end: {loadavg()}")
    print(
        "# insert/s: while growing from the previous size; search: MemoryStore.search, 15 candidates; "
        "recall: MemoryService.recall (k=5) without the embedding call; top-5 hit: queries whose "
        "noisy target (when visible to the query's scopes) came back in the top 5 of the search; "
        "reopen: close, then one count from a new open."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k only")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], help="e.g. 1000,5000")
    parser.add_argument("--backends", default=",".join(BACKENDS), help=f"among {','.join(BACKENDS)} (default: all)")
    parser.add_argument("--legacy-max", type=int,
                        help="largest size for qdrant-client local (default 10000, --quick 1000: it writes 60-900 points/s)")
    parser.add_argument("--queries", type=int, default=100, help="queries per size (default 100)")
    parser.add_argument("--max-query-s", type=float, default=60.0,
                        help="stop querying a size after this long (at least 10 queries)")
    parser.add_argument("--insert-budget-s", type=float,
                        help="stop growing a store after this long per size and measure what is there")
    parser.add_argument("--postgres-url", help="admin URL of an existing PostgreSQL with pgvector")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    if args.legacy_max is None:
        args.legacy_max = 1_000 if args.quick else 10_000
    warnings.filterwarnings("ignore", message=".*Local mode is not recommended.*")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
