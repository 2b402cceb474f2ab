"""The public contract of ``ConversationWorkflow``: its input, update, signals, queries and results.

These models are what `temporal workflow start --input`, `temporal workflow signal --input` and the
API send as JSON; the pydantic data converter turns that JSON into them, so field names here are
the public names.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio.contrib.workflow_streams import WorkflowStreamState

from models.agent import AgentTemplate
from models.archive import ArchiveRecord
from models.events import ConversationEvent
from models.memory import UnextractedTurns
from models.payloads import PayloadRef
from models.policy import PolicyRule, PolicySet
from models.tools import ToolSpec
from models.transcript import Routing
from models.streaming import DoubleTexting
from models.turn_requests import ReplyAddress

WORKFLOW_ID_PREFIX = "conversation-"


def conversation_workflow_id(conversation_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{conversation_id}"


class Contract(BaseModel):
    """Base for everything that crosses the wire: unknown fields are an error, not silently lost."""

    model_config = ConfigDict(extra="forbid")


class ConversationInput(Contract):
    conversation_id: str | None = None
    """Generated from the workflow id when absent (``conversation-<id>`` → ``<id>``)."""
    agent: str = "assistant"
    model: str | None = None
    """Overrides the template's model."""
    system_prompt: str | None = None
    """Overrides the template's system prompt."""
    auto_accept: bool = True
    policy: list[dict] = Field(default_factory=list)
    """Per-conversation policy rule overrides (used by tools and approvals)."""
    user_id: str | None = None
    initial_message: str | None = None
    max_steps_per_turn: int = Field(default=8, ge=1, le=100)
    approval_timeout_s: int = Field(default=3600, ge=1)
    max_message_chars: int = Field(default=100_000, ge=1)
    turns_per_run: int = Field(default=100, ge=1)
    """Continue-as-new after this many turns in one run, even if the server does not ask yet."""
    model_retry_timeout_s: int = Field(default=1800, ge=1)
    """How long a turn keeps retrying an unreachable model before it fails."""
    memory_extraction_delay_s: float = Field(default=2.0, ge=0, le=3600)
    """Memories are extracted in the background this long after a turn (a person reading its reply),
    together with the turns answered meanwhile, so extraction never delays the next turn…"""
    memory_extraction_every: int = Field(default=5, ge=1, le=100)
    """…or as soon as this many turns wait (1: after every turn), and before the run ends."""
    double_texting: DoubleTexting = DoubleTexting.ENQUEUE
    """What a message sent while a turn runs does (``models/streaming.py``); ``set_double_texting``
    changes it later."""
    stream_tokens: bool = True
    """Publish the model's tokens while it writes (one signal per batch in history); off, viewers
    see each reply once stored, and history grows as before streaming."""
    carried: CarriedState | None = None
    """Set only by continue-as-new: the state of the previous run."""
    # --- archiving after inactivity (models/archive.py) ---
    archive_after_s: int | None = Field(default=None, ge=0)
    """Archive after this many seconds without a turn (nothing queued or waiting); None: the
    setting ``DAEMONFLOW_ARCHIVE_AFTER_S`` (48 h); 0: never."""
    revive: bool = False
    """Set by whoever revives an archived conversation: the run reads its input and state back
    from the archive record (``archive.reopen``); the other fields are then ignored."""


class DelegatedSettings(Contract):
    """The ``delegated_settings`` query: what a conversation hands on to work it delegates (a plan
    it creates with ``create_plan``), so a person's rules bind that work too. Never its "approve
    always" rules: an approval covers only the call the person saw."""

    policy: list[dict] = Field(default_factory=list)
    auto_accept: bool = True
    user_id: str | None = None
    approval_timeout_s: int = Field(default=3600, ge=1)


class ConversationState(StrEnum):
    IDLE = "idle"
    THINKING = "thinking"
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING_TOOL = "running_tool"
    PAUSED = "paused"
    ENDED = "ended"
    ARCHIVED = "archived"
    """Completed after inactivity; a new message revives it (``models/archive.py``)."""


# --- update -----------------------------------------------------------------------------------


class SendMessage(Contract):
    content: str


class Usage(Contract):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_calls: int = 0
    duration_ms: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            model_calls=self.model_calls + other.model_calls,
            duration_ms=self.duration_ms + other.duration_ms,
        )


class ToolCallOutcome(Contract):
    id: str
    tool: str
    decision: str
    success: bool | None = None


class TurnResult(Contract):
    turn: int
    reply: str
    reply_truncated: bool = False
    """The reply was cut for workflow history; the whole text is in the store."""
    tool_calls: list[ToolCallOutcome] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)


