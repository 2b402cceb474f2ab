"""Inputs of the transcript activities (the store side of a conversation)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from models.agent import AgentTemplate
from models.policy import PolicyRule, PolicySet
from models.tools import ToolSpec


class OpenConversation(BaseModel):
    conversation_id: str
    agent: str
    model: str | None = None
    system_prompt: str | None = None
    user_id: str | None = None
    policy: list[dict] = Field(default_factory=list)
    """Per-conversation rule overrides, validated (examples included) when the conversation opens."""


class Routing(BaseModel):
    """Which task queues this conversation's activities go to (empty: the workflow's own queue).

    Filled by ``transcript.open`` from the worker's settings and carried across continue-as-new,
    so a run keeps the routing it started with.
    """

    llm_queue: str | None = None
    """``llm.chat`` and the memory activities (workers beside Ollama)."""
    sandbox_queue: str | None = None
    """The first sandbox tool call of a conversation (workers on Docker hosts); later calls go to
    the host queue that call's worker returned (``ToolResult.host_queue``)."""


class OpenedConversation(BaseModel):
    template: AgentTemplate
    """The resolved template, with the model and prompt overrides applied."""
    next_seq: int
    tools: list[ToolSpec] = Field(default_factory=list)
    """Specs of the template's tools, fixed for the run so that history replays the same."""
    policy: PolicySet | None = None
    overrides: list[PolicyRule] = Field(default_factory=list)
    routing: Routing = Field(default_factory=Routing)
    archive_after_s: int | None = None
    """``DAEMONFLOW_ARCHIVE_AFTER_S`` (None in histories recorded before archiving)."""
    agent_paused: str | None = None
    """The pause reason when an operator paused this agent (``POST /agents/{agent}/pause``)."""


class AppendMessage(BaseModel):
    conversation_id: str
    seq: int
    role: str
    content: str
    tool_call_id: str | None = None
    content_ref: str | None = None
    """SHA-256 of a stored payload (a long tool output): the message is that text followed by
    ``content``, so the body never crosses history."""


class CloseConversation(BaseModel):
    conversation_id: str
    reason: str
