"""Private messages: one durable request from a sender (a person or an agent) to an agent, with the
A2A task lifecycle (A2A 1.0 ``TaskState``: submitted, working, input-required, rejected, completed,
failed — "rejected" is called ``refused`` here, and ``accepted`` is the step between submitted and
working, where the recipient said yes).

    submitted ─▶ refused (reason)                                   [final]
              └▶ accepted ─▶ working ─▶ completed | failed          [final]
                                   └─▶ input_required ─▶ working …  (back to the sender, bounded)

A ``PrivateMessageWorkflow`` (id ``message-<message_id>``) owns one request; everything it knows is
its state (and a ``private_messages`` row per message, for the collaboration tracker). Only short
texts cross history: the content is limited to ``MAX_CONTENT_CHARS`` and the reply travels as a
preview plus its place in the recipient's transcript.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MESSAGE_WORKFLOW_PREFIX = "message-"
DM_PREFIX = "dm-"
DEEPTHINK_PREFIX = "deepthink-"
MAX_CONTENT_CHARS = 4000
"""A message is inline (it crosses the sender's, the message's and the recipient's histories);
longer material goes in a file the recipient can read, or in the sender's conversation."""
MAX_HOPS = 3
"""The longest chain of agent→agent messages: a person's message is hop 1, a message an agent sends
while answering hop n is hop n+1. Carried in the request (``TurnRequest.hops``), never read from
model text, so nothing a model writes can lift it."""
MAX_INPUT_ROUNDS = 3
"""How often a recipient may ask its sender for more (``input_required``) within one message."""
MAX_DEEPTHINK_STEPS = 8
"""The most reasoning steps a deepthink may take, whatever the settings ask."""
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
INPUT_MARKER = "NEED INPUT:"
"""A recipient that needs more from its sender starts its reply with this, then its question."""


def message_workflow_id(message_id: str) -> str:
    return f"{MESSAGE_WORKFLOW_PREFIX}{message_id}"


def dm_conversation_id(agent: str) -> str:
    """The conversation an agent answers private messages in, unless the sender names another."""
    return f"{DM_PREFIX}{agent}"


def deepthink_conversation_id(scope: str, agent: str) -> str:
    """Where ``agent`` reasons privately about ``scope`` (a message id, or ``<channel>-<n>``)."""
    return f"{DEEPTHINK_PREFIX}{scope}-{agent}"


class MessageState(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    WORKING = "working"
    INPUT_REQUIRED = "input_required"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (MessageState.REFUSED, MessageState.COMPLETED, MessageState.FAILED)

    @property
    def open(self) -> bool:
        """Accepted and not finished: what counts against the recipient's workload."""
        return self in (MessageState.ACCEPTED, MessageState.WORKING, MessageState.INPUT_REQUIRED)


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrivateMessageInput(Contract):
    message_id: str = Field(pattern=MESSAGE_ID_PATTERN)
    sender: str = Field(min_length=1, max_length=200)
    sender_kind: Literal["person", "agent"] = "person"
    recipient: str = Field(min_length=1, max_length=100)
    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)
    hops: int = Field(default=1, ge=1)
    """Refused above ``MAX_HOPS`` (the workflow checks, so a bad caller cannot skip it)."""
    conversation_id: str | None = Field(default=None, max_length=128)
    """The recipient's conversation to answer in; default ``dm-<recipient>`` (started if needed)."""
    notify: str | None = Field(default=None, max_length=400)
    """The sender's conversation workflow id: it gets a ``private_message_update`` signal at
    input_required and at the end."""
    deepthink: bool = False
    """Reason in several private steps (``deepthink-<message_id>-<recipient>``) before answering."""
    deepthink_steps: int = Field(default=3, ge=1, le=MAX_DEEPTHINK_STEPS)
    max_open: int = Field(default=3, ge=1)
    """Refused while the recipient has this many accepted, unfinished messages."""
    min_expertise: float = Field(default=0.15, ge=-1, le=1)
    """Refused when the request's similarity to the recipient's closest expertise entry is lower."""
    reply_timeout_s: int = Field(default=900, ge=1)
    """How long the recipient may take over one answer before the message fails."""
    input_timeout_s: int = Field(default=86_400, ge=1)
    """How long the sender may take to answer an ``input_required`` before the message fails."""
    llm_queue: str | None = None
    """Where the similarity and the model's decision run (the llm role's queue when split off)."""


class AcceptAnswer(Contract):
    """The recipient model's structured answer to "will you take this request?"."""

    accept: bool
    reason: str = Field(default="", max_length=500)


class ConsiderRequest(Contract):
    """The ``messages.consider`` activity: ask the recipient's model whether it accepts."""

    message_id: str
    recipient: str
    sender: str
    content: str = Field(max_length=MAX_CONTENT_CHARS)


class WorkloadRequest(Contract):
    recipient: str
    exclude_message_id: str


class MessageStatus(Contract):
    """What ``status`` answers, what the store keeps, what the API shows."""

    message_id: str
    sender: str
    sender_kind: str = "person"
    recipient: str
    state: MessageState = MessageState.SUBMITTED
    reason: str | None = None
    """Why it was refused or failed, or the recipient's reason for accepting."""
    decided_by: str | None = None
    """Which rule decided: ``hops``, ``workload``, ``expertise``, ``model``."""
    question: str | None = None
    """The recipient's question while ``input_required``."""
    reply: str = ""
    """The start of the answer (``models.turn_reports.REPLY_PREVIEW_CHARS``)."""
    reply_chars: int = 0
    conversation_id: str | None = None
    """Where the recipient answered (the transcript holds the whole reply at ``reply_seq``)."""
    reply_seq: int | None = None
    deepthink_conversation_id: str | None = None
    hops: int = 1
    input_rounds: int = 0
    created_at: datetime | None = None
    decided_at: datetime | None = None
    finished_at: datetime | None = None


class Admission(Contract):
    """The ``messages.admit`` activity: write ``status`` (accepted) unless the recipient has ``max_open``."""

    status: MessageStatus
    max_open: int = Field(ge=1)


class ProvideInput(Contract):
    """The ``provide_input`` update: the sender's answer to an ``input_required`` question."""

    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)
    author: str | None = Field(default=None, max_length=200)


class MessageUpdate(Contract):
    """What the sender's conversation hears (``private_message_update``): input needed, or the end."""

    message_id: str
    recipient: str
    state: MessageState
    reason: str | None = None
    question: str | None = None
    reply: str = ""
    reply_chars: int = 0