# --- signals ----------------------------------------------------------------------------------


class Pause(Contract):
    reason: str = ""


class Inject(Contract):
    content: str
    role: Literal["user", "system"] = "user"
    priority: Literal["next", "queue"] = "next"
    """``next``: seen by the model's next step (mid-turn too), before queued messages.
    ``queue``: answered as a turn of its own after the messages already queued."""


class Approve(Contract):
    """A person's decision on a waiting tool call: the ``approve`` signal and the ``decide`` update."""

    tool_call_id: str
    decision: Literal["approve", "approve_always", "deny", "edit"]
    arguments: dict | None = None
    """With ``edit``: the arguments to run instead (judged again by the policy)."""
    arguments_hash: str | None = None
    """Optional: the ``args_hash`` the approver was shown; a mismatch makes the decision void."""
    reason: str | None = None
    approver: str | None = None


# --- updates that answer a person -------------------------------------------------------------


class DecidedCall(Contract):
    """A tool call that no longer waits: who decided what (``timeout`` when nobody did), and when."""

    tool_call_id: str
    decision: str
    approver: str | None = None
    at: datetime


class DecisionApplied(Contract):
    """What the ``decide`` update answers: the decision the workflow took, and what will run."""

    tool_call_id: str
    tool: str
    decision: str
    approver: str | None = None
    arguments: dict | None = None
    """What runs: the arguments shown (approve), the edited ones (edit, judged again by the policy
    before they run), nothing (deny)."""
    args_hash: str
    """The hash of the arguments that were waiting, which the decision is bound to."""


class RejectionReason(StrEnum):
    UNKNOWN_CALL = "unknown_call"
    """No tool call waits under this id (and none was decided under it recently)."""
    ALREADY_DECIDED = "already_decided"
    ARGUMENTS_CHANGED = "arguments_changed"
    """The ``arguments_hash`` the person saw is not the hash of the arguments that wait."""
    EDIT_WITHOUT_ARGUMENTS = "edit_without_arguments"
    ARGUMENTS_NOT_SHOWN = "arguments_not_shown"
    """``approve`` / ``approve_always`` carried arguments other than the ones shown."""


class DecisionRejection(Contract):
    """Why a decision was void; the ``details`` of the ``DecisionRejected`` error ``decide`` raises."""

    tool_call_id: str
    reason: RejectionReason
    detail: str
    """The reason in words, as ``status.ignored_approvals`` lists it for the signal."""
    decided: DecidedCall | None = None
    """With ``already_decided``: the decision that was taken."""
    args_hash: str | None = None
    """With ``arguments_changed``: the hash of the arguments that wait."""
    waiting: list[str] = Field(default_factory=list)
    """The tool call ids that wait for a decision now."""


class WatchTurn(Contract):
    turn_id: str
    """The ``send_message`` update id of the turn to watch."""


class TurnProgress(Contract):
    """What the ``watch_turn`` update answers as soon as the turn no longer just runs."""

    turn_id: str
    answered: bool
    """The turn is over (its ``send_message`` update has its result), or no such turn waits."""
    state: ConversationState
    pending_approvals: list[PendingApproval] = Field(default_factory=list)
    pause_reason: str | None = None


class SetAutoAccept(Contract):
    enabled: bool


class End(Contract):
    reason: str = ""


# --- queries ----------------------------------------------------------------------------------


class PendingApproval(Contract):
    tool_call_id: str
    tool: str
    arguments: dict
    args_hash: str
    """sha256 of the exact arguments shown; an approval is bound to it."""
    payloads: list[PayloadRef] = Field(default_factory=list)
    """What the payload markers in ``arguments`` stand for (content too long for history, named by
    its SHA-256, so the hash above binds it): sizes and a preview each; the whole content is at
    ``GET /conversations/{id}/payloads/{digest}``."""
    action_type: str = ""
    rule: str | None = None
    reason: str | None = None
    requested_at: datetime | None = None


class Status(Contract):
    conversation_id: str
    state: ConversationState
    paused: bool
    pause_reason: str | None = None
    turn: int
    queued: int
    pending_approvals: list[PendingApproval] = Field(default_factory=list)
    agent: str
    model: str
    auto_accept: bool
    double_texting: DoubleTexting = DoubleTexting.ENQUEUE
    last_error: str | None = None
    ended_reason: str | None = None
    ignored_approvals: list[str] = Field(default_factory=list)
    """Recent approval signals that were void (unknown call, already decided, hash mismatch), why."""
    messages_asking: dict[str, str] = Field(default_factory=dict)
    """Private messages this agent sent whose recipient waits for its answer: id → question."""


HISTORY_LIMIT_MAX = 200


