"""Tools: what the model may call, how each call runs, and what comes back.

A ``ToolSpec`` is data: the workflow checks arguments against its schema and asks the policy
about its action type without importing any implementation; the worker maps the name to code.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from models.policy import ActionType


class ToolCategory(StrEnum):
    SYSTEM = "system"
    FILES = "files"
    CODE = "code"
    GIT = "git"
    NETWORK = "network"
    DOCKER = "docker"
    MEMORY = "memory"
    AI = "ai"


class RunsOn(StrEnum):
    SANDBOX = "sandbox"
    """Inside the conversation's hardened container."""
    HOST = "host"
    """On the worker, through a narrow API (e.g. the Docker SDK); never a shell."""
    MEMORY = "memory"
    """On the worker, through the memory service (activity ``memory.tool``); no policy, no sandbox."""


class ToolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    category: ToolCategory
    description: str
    parameters: dict
    """JSON schema (type object) of the arguments, as Ollama's tool definitions take it."""
    action_type: ActionType
    runs_on: RunsOn = RunsOn.SANDBOX
    needs_egress: bool = False
    timeout_s: int = 120
    max_attempts: int = 3
    always_ask: bool = False
    """Never auto-accepted, whatever the policy says (e.g. restarting a host container)."""

    def ollama_definition(self) -> dict:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class ToolCallInput(BaseModel):
    """What ToolExecutionWorkflow and the tool activity receive."""

    conversation_id: str
    tool_call_id: str
    tool: str
    arguments: dict = Field(default_factory=dict)
    agent: str = ""
    network: bool = False
    task_queue: str | None = None
    """Where ``tools.run`` is scheduled: the conversation's host queue once it has one, else the
    sandbox queue, else the child workflow's own queue."""


class ToolResult(BaseModel):
    success: bool
    output: str = ""
    """Capped for the model; the full output is kept as an artifact."""
    exit_code: int | None = None
    error: str | None = None
    duration_ms: float = 0.0
    truncated: bool = False
    artifact_id: str | None = None
    host_queue: str | None = None
    """The task queue only the worker that ran this call polls (its Docker host holds the
    conversation's workspace); the conversation sends its later tool calls there."""


class ActionRecord(BaseModel):
    """One row of the action registry, as the workflow reports it."""

    conversation_id: str
    tool_call_id: str
    turn: int
    agent: str
    tool: str
    action_type: str
    args_hash: str
    decision: str
    source: str
    policy_version: str = ""
    success: bool | None = None
    exit_code: int | None = None
    duration_ms: float | None = None
    error: str | None = None
    approval_wait_ms: float | None = None
    """How long the call waited for a person (workflow time), when the policy asked."""
