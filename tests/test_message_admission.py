"""The private messages' store rules on SQLite and PostgreSQL: the accept rule's workload step is
atomic — messages decided at the same moment never take more than the recipient's ``max_open``
places between them (``PrivateMessageStore.admit``, real concurrent connections) — and
``relationship_trust`` counts what the recipient decided, not the hop budget."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from models.private_messages import MessageState, MessageStatus
from store.engine import make_engine
from store.private_messages import PrivateMessageStore

SENDERS = 8
MAX_OPEN = 3


def test_messages_admitted_at_once_never_exceed_the_recipients_limit(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        store = PrivateMessageStore(engine)
        submitted = [MessageStatus(message_id=f"m{i}", sender=f"s{i}", recipient="developer") for i in range(SENDERS)]
        for status in submitted:
            store.record(status)
        store.record(MessageStatus(message_id="other", sender="s0", recipient="analyst", state=MessageState.WORKING))
        start = threading.Barrier(SENDERS)

        def admit(status: MessageStatus) -> int | None:
            start.wait(timeout=30)
            return store.admit(status.model_copy(update={"state": MessageState.ACCEPTED}), MAX_OPEN)

        with ThreadPoolExecutor(SENDERS) as pool:
            results = list(pool.map(admit, submitted))

        assert sum(result is None for result in results) == MAX_OPEN, results
        assert [result for result in results if result is not None] == [MAX_OPEN] * (SENDERS - MAX_OPEN)
        assert store.open_for("developer", exclude_message_id="") == MAX_OPEN
        refused = [s.message_id for s, result in zip(submitted, results) if result is not None]
        assert all(store.get(message_id).state == MessageState.SUBMITTED for message_id in refused)  # untouched

        admitted = next(s for s, result in zip(submitted, results) if result is None)
        retried = store.admit(admitted.model_copy(update={"state": MessageState.ACCEPTED}), MAX_OPEN)
        assert retried is None and store.open_for("developer", exclude_message_id="") == MAX_OPEN  # no second place
        assert store.admit(submitted[0].model_copy(update={"recipient": "analyst", "message_id": "x",
                                                           "state": MessageState.ACCEPTED}), 1) == 1  # fmt: skip
    finally:
        engine.dispose()


def test_trust_leaves_out_refusals_by_the_hop_budget(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        store = PrivateMessageStore(engine)
        for n, (state, rule) in enumerate([(MessageState.COMPLETED, "model"), (MessageState.REFUSED, "model"),
                                           (MessageState.REFUSED, "hops"), (MessageState.REFUSED, "hops")]):  # fmt: skip
            store.record(MessageStatus(message_id=f"t{n}", sender="alice", recipient="developer", state=state,
                                       decided_by=rule))  # fmt: skip
        assert store.trust("alice", ["developer"]) == {"developer": 0.5}  # (1 + 1) / (2 + 2): the model's refusal only
        [pair] = store.collaboration().pairs
        assert (pair.sent, pair.refused, pair.completed, pair.trust) == (4, 3, 1, 0.5)
    finally:
        engine.dispose()
