"""What the workflow asks of the model activity, and the small answer it gets back.

The request names messages by sequence number only; the activity reads their bodies from the
store, so workflow history does not grow with the length of the conversation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from models.agent import AgentTemplate
from models.conversation import Usage
from models.memory import RecallRequest, RecallResult
from models.payloads import PayloadRef
from models.turn_writes import TurnWrites

MAX_REPLY_CHARS_IN_HISTORY = 16_000
SERVERS_OF_LISTED_MODELS = frozenset({"Ollama", "vLLM"})
"""OpenAI-compatible servers (as ``ServerProbe.server`` names them) that refuse unlisted models."""


class ToolCallRequest(BaseModel):
    id: str
    name: str
    arguments: dict = Field(default_factory=dict)
    """As the model wrote them, except that long strings are payload markers (``models/payloads``)."""
    payloads: list[PayloadRef] = Field(default_factory=list)
    """The stored payloads the markers stand for, each with a preview for approvers."""


class ChatRequest(BaseModel):
    conversation_id: str
    turn: int
    reply_seq: int
    """Where the assistant message is written; the key that makes a retried call idempotent."""
    upto_seq: int
    """The last message of the transcript the model may see."""
    template: AgentTemplate | None = None
    """Inline (histories recorded before ``prompt_ref``); ``None`` when ``prompt_ref`` names it."""
    now: datetime
    """``workflow.now()``: the date the model is told, identical on replay."""
    memory_ids: list[str] = Field(default_factory=list)
    tools: list[dict] = Field(default_factory=list)
    """Tool definitions offered to the model (``{"type": "function", "function": {…}}``, the same
    shape for Ollama and OpenAI-compatible servers)."""
    # --- one round trip per step (``workflow.patched("one-trip-turns")``) ---
    model: str = ""
    """The template's model, for metrics and the Web UI (the template itself may be by reference)."""
    prompt_ref: str | None = None
    """SHA-256 of the conversation's ``PromptConfig`` text (template and tool definitions), stored as
    one of its payloads; the activity loads it (``activities/prompt_configs.py``)."""
    prompt: str | None = None
    """That text itself: on the first call of a run, and again if a worker could not find it."""
    writes: TurnWrites | None = None
    """Messages and audit rows the workflow decided since its last activity, written first."""
    recall: RecallRequest | None = None
    """Recall memories for the user's message (first step of a turn); ids then go to ``memory_ids``."""
    stream_tokens: bool = False
    """Publish what the model writes, while it writes, to the conversation's Workflow Stream
    (``activities/llm/token_stream.py``); set only by workflows that host one."""
    watched: bool = True
    """Whether a subscriber watched the stream when the step was scheduled; if not, the activity
    asks again while the model writes (requests scheduled before this field: as if watched)."""


class ChatResult(BaseModel):
    reply: str
    reply_truncated: bool = False
    tool_calls: list[ToolCallRequest] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    done_reason: str | None = None
    recalled: RecallResult | None = None
    """What ``ChatRequest.recall`` found (ids, or why none): the ids serve the turn's later steps."""


class ServerProbe(BaseModel):
    """What ``daemonflow dev``, health checks and the API show about one model server."""

    provider: Literal["ollama", "openai"]
    base_url: str
    reachable: bool
    server: str | None = None
    """What answers: ``Ollama``, ``llama.cpp``, ``vLLM``… as far as the server tells."""
    version: str | None = None
    models: list[str] = Field(default_factory=list)
    latency_ms: float | None = None
    """Round trip of the model listing."""
    error: str | None = None
    """Why it is not reachable (or answered oddly), in words a person can act on."""

    def has_model(self, name: str) -> bool:
        """Whether ``name`` is listed (Ollama's ``llama3.2`` and ``llama3.2:latest`` are one model)."""
        wanted = _canonical(name, self.provider)
        return any(_canonical(m, self.provider) == wanted for m in self.models)

    @property
    def serves_only_listed(self) -> bool:
        """Whether the server refuses a model it does not list: Ollama (native API or ``/v1``) and
        vLLM do; a ``llama-server`` answers any model name with the one model it runs, and LM Studio
        may load a model on demand."""
        return self.provider == "ollama" or self.server in SERVERS_OF_LISTED_MODELS

    def lacks(self, name: str) -> bool:
        """Whether a call for ``name`` would surely be refused: the server answers, serves only what
        it lists, and does not list it. Unreachable or unsure: ``False`` (calls wait or try)."""
        return self.reachable and self.serves_only_listed and not self.has_model(name)


def _canonical(name: str, provider: str) -> str:
    if provider != "ollama":
        return name
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"
