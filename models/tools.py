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
    BUILTIN = "builtin"
    """Inside the conversation workflow itself (``final_answer``); no policy, no sandbox, audited."""
    WORKFLOW = "workflow"
    """A durable workflow the conversation starts (``send_private_message``): judged by the policy
    and audited like any tool, never sandboxed."""


ACTIVITY_MARGIN_S = 60


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
    """The call's budget in seconds: the command is killed after it (the sandbox's clock), and the
    activity and child workflow timeouts are derived from it (``activity_timeout_s``)."""
    max_timeout_s: int | None = None
    """The most a call may ask for with its own ``timeout_s`` argument; None: no such argument."""
    max_attempts: int = 3
    idempotent: bool = False
    """Running it twice does no harm (a read): a retry after a crash simply runs it again. Otherwise
    the call is at-most-once: once its side effect began, a retry reports it instead of re-running."""
    always_ask: bool = False
    """Never auto-accepted, whatever the policy says (e.g. restarting a host container)."""

    def command_timeout_s(self, arguments: dict) -> int:
        """The budget this call runs with: its ``timeout_s`` argument within ``max_timeout_s``, else
        the spec's own. Pure: the workflow and the activity compute the same figure."""
        asked = arguments.get("timeout_s")
        if self.max_timeout_s is None or isinstance(asked, bool) or not isinstance(asked, (int, float)) or asked <= 0:
            return self.timeout_s
        return max(1, min(int(asked), self.max_timeout_s))

    def activity_timeout_s(self, arguments: dict) -> int:
        """Start-to-close of one attempt: the command's budget plus what surrounds it (creating the
        container, moving files, the kill grace and the sandbox's backstop), so the sandbox's own
        clock always fires first and the model hears "timed out" rather than a retry starting."""
        return self.command_timeout_s(arguments) + ACTIVITY_MARGIN_S

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
    llm_queue: str | None = None
    """Where the AI tools' model activities run (the conversation's ``llm`` queue); None: the
    child workflow's own queue."""


class ToolResult(BaseModel):
    success: bool
    output: str = ""
    """What the model sees, capped at 30 000 characters (the full output is kept as an artifact);
    when ``output_ref`` is set, only its first ``PREVIEW_CHARS`` (the whole is in the store)."""
    output_ref: str | None = None
    """SHA-256 of the stored text the model is given, when it is too long for history
    (``models/payloads.py``); the tool message is then written from the store."""
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
