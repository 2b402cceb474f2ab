"""Building the SQLAlchemy engine for the records store, for SQLite or PostgreSQL.

Several processes open the same database at once (the worker, the CLI, the API), so the SQLite
engine runs in WAL mode with a busy timeout: readers never block the writer, and a writer waits
for another writer instead of failing at once. Creating the schema is idempotent, so every entry
point simply calls ``make_engine`` at start-up.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from store import (  # noqa: F401  (register their tables on SQLModel.metadata)
    agent_hints,
    agent_pauses,
    analytics_snapshots,
    archives,
    cache,
    channels,
    monitoring,
    private_messages,
    relevance,
    relevance_settings,
    tables,
    task_runs,
)

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another process's write to finish before giving up."""

_POSTGRES_ALIASES = {"postgres", "postgresql"}


def normalize_database_url(url: str | URL) -> URL:
    """Parse ``url``; plain ``postgresql://`` (or ``postgres://``) URLs get the psycopg 3 driver.

    SQLAlchemy would otherwise pick psycopg2, which is not installed.
    """
    parsed = make_url(url)
    if parsed.drivername in _POSTGRES_ALIASES:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL) -> Engine:
    """An engine for ``url`` with the store's tables created; idempotent, call it at every start."""
    parsed = normalize_database_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(parsed)
    elif backend == "postgresql":
        engine = create_engine(parsed, pool_pre_ping=True)
        _create_vector_extension(engine)
    else:
        raise ValueError(f"unsupported database backend {backend!r}; use sqlite or postgresql")
    _create_tables(engine)
    return engine


def _sqlite_engine(url: URL) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if in_memory:
        # Every new connection to ":memory:" would be a different, empty database.
        kwargs["poolclass"] = StaticPool
    else:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _connection_record: Any) -> None:
    """Per-connection SQLite settings (PRAGMAs are not stored in the file, except journal_mode)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # WAL makes NORMAL durable against application crashes; only power loss can lose the tail.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _create_vector_extension(engine: Engine) -> None:
    """Enable pgvector for the memory feature; the transcript store works without it."""
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    except SQLAlchemyError as error:
        logger.warning("could not enable the pgvector extension (memory needs it): %s", error)


CREATE_ATTEMPTS = 10


def _create_tables(engine: Engine) -> None:
    """``create_all``, retried while another process creates the same tables: two workers starting
    on a fresh database race table by table (``table … already exists`` on any of the ~30), so one
    retry is not enough; each retry skips what exists by then."""
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            SQLModel.metadata.create_all(engine)
            break
        except DBAPIError:
            if attempt == CREATE_ATTEMPTS:
                raise
            logger.info("creating tables raced with another process; checking again", exc_info=True)
            time.sleep(0.1 * attempt)
    _add_missing_columns(engine)


def _add_missing_columns(engine: Engine) -> None:
    """Columns added to an existing table in a later version (always nullable) are added to a
    database created before, so upgrading keeps every row; nothing is ever dropped or changed."""
    existing = inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        if not existing.has_table(table.name):
            continue
        present = {column["name"] for column in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name in present or not column.nullable:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            try:
                with engine.begin() as connection:
                    connection.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
                logger.info("added column %s.%s", table.name, column.name)
            except DBAPIError:  # another process added it first
                logger.info("column %s.%s already added", table.name, column.name, exc_info=True)
