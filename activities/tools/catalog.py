"""The tool catalogue: every tool the model can be offered, as data.

Agent templates choose tools by name. The workflow receives the chosen specs once per run (from
``transcript.open``), so a later change here never alters the decisions of a running history.
"""

from __future__ import annotations

from models.policy import ActionType
from models.tools import RunsOn, ToolCategory, ToolSpec


def _object(properties: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": properties, "required": required or [], "additionalProperties": False}


_PATH = {"type": "string", "description": "path relative to /workspace", "minLength": 1, "maxLength": 4096}
_TIMEOUT = {"type": "integer", "description": "seconds before the command is killed", "minimum": 1, "maximum": 3600}

CATALOG: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="run_command", category=ToolCategory.SYSTEM, action_type=ActionType.TERMINAL_COMMAND,
        description="Run a shell command in the sandbox (/workspace, no network). Returns its output and exit code.",
        parameters=_object({"command": {"type": "string", "minLength": 1, "maxLength": 20000}, "timeout_s": _TIMEOUT},
                           ["command"]),
    ),
    ToolSpec(
        name="system_info", category=ToolCategory.SYSTEM, action_type=ActionType.READ, timeout_s=30,
        description="Describe the sandbox: OS, Python version, disk and memory available.",
        parameters=_object({}),
    ),
    ToolSpec(
        name="read_file", category=ToolCategory.FILES, action_type=ActionType.READ, timeout_s=30,
        description="Read a text file from the workspace.",
        parameters=_object({"path": _PATH, "max_bytes": {"type": "integer", "minimum": 1, "maximum": 10_000_000}},
                           ["path"]),
    ),
    ToolSpec(
        name="write_file", category=ToolCategory.FILES, action_type=ActionType.FILE_WRITE, timeout_s=30,
        description="Create or overwrite a text file in the workspace.",
        parameters=_object({"path": _PATH, "content": {"type": "string"}}, ["path", "content"]),
    ),
    ToolSpec(
        name="list_directory", category=ToolCategory.FILES, action_type=ActionType.READ, timeout_s=30,
        description="List a directory of the workspace.",
        parameters=_object({"path": _PATH}),
    ),
    ToolSpec(
        name="run_python", category=ToolCategory.CODE, action_type=ActionType.TERMINAL_COMMAND,
        description="Run a Python 3 program in the sandbox and return its output.",
        parameters=_object({"code": {"type": "string", "minLength": 1}, "timeout_s": _TIMEOUT}, ["code"]),
    ),
    ToolSpec(
        name="run_tests", category=ToolCategory.CODE, action_type=ActionType.TEST_EXECUTION, timeout_s=600,
        description="Run the project's tests in the sandbox (pytest if installed, else unittest).",
        parameters=_object({"path": _PATH}),
    ),
    ToolSpec(
        name="git_status", category=ToolCategory.GIT, action_type=ActionType.READ, timeout_s=30,
        description="Show `git status` of the workspace repository.", parameters=_object({}),
    ),
    ToolSpec(
        name="git_diff", category=ToolCategory.GIT, action_type=ActionType.READ, timeout_s=30,
        description="Show `git diff` of the workspace (staged with staged=true).",
        parameters=_object({"staged": {"type": "boolean"}}),
    ),
    ToolSpec(
        name="git_log", category=ToolCategory.GIT, action_type=ActionType.READ, timeout_s=30,
        description="Show recent commits.",
        parameters=_object({"limit": {"type": "integer", "minimum": 1, "maximum": 200}}),
    ),
    ToolSpec(
        name="git_commit", category=ToolCategory.GIT, action_type=ActionType.FILE_WRITE, timeout_s=60,
        description="Stage all changes and commit them with a message.",
        parameters=_object({"message": {"type": "string", "minLength": 1, "maxLength": 5000}}, ["message"]),
    ),
    ToolSpec(
        name="check_url", category=ToolCategory.NETWORK, action_type=ActionType.NETWORK, needs_egress=True,
        timeout_s=30, description="Fetch a URL (HEAD, then GET) and report its status code and timing.",
        parameters=_object({"url": {"type": "string", "minLength": 8, "maxLength": 2000}}, ["url"]),
    ),
    ToolSpec(
        name="docker_status", category=ToolCategory.DOCKER, action_type=ActionType.HOST, runs_on=RunsOn.HOST,
        timeout_s=30, description="List the host's Docker containers with their state (read-only).",
        parameters=_object({}),
    ),
    ToolSpec(
        name="docker_logs", category=ToolCategory.DOCKER, action_type=ActionType.HOST, runs_on=RunsOn.HOST,
        timeout_s=30, description="Show the last lines of a host container's logs (read-only).",
        parameters=_object({"container": {"type": "string", "minLength": 1},
                            "tail": {"type": "integer", "minimum": 1, "maximum": 5000}}, ["container"]),
    ),
    ToolSpec(
        name="docker_restart", category=ToolCategory.DOCKER, action_type=ActionType.HOST, runs_on=RunsOn.HOST,
        always_ask=True, timeout_s=120, max_attempts=1,
        description="Restart a host container. Always needs a person's approval.",
        parameters=_object({"container": {"type": "string", "minLength": 1}}, ["container"]),
    ),

    ToolSpec(
        name="memory_store", category=ToolCategory.MEMORY, action_type=ActionType.MEMORY, runs_on=RunsOn.MEMORY,
        timeout_s=60, description=(
            "Remember something for later conversations: one self-contained sentence (a preference, "
            "the user's setup, a decision). Never passwords, keys or tokens."),
        parameters=_object({
            "text": {"type": "string", "minLength": 1, "maxLength": 2000},
            "kind": {"type": "string", "enum": ["semantic", "episodic", "reflective"],
                     "description": "semantic: fact or preference; episodic: what happened; reflective: lesson"},
            "importance": {"type": "number", "minimum": 0, "maximum": 1},
        }, ["text"]),
    ),
    ToolSpec(
        name="memory_recall", category=ToolCategory.MEMORY, action_type=ActionType.MEMORY, runs_on=RunsOn.MEMORY,
        timeout_s=60, description="Search your long-term memory for what you were told or learned before.",
        parameters=_object({"query": {"type": "string", "minLength": 1, "maxLength": 2000},
                            "k": {"type": "integer", "minimum": 1, "maximum": 20}}, ["query"]),
    ),
)

BY_NAME = {spec.name: spec for spec in CATALOG}


def specs_for(names: list[str]) -> list[ToolSpec]:
    """The specs of the named tools that exist; unknown names (e.g. tools of a later feature) are skipped."""
    return [BY_NAME[name] for name in names if name in BY_NAME]