class HistoryQuery(Contract):
    limit: int = Field(default=20, ge=1, le=HISTORY_LIMIT_MAX)


class MessageView(Contract):
    """A recent message as the workflow saw it; bodies are cut, the store has them whole."""

    seq: int | None
    """None while ``pending``: the message has no place in the transcript yet."""
    role: str
    content: str
    truncated: bool = False
    pending: bool = False
    """Not seen by the model yet: an injected note waiting for the model's next step, or a queued
    message waiting for its turn (listed in the order they will enter the transcript)."""


class ConversationSummary(Contract):
    """What a finished conversation workflow returns."""

    conversation_id: str
    turns: int
    ended_reason: str
    archive: ArchiveRecord | None = None
    """Set when the run archived after inactivity (``ended_reason`` says so too)."""


# --- carried across continue-as-new -----------------------------------------------------------


class QueuedMessage(Contract):
    id: str
    content: str
    role: Literal["user", "system"] = "user"
    has_caller: bool = False
    """An update handler waits for this message's TurnResult (never carried across runs)."""
    update_id: str | None = None
    """The ``send_message`` update that brought it (its turn id), for ``watch_turn``; for a
    ``request_turn``, the request id (so ``watch_turn`` follows requested turns too)."""
    request_id: str | None = None
    """Set when a ``request_turn`` signal brought it."""
    author: str | None = None
    content_ref: PayloadRef | None = None
    """The stored text this message starts with (``TurnRequest.content_ref``)."""
    reply_to: ReplyAddress | None = None
    hops: int = 0
    """``TurnRequest.hops``: the private-message chain this turn answers (0: none)."""

    @property
    def shown(self) -> str:
        """The message as the pending history shows it before it is written."""
        return (self.content_ref.preview + self.content) if self.content_ref else self.content


DECIDED_CALLS_KEPT = 50


class CarriedState(Contract):
    """The conversation's state: the workflow holds one and hands it whole to the next run.

    What is not in here lives for one run only (calls waiting for a person, update results,
    the state shown to operators): continue-as-new happens between turns, when none of it is set.
    Histories recorded before this model held everything (``template`` required) still start.
    """

    conversation_id: str
    template: AgentTemplate | None = None
    """Set by ``transcript.open`` in the first run."""
    next_seq: int = 1
    turn: int = 0
    queue: list[QueuedMessage] = Field(default_factory=list)
    injected: list[Inject] = Field(default_factory=list)
    paused: bool = False
    pause_reason: str | None = None
    auto_accept: bool = True
    last_error: str | None = None
    recent: list[MessageView] = Field(default_factory=list)
    tools: list[ToolSpec] = Field(default_factory=list)
    policy: PolicySet | None = None
    overrides: list[PolicyRule] = Field(default_factory=list)
    """Rules this conversation added (approve always)."""
    routing: Routing = Field(default_factory=Routing)
    host_queue: str | None = None
    """The sandbox host queue this conversation's tool calls go to (see ``ToolResult.host_queue``)."""
    events: list[ConversationEvent] = Field(default_factory=list)
    next_event_id: int = 1
    decided: list[DecidedCall] = Field(default_factory=list)
    """The latest ``DECIDED_CALLS_KEPT`` decisions, so a late one is told who decided what."""
    requests: list[str] = Field(default_factory=list)
    """The latest ``request_turn`` ids accepted (``models.turn_requests.REQUESTS_REMEMBERED``), so
    a repeated request is never answered twice."""
    # --- live streaming and double-texting (issue 16) ---
    stream: WorkflowStreamState | None = None
    """The Workflow Stream's retained items (events, token batches) and publisher dedup state."""
    stream_polled_at: datetime | None = None
    """When a subscriber's poll of the stream last returned: a viewer of the previous run still
    counts as watching this one for ``WATCH_GRACE_S`` (``workflows/conversation_stream.py``)."""
    double_texting: DoubleTexting | None = None
    """Set by ``set_double_texting``; ``None``: the input's."""
    archive_after_s: int | None = None
    """The inactivity period from the settings, read by ``transcript.open``."""
    last_activity_at: datetime | None = None
    """The end of the latest turn (or the start), for the inactivity clock across runs."""
    messages_asking: dict[str, str] = Field(default_factory=dict)
    """Private messages this agent sent whose recipient waits for its answer (message id →
    question), what ``answer_private_message`` may answer (``workflows/message_tool.py``)."""
    unextracted: UnextractedTurns | None = None
    """Turns the previous run answered but did not read for memories: this run extracts them
    (``workflows/extraction_backlog.py``)."""


ConversationInput.model_rebuild()
TurnProgress.model_rebuild()
