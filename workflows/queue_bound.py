"""How much a conversation (or a channel) takes in before it has answered: a bound on its waiting messages.

Why: the queue is part of the state a run hands to the next (``CarriedState.queue`` and
``.injected``), and Temporal refuses a continue-as-new whose input passes 2 MB. Before this bound,
25 injected messages of 99,000 characters (each under ``max_message_chars``) made every workflow
task of the run fail with ``PayloadsTooLarge`` at its continue-as-new: the conversation stopped for
good, its messages unanswered. Messages that wait with a caller kept a run from ending at all, so a
steady stream of callers grew its history until Temporal's limits ended it.

What: at most ``MAX_QUEUED_MESSAGES`` waiting messages and ``MAX_QUEUED_BYTES`` of their text as
JSON (a control character is six bytes there, so a hostile text cannot pass the bound by its
encoding). With ``recent`` (50 messages of at most 2,000 characters) and the rest of the state, a
run's handover stays well under 2 MB. ``send_message`` refuses beyond it with ``QueueFull`` (the
caller sends again once answers came), a requested turn is answered ``rejected``, an injected note
is dropped with an ``inject_refused`` event and a warning. Pure: it runs in validators and signals.

And a run kept past its end: while a caller waits the run answers on, so callers that never stop
(two clients in turn, say) kept one run for ever. Once a run has answered twice its
``turns_per_run``, or Temporal suggests continue-as-new, ``send_message`` refuses new messages with
``RunEnding`` until the queue drains and the run hands over; the typed client sends again, and the
next run takes the message (``control/conversation.py``). A rejected update leaves no trace in
history, and validators do not run on replay.

A channel's ``post`` takes the same two bounds (its posts per run for the turns): its waiting posts
all have callers, so they never cross a continue-as-new, but they held its run the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

MAX_QUEUED_MESSAGES = 100
MAX_QUEUED_BYTES = 512 * 1024
QUEUE_FULL = "QueueFull"
"""The ``ApplicationError`` type of a message refused by this bound (``control.QueueFull``)."""
RUN_ENDING = "RunEnding"
"""The type of a message refused because its run is ending: send it again, the next run takes it."""
OVERDUE_FACTOR = 2
QUEUE_PATCH = "queue-bound"
"""Signals refused by the bound; histories recorded before it queued them all."""


def text_bytes(text: str) -> int:
    """The size of ``text`` in the workflow's payloads (JSON, UTF-8)."""
    return len(json.dumps(text, ensure_ascii=False).encode())


def queue_refusal(waiting: Iterable[str], content: str, where: str = "conversation") -> str | None:
    """Why one more message of ``content`` cannot wait behind the ``waiting`` texts, or None."""
    texts = list(waiting)
    if len(texts) >= MAX_QUEUED_MESSAGES:
        return (f"{len(texts)} messages already wait in this {where} (the limit is {MAX_QUEUED_MESSAGES}); "
                "send this one once some are answered")  # fmt: skip
    held, adding = sum(map(text_bytes, texts)), text_bytes(content)
    if held + adding > MAX_QUEUED_BYTES:
        return (f"the messages waiting in this {where} hold {held} bytes and this one {adding}; the limit is "
                f"{MAX_QUEUED_BYTES} bytes together; send it once some are answered")  # fmt: skip
    return None


def overdue(turns_this_run: int, turns_per_run: int, suggested: bool) -> bool:
    """The run has answered well past its end (or grown too big): it takes no new callers."""
    return suggested or turns_this_run >= OVERDUE_FACTOR * turns_per_run
