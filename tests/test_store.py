"""The records store against real SQLite and real PostgreSQL (each test runs on both)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, make_url, select, text
from sqlmodel import Session

from store import Message, TranscriptStore, make_engine, normalize_database_url

CONVERSATION = "c-1"


def _open(store: TranscriptStore, conversation_id: str = CONVERSATION) -> int:
    return store.open_conversation(conversation_id, agent="assistant", model="llama3.2")


def _fill(store: TranscriptStore, contents: list[str], conversation_id: str = CONVERSATION) -> None:
    for seq, content in enumerate(contents, start=1):
        role = "user" if seq % 2 else "assistant"
        store.append(conversation_id, seq, role, content)


def _count_rows(store: TranscriptStore, model: type, conversation_id: str = CONVERSATION) -> int:
    with Session(store.engine) as session:
        return session.execute(
            select(func.count()).select_from(model).where(model.conversation_id == conversation_id)
        ).scalar_one()


# --- conversations ----------------------------------------------------------------------------


def test_open_new_conversation_starts_at_seq_1(transcript_store: TranscriptStore) -> None:
    assert _open(transcript_store) == 1
    conversation = transcript_store.get_conversation(CONVERSATION)
    assert conversation is not None
    assert (conversation.agent, conversation.model, conversation.ended_at) == (
        "assistant",
        "llama3.2",
        None,
    )


def test_open_after_appends_returns_next_free_seq(transcript_store: TranscriptStore) -> None:
    _open(transcript_store)
    _fill(transcript_store, ["a", "b", "c"])
    assert _open(transcript_store) == 4
    assert transcript_store.next_seq("unknown") == 1


def test_reopen_keeps_created_at_and_updates_agent_and_model(
    transcript_store: TranscriptStore,
) -> None:
    transcript_store.open_conversation(CONVERSATION, "assistant", "llama3.2", user_id="u-1")
    first = transcript_store.get_conversation(CONVERSATION)
    transcript_store.open_conversation(CONVERSATION, "coder", "qwen2.5")
    second = transcript_store.get_conversation(CONVERSATION)
    assert first is not None and second is not None
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at
    assert (second.agent, second.model, second.user_id) == ("coder", "qwen2.5", "u-1")


def test_end_conversation_first_end_wins(transcript_store: TranscriptStore) -> None:
    _open(transcript_store)
    transcript_store.end_conversation(CONVERSATION, "user ended")
    ended = transcript_store.get_conversation(CONVERSATION)
    transcript_store.end_conversation(CONVERSATION, "again")
    again = transcript_store.get_conversation(CONVERSATION)
    assert ended is not None and again is not None
    assert ended.end_reason == again.end_reason == "user ended"
    assert again.ended_at == ended.ended_at
    transcript_store.end_conversation("unknown", "nothing to end")  # no error, no row
    assert transcript_store.get_conversation("unknown") is None


# --- append -----------------------------------------------------------------------------------


def test_append_is_idempotent_and_keeps_first_content(transcript_store: TranscriptStore) -> None:
    _open(transcript_store)
    first = transcript_store.append(CONVERSATION, 1, "user", "first")
    again = transcript_store.append(CONVERSATION, 1, "assistant", "second", prompt_tokens=9)
    assert again.id == first.id
    assert (again.role, again.content, again.prompt_tokens) == ("user", "first", None)
    assert _count_rows(transcript_store, Message) == 1
    stored = transcript_store.get(CONVERSATION, 1)
    assert stored is not None and stored.content == "first"


def test_append_bumps_conversation_updated_at(transcript_store: TranscriptStore) -> None:
    _open(transcript_store)
    before = transcript_store.get_conversation(CONVERSATION)
    message = transcript_store.append(CONVERSATION, 1, "user", "hi")
    after = transcript_store.get_conversation(CONVERSATION)
    assert before is not None and after is not None
    assert after.updated_at == message.created_at >= before.updated_at


def test_concurrent_appends_of_one_seq_make_one_row(database_url: str) -> None:
    """Two engines stand in for two processes (worker and a retried activity elsewhere)."""
    engines = [make_engine(database_url), make_engine(database_url)]
    try:
        stores = [TranscriptStore(engine) for engine in engines]
        _open(stores[0])
        for seq in range(1, 6):
            barrier = threading.Barrier(len(stores))
            results: dict[int, Message] = {}
            errors: list[BaseException] = []

            def write(index: int, seq: int = seq, barrier: threading.Barrier = barrier) -> None:
                try:
                    barrier.wait()
                    results[index] = stores[index].append(
                        CONVERSATION, seq, "user", f"writer {index}"
                    )
                except BaseException as error:  # noqa: BLE001 - reported below
                    errors.append(error)

            threads = [threading.Thread(target=write, args=(i,)) for i in range(len(stores))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert errors == []
            assert results[0].id == results[1].id
            assert results[0].content == results[1].content
        assert _count_rows(stores[0], Message) == 5
    finally:
        for engine in engines:
            engine.dispose()


def test_append_rejects_unknown_role_and_bad_seq(transcript_store: TranscriptStore) -> None:
    with pytest.raises(ValueError):
        transcript_store.append(CONVERSATION, 1, "robot", "x")
    with pytest.raises(ValueError):
        transcript_store.append(CONVERSATION, 0, "user", "x")


def test_tool_calls_round_trip_as_json(transcript_store: TranscriptStore) -> None:
    calls = [
        {"id": "call-1", "function": {"name": "shell", "arguments": {"cmd": "ls -la", "n": 3}}},
        {"id": "call-2", "function": {"name": "read", "arguments": {"path": "ü/ñ.txt"}}},
    ]
    transcript_store.append(CONVERSATION, 1, "assistant", "", tool_calls=calls)
    transcript_store.append(CONVERSATION, 2, "tool", "output", tool_call_id="call-1")
    transcript_store.append(CONVERSATION, 3, "assistant", "done")
    assert transcript_store.get(CONVERSATION, 1).tool_calls == calls  # type: ignore[union-attr]
    tool = transcript_store.get(CONVERSATION, 2)
    assert tool is not None and tool.tool_call_id == "call-1" and tool.tool_calls is None
    with Session(transcript_store.engine) as session:  # None is SQL NULL, not JSON 'null'
        nulls = session.execute(
            text("SELECT count(*) FROM messages WHERE tool_calls IS NULL")
        ).scalar_one()
    assert nulls == 2


def test_large_content_round_trips(transcript_store: TranscriptStore) -> None:
    content = "x" * 2_000_000
    transcript_store.append(CONVERSATION, 1, "user", content)
    stored = transcript_store.get(CONVERSATION, 1)
    assert stored is not None and stored.content == content


# --- datetimes --------------------------------------------------------------------------------


def _is_utc(value: datetime | None) -> bool:
    return value is not None and value.tzinfo is not None and value.utcoffset() == timedelta(0)


def test_datetimes_read_back_timezone_aware_utc(transcript_store: TranscriptStore) -> None:
    _open(transcript_store)
    transcript_store.append(CONVERSATION, 1, "user", "hi")
    transcript_store.record_usage(CONVERSATION, 1, 1, "llama3.2", 1, 2, 3.0, 0.5, 1.0, 1.5)
    transcript_store.end_conversation(CONVERSATION, "done")
    conversation = transcript_store.get_conversation(CONVERSATION)
    [message] = transcript_store.list_messages(CONVERSATION)
    [usage] = transcript_store.usage(CONVERSATION)
    assert conversation is not None
    for value in (
        conversation.created_at,
        conversation.updated_at,
        conversation.ended_at,
        message.created_at,
        usage.created_at,
    ):
        assert _is_utc(value), value
    assert abs(datetime.now(UTC) - message.created_at) < timedelta(minutes=1)


def test_non_utc_datetimes_are_stored_as_the_same_instant(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        local = datetime(2024, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
        with Session(engine) as session:
            session.add(
                Message(conversation_id="c", seq=1, role="user", content="", created_at=local)
            )
            session.commit()
        [message] = TranscriptStore(engine).list_messages("c")
        assert message.created_at == local
        assert message.created_at.tzinfo == UTC and message.created_at.hour == 10
    finally:
        engine.dispose()


# --- reading ----------------------------------------------------------------------------------


def test_list_messages_paginates_in_seq_order(transcript_store: TranscriptStore) -> None:
    _fill(transcript_store, [f"m{i}" for i in range(1, 8)])
    _fill(transcript_store, ["other"], conversation_id="c-2")
    pages: list[list[int]] = []
    after = 0
    while page := transcript_store.list_messages(CONVERSATION, after_seq=after, limit=3):
        pages.append([m.seq for m in page])
        after = page[-1].seq
    assert pages == [[1, 2, 3], [4, 5, 6], [7]]
    assert transcript_store.list_messages("nobody") == []


def test_window_takes_latest_messages_within_budget_oldest_first(
    transcript_store: TranscriptStore,
) -> None:
    _fill(transcript_store, ["a" * 10, "b" * 10, "c" * 10, "d" * 10])
    window = transcript_store.window(CONVERSATION, budget_chars=25)
    assert [m.seq for m in window] == [3, 4]
    assert [m.seq for m in transcript_store.window(CONVERSATION, budget_chars=40)] == [1, 2, 3, 4]
    assert [m.seq for m in transcript_store.window(CONVERSATION, budget_chars=1000)] == [1, 2, 3, 4]


def test_window_stops_at_first_message_that_does_not_fit(transcript_store: TranscriptStore) -> None:
    _fill(transcript_store, ["a", "b" * 100, "c", "d"])
    assert [m.seq for m in transcript_store.window(CONVERSATION, budget_chars=50)] == [3, 4]


def test_window_always_includes_latest_cut_to_the_budget(transcript_store: TranscriptStore) -> None:
    _fill(transcript_store, ["small", "x" * 10_000])
    window = transcript_store.window(CONVERSATION, budget_chars=300)
    assert [m.seq for m in window] == [1, 2]
    assert window[0].content == "small"
    assert len(window[1].content) == 295 and "characters of this message are left out" in window[1].content
    assert window[1].content.startswith("x") and window[1].content.endswith("x")
    assert transcript_store.get(CONVERSATION, 2).content == "x" * 10_000  # the store keeps it whole


def test_window_respects_upto_seq(transcript_store: TranscriptStore) -> None:
    _fill(transcript_store, ["a" * 10, "b" * 10, "c" * 10, "d" * 10, "e" * 10])
    window = transcript_store.window(CONVERSATION, budget_chars=20, upto_seq=3)
    assert [m.seq for m in window] == [2, 3]
    assert [m.seq for m in transcript_store.window(CONVERSATION, 1000, upto_seq=2)] == [1, 2]
    assert transcript_store.window(CONVERSATION, 1000, upto_seq=0) == []
    assert transcript_store.window("nobody", 1000) == []


def test_window_spans_several_pages(
    transcript_store: TranscriptStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("store.transcript.WINDOW_PAGE_SIZE", 3)
    _fill(transcript_store, ["x" * 10] * 20)
    assert [m.seq for m in transcript_store.window(CONVERSATION, 75)] == list(range(14, 21))
    assert [m.seq for m in transcript_store.window(CONVERSATION, 10_000)] == list(range(1, 21))
    assert [m.seq for m in transcript_store.window(CONVERSATION, 60, upto_seq=12)] == list(
        range(7, 13)
    )


# --- usage ------------------------------------------------------------------------------------


def test_record_usage_is_idempotent(transcript_store: TranscriptStore) -> None:
    transcript_store.record_usage(CONVERSATION, 2, 1, "llama3.2", 10, 20, 300.0, 5.0, 100.0, 195.0)
    transcript_store.record_usage(CONVERSATION, 2, 1, "other", 99, 99, 1.0, 1.0, 1.0, 1.0)
    transcript_store.record_usage(CONVERSATION, 4, 2, "llama3.2", None, 7, 50.0, None, None, 45.0)
    transcript_store.record_usage("c-2", 2, 1, "llama3.2", 1, 1, 1.0, 1.0, 1.0, 1.0)
    rows = transcript_store.usage(CONVERSATION)
    assert [(u.seq, u.turn, u.model, u.prompt_tokens, u.completion_tokens) for u in rows] == [
        (2, 1, "llama3.2", 10, 20),
        (4, 2, "llama3.2", None, 7),
    ]
    assert rows[0].total_duration_ms == 300.0 and rows[0].eval_duration_ms == 195.0
    assert [(u.conversation_id, u.seq) for u in transcript_store.usage()] == [
        (CONVERSATION, 2),
        (CONVERSATION, 4),
        ("c-2", 2),
    ]


# --- engine -----------------------------------------------------------------------------------


def test_make_engine_twice_on_one_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "daemonflow.db"
    first = make_engine(f"sqlite:///{path}")
    try:
        TranscriptStore(first).append(CONVERSATION, 1, "user", "kept")
        second = make_engine(f"sqlite:///{path}")
        try:
            stored = TranscriptStore(second).get(CONVERSATION, 1)
            assert stored is not None and stored.content == "kept"
            with second.connect() as connection:
                assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
                assert connection.execute(text("PRAGMA busy_timeout")).scalar() > 0
        finally:
            second.dispose()
    finally:
        first.dispose()


def test_make_engine_twice_on_one_database(database_url: str) -> None:
    for _ in range(2):
        engine = make_engine(database_url)
        try:
            TranscriptStore(engine).append(CONVERSATION, 1, "user", "once")
        finally:
            engine.dispose()


def test_in_memory_sqlite_shares_one_database() -> None:
    engine = make_engine("sqlite://")
    try:
        store = TranscriptStore(engine)
        store.append(CONVERSATION, 1, "user", "hi")
        assert store.get(CONVERSATION, 1) is not None
    finally:
        engine.dispose()


def test_plain_postgresql_url_is_accepted(fresh_postgres_url: str) -> None:
    plain = make_url(fresh_postgres_url).set(drivername="postgresql")
    assert normalize_database_url(plain.render_as_string(hide_password=False)).drivername == (
        "postgresql+psycopg"
    )
    engine = make_engine(plain.render_as_string(hide_password=False))
    try:
        assert engine.dialect.driver == "psycopg"
        store = TranscriptStore(engine)
        assert _open(store) == 1
        with engine.connect() as connection:
            extensions = connection.execute(text("SELECT extname FROM pg_extension")).scalars()
            assert "vector" in set(extensions)
    finally:
        engine.dispose()


def test_unsupported_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        make_engine("mysql://user@localhost/db")


def _open_store(url: str) -> None:
    make_engine(url).dispose()


def test_processes_starting_together_on_a_fresh_sqlite_file_all_create_the_tables(tmp_path):
    """Two workers started at once (split queues) used to crash one of them: ``table … already
    exists`` while the other was creating them."""
    import multiprocessing

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_open_store, args=(url,)) for _ in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0] * 6
