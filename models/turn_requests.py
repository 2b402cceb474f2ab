"""Turn requests: how another workflow asks a conversation for a turn and hears back.

A workflow can signal another workflow but cannot call its updates, so a conversation answers a
workflow through a pair of signals: ``request_turn`` (a ``TurnRequest``) queues a message exactly
like ``send_message`` does, and when that turn is over — answered, failed, or cut short by the
conversation's end — the conversation signals ``reply_to.signal`` on ``reply_to.workflow_id`` with a
small ``TurnDone``. Bodies never cross: the request's text may come by reference (a payload stored
for the conversation, ``content_ref``) and the reply comes back as a preview and the sequence number
of the stored reply. With ``reply_to.progress_signal``, the requester also hears (``TurnProgressNote``)
when the turn starts waiting for a person or a resume, and when it goes on.

Requests are idempotent by ``request_id``: a repeat is ignored (the first is answered once), and
the ids seen are carried across continue-as-new (the latest ``REQUESTS_REMEMBERED``). Channels
(issue 13) use it for their agents' turns; private messages (issue 14) and task plans (issue 15)
are meant to. What comes back is in ``models.turn_reports``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from models.payloads import PayloadRef

REQUESTS_REMEMBERED = 200
"""How many request ids a conversation remembers to refuse a repeat (carried across runs)."""


class Contract(BaseModel):
    """Unknown fields are an error (as for every contract in ``models.conversation``, which imports
    this module and so cannot be imported by it)."""

    model_config = ConfigDict(extra="forbid")


class ReplyAddress(Contract):
    """Where the conversation reports on a requested turn: signals of another workflow."""

    workflow_id: str = Field(min_length=1, max_length=400)
    signal: str = Field(min_length=1, max_length=200)
    """Receives one ``TurnDone`` per request."""
    progress_signal: str | None = Field(default=None, min_length=1, max_length=200)
    """Receives a ``TurnProgressNote`` whenever the requested turn starts or stops waiting for a
    person (a tool call to approve) or a resume."""


class TurnRequest(Contract):
    """The ``request_turn`` signal: answer this as a turn of its own, after the messages queued."""

    request_id: str = Field(min_length=1, max_length=200)
    """The caller's id for this request: a repeat with the same id is ignored."""
    content: str = ""
    """The message, inline; with ``content_ref`` it follows the stored text."""
    content_ref: PayloadRef | None = None
    """A text stored for this conversation (``PayloadStore.put(conversation_id, text)``): the
    message is that text followed by ``content``, and only its digest crosses history."""
    author: str | None = Field(default=None, max_length=200)
    """Who asks (a channel, a plan…): shown in events and in the pending messages."""
    hops: int = Field(default=0, ge=0)
    """For a private message (``models.private_messages``): its place in a chain of agent messages.
    A message the agent sends while answering this turn is hop ``hops + 1``; 0 is not a message."""
    reply_to: ReplyAddress | None = None
    """Without it the turn is answered and nobody is told (like ``inject`` with priority queue).

    A request without any content, or longer than the conversation's ``max_message_chars``, is
    refused: the requester gets a ``TurnDone`` with outcome ``rejected`` saying why."""
