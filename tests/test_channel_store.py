"""Channel messages and run-time relevance settings in the records store, on real SQLite and real
PostgreSQL (each test runs on both)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from models.channel import AuthorKind, transcript_id
from models.relevance import Thresholds
from store.channels import ChannelStore, StoredChannelMessage
from store.engine import make_engine
from store.relevance_settings import RelevanceSettingsStore
from store.transcript import TranscriptStore

AT = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)


def _message(seq: int, author: str = "alice", kind: AuthorKind = AuthorKind.PERSON, content: str = "hi",
             **fields) -> StoredChannelMessage:  # fmt: skip
    return StoredChannelMessage(channel_id="ops", seq=seq, author=author, kind=kind, content=content,
                                created_at=AT, **fields)  # fmt: skip


def test_a_channel_message_is_a_transcript_body_and_a_row_of_who_wrote_it(database_url: str) -> None:
    engine = make_engine(database_url)
    channels = ChannelStore(engine)
    assert channels.open_channel("ops", "Ops", "release", "u1", ["developer"], ["alice"]) == 1
    channels.append(_message(1, content="the build is red @developer", mentions=["developer"]))
    channels.append(_message(2, "developer", AuthorKind.AGENT, "fixed it", answers=1, reply_to="alice",
                             source_conversation="ops--developer", source_seq=2))  # fmt: skip
    body = TranscriptStore(engine).get(transcript_id("ops"), 2)
    assert body is not None and (body.role, body.content) == ("assistant", "fixed it")
    first, second = channels.between("ops", 0)
    assert (first.author, first.kind, first.mentions, first.content) == (
        "alice", AuthorKind.PERSON, ["developer"], "the build is red @developer")
    assert (second.answers, second.reply_to, second.source_conversation, second.created_at) == (1, "alice", "ops--developer", AT)
    assert channels.next_seq("ops") == 3
    assert channels.open_channel("ops", "Ops", "release", "u1", ["developer"], ["alice", "bob"]) == 3
    assert channels.get_channel("ops").people == ["alice", "bob"]


def test_writing_a_seq_again_keeps_the_first_write(database_url: str) -> None:
    channels = ChannelStore(make_engine(database_url))
    channels.append(_message(1, content="first"))
    again = channels.append(_message(1, content="a retried attempt with other words"))
    assert again.content == "first"
    assert [m.content for m in channels.between("ops", 0)] == ["first"]


def test_concurrent_writes_of_one_seq_leave_one_message(database_url: str) -> None:
    channels = ChannelStore(make_engine(database_url))
    barrier = threading.Barrier(4)
    results = []

    def write(n: int) -> None:
        barrier.wait()
        results.append(channels.append(_message(1, content=f"writer {n}")).content)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [stored] = channels.between("ops", 0)
    assert set(results) == {stored.content}


def test_latest_returns_the_last_messages_of_a_range_oldest_first(database_url: str) -> None:
    channels = ChannelStore(make_engine(database_url))
    for seq in range(1, 8):
        channels.append(_message(seq, content=f"m{seq}"))
    assert [m.seq for m in channels.latest("ops", after=1, upto=6, limit=3)] == [4, 5, 6]
    assert [m.seq for m in channels.between("ops", after=5)] == [6, 7]
    assert channels.get("ops", 9) is None


def test_closing_a_channel_keeps_the_first_reason(database_url: str) -> None:
    channels = ChannelStore(make_engine(database_url))
    channels.open_channel("ops", "", "", None, ["developer"], [])
    channels.close_channel("ops", "done")
    channels.close_channel("ops", "again")
    row = channels.get_channel("ops")
    assert row.end_reason == "done" and row.ended_at is not None


def test_thresholds_set_at_run_time_are_read_back_by_every_process(database_url: str) -> None:
    writer, reader = RelevanceSettingsStore(make_engine(database_url)), RelevanceSettingsStore(make_engine(database_url))
    assert reader.thresholds() is None
    writer.set_thresholds(Thresholds(observe=0.1, intervene=0.6, high_priority=0.9), "admin-key", AT)
    writer.set_thresholds(Thresholds(observe=0.1, intervene=0.65, high_priority=0.9), "ops", AT)
    thresholds, by, at = reader.thresholds()
    assert (thresholds.intervene, by, at) == (0.65, "ops", AT)
