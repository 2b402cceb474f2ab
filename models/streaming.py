"""Live token streaming and double-texting: what travels on a conversation's Workflow Stream.

``ConversationWorkflow`` hosts a ``temporalio.contrib.workflow_streams.WorkflowStream``. Two topics
share its one offset space:

- ``events``: every ``ConversationEvent`` the workflow emits (published by the workflow itself:
  workflow state, no history event);
- ``tokens``: what the model writes while it writes (``TokenDelta`` batches published by the
  ``llm.chat`` activity with ``WorkflowStreamClient``: one signal per batch, never per token) and
  ``TokenReset`` when a retried attempt starts over.

Tokens are published only while someone watches: a subscriber's poll waits in the workflow or
returned less than ``WATCH_GRACE_S`` ago (``workflows/conversation_stream.py`` counts them). A step
scheduled unwatched gathers its text and asks the workflow (``WATCHED_QUERY``) again while the model
writes, and starts publishing, from the step's first character, once a viewer came; a reply nobody
watched reaches viewers as its ``message`` event only. Why: publishing costs a signal and a workflow
task per batch, about a sixth of a turn's CPU at 50 busy conversations (``bench/README.md``).

The API serves both in one SSE stream whose ``id:`` is the stream offset + 1, so
``Last-Event-ID`` resumes either kind. A model step is named by ``seq`` (the transcript seq its
reply is written at) and ``attempt``; ``offset`` is the character offset of ``text`` in that
attempt's reply, so a client places every batch exactly and a repeated or missing batch shows.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EVENTS_TOPIC = "events"
TOKENS_TOPIC = "tokens"
STREAM_ITEMS_KEPT = 500
"""Items of the stream a conversation keeps (and carries across continue-as-new); older ones are
truncated between turns. A client that resumes before them gets a ``gap``."""
TOKEN_BATCH_S = 0.25
"""How often the activity publishes what the model wrote since its last batch (the first text of a
step goes at once). One publish is one signal in history: a 20 tokens/s model adds 4 per second."""
TOKEN_BATCH_SLOWDOWN_EVERY = 20
"""After every this many batches of one step the pause between batches grows by ``TOKEN_BATCH_S``
(20 at 0.25 s, 20 at 0.5 s, …): a reply of T seconds costs about sqrt(40·T) signals, not 4·T —
a 5-minute answer of a slow local model ~110 instead of 1,200."""
STREAM_POLL = "__temporal_workflow_stream_poll"
"""The stream's poll update and query, as ``WorkflowStream`` registers them."""
WATCHED_QUERY = "stream_watched"
"""The conversation's query: does a subscriber watch its stream now (``ConversationStream.watched``)?"""
WATCH_GRACE_S = 10
"""A stream counts as watched this long after a subscriber's poll returned: a subscriber polls
again at once (the API after a 50 ms cooldown, 1 s after a failure)."""
WATCH_CHECKS_FAST = 8
"""An unwatched step asks whether a viewer came every ``TOKEN_BATCH_S`` for its first this many
checks (2 s), then every ``WATCH_CHECK_MAX_S``: a viewer who opens a long reply sees it within
that, and a reply nobody watches costs one query per check instead of a signal per batch."""
WATCH_CHECK_MAX_S = 2.0
MAX_STREAMED_CHARS = 16_000
"""Text of one step streamed at most (as much as ``ChatResult.reply`` carries): past it viewers wait
for the stored message, so a runaway generation never grows history through the stream."""
INTERRUPTED = "Interrupted"
"""The failure type of a model step cancelled by a newer message; its detail is the partial text."""
INTERRUPTED_MARK = "\n\n[interrupted]"
"""Ends a reply that a newer message interrupted (double-texting ``interrupt``)."""


class DoubleTexting(StrEnum):
    """What a message sent while a turn runs does (``send_message``)."""

    ENQUEUE = "enqueue"
    """Waits for its turn (the default)."""
    REJECT = "reject"
    """Refused at once (``TurnRunning``, the API's 409), with the turn that runs."""
    INTERRUPT = "interrupt"
    """Cancels the model's running generation (its partial reply is kept, marked interrupted)
    and is answered next."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenDelta(_Wire):
    kind: Literal["delta"] = "delta"
    seq: int
    """The transcript seq the step's reply is written at."""
    attempt: int = Field(ge=1)
    offset: int = Field(ge=0)
    """Where ``text`` starts in this attempt's reply (characters)."""
    text: str


class TokenReset(_Wire):
    """A retried attempt starts over: drop what earlier attempts of ``seq`` streamed."""

    kind: Literal["reset"] = "reset"
    seq: int
    attempt: int = Field(ge=2)


class SetDoubleTexting(_Wire):
    policy: DoubleTexting


class TurnRunningDetails(_Wire):
    """Why ``send_message`` was refused under ``reject``: the turn that runs."""

    turn: int
    state: str
    message: str
    """A preview of the message that turn answers."""
