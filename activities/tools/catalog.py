"""The tool catalogue: every tool the model can be offered, as data.

Agent templates choose tools by name. The workflow receives the chosen specs once per run (from
``transcript.open``), so a later change here never alters the decisions of a running history.
"""

from __future__ import annotations

from models.policy import ActionType
from models.tools import RunsOn, ToolCategory, ToolSpec


def _object(properties: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": properties, "required": required or [], "additionalProperties": False}


_MESSAGE_CONTENT = {"type": "string", "minLength": 1, "maxLength": 4000}
_MESSAGE_WAIT_S = {"type": "integer", "minimum": 1, "maximum": 600}


def _agent_message(name: str, description: str, properties: dict, required: list[str]) -> ToolSpec:
    """A private-message tool: run by the conversation workflow itself, judged as ``AGENT_MESSAGE``."""
    return ToolSpec(name=name, category=ToolCategory.AI, action_type=ActionType.AGENT_MESSAGE, runs_on=RunsOn.WORKFLOW,
                    timeout_s=600, max_attempts=1, description=description, parameters=_object(properties, required))


NOT_AN_OPTION = "^[^-]"
"""A value a program receives as an operand never starts with ``-`` (it would be read as an option:
pytest's ``--basetemp=.`` empties the folder). Checked in the workflow and again by the tools."""
_PATH = {"type": "string", "minLength": 1, "maxLength": 4096, "pattern": NOT_AN_OPTION,
         "description": "path relative to /workspace; never starts with '-' (write ./-name for such a file)"}
_TIMEOUT = {"type": "integer", "description": "seconds before the command is killed", "minimum": 1, "maximum": 3600}
_CONTAINER = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
              "description": "a container name or id as `docker ps` shows it"}
MAX_TIMEOUT_S = 3600
MAX_GENERATED_BYTES = 5 * 1024 * 1024
"""``generate_code`` refuses to write more (the CODE_GENERATION limit of the monitoring spec)."""

CATALOG: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="run_command", category=ToolCategory.SYSTEM, action_type=ActionType.TERMINAL_COMMAND,
        max_timeout_s=MAX_TIMEOUT_S,
        description=("Run a shell command in the sandbox (/workspace, no network). Returns its output and exit "
                     "code. It is killed after timeout_s (default 120) or after a long silence."),
        parameters=_object({"command": {"type": "string", "minLength": 1, "maxLength": 20000}, "timeout_s": _TIMEOUT},
                           ["command"]),
    ),
    ToolSpec(
        name="system_info", category=ToolCategory.SYSTEM, action_type=ActionType.READ, timeout_s=30, idempotent=True,
        description="Describe the sandbox: OS, Python version, disk and memory available.",
        parameters=_object({}),
    ),
    ToolSpec(
        name="read_file", category=ToolCategory.FILES, action_type=ActionType.READ, timeout_s=60, idempotent=True,
        description=("Read a text file from the workspace. At most 30000 characters come back; read a large "
                     "file in parts with offset and max_bytes."),
        parameters=_object({"path": _PATH, "offset": {"type": "integer", "minimum": 0, "maximum": 10_000_000_000},
                            "max_bytes": {"type": "integer", "minimum": 1, "maximum": 10_000_000}},
                           ["path"]),
    ),
    ToolSpec(
        name="write_file", category=ToolCategory.FILES, action_type=ActionType.FILE_WRITE, timeout_s=60,
        idempotent=True,  # the same bytes to the same path: a second write changes nothing
        description="Create or overwrite a text file in the workspace.",
        parameters=_object({"path": _PATH, "content": {"type": "string"}}, ["path", "content"]),
    ),
    ToolSpec(
        name="list_directory", category=ToolCategory.FILES, action_type=ActionType.READ, timeout_s=30, idempotent=True,
        description="List a directory of the workspace.",
        parameters=_object({"path": _PATH}),
    ),
    ToolSpec(
        name="run_python", category=ToolCategory.CODE, action_type=ActionType.TERMINAL_COMMAND,
        max_timeout_s=MAX_TIMEOUT_S,
        description="Run a Python 3 program in the sandbox and return its output.",
        parameters=_object({"code": {"type": "string", "minLength": 1, "maxLength": 100_000}, "timeout_s": _TIMEOUT},
                           ["code"]),
    ),
    ToolSpec(
        name="run_tests", category=ToolCategory.CODE, action_type=ActionType.TEST_EXECUTION, timeout_s=600,
        max_timeout_s=MAX_TIMEOUT_S,
        description=("Run the project's tests in the sandbox (pytest if installed, else unittest), for the "
                     "whole workspace or one path; killed after timeout_s (default 600)."),
        parameters=_object({"path": _PATH, "timeout_s": _TIMEOUT}),
    ),
    ToolSpec(
        name="git_status", category=ToolCategory.GIT, action_type=ActionType.READ, timeout_s=30, idempotent=True,
        description="Show `git status` of the workspace repository.", parameters=_object({}),
    ),
    ToolSpec(
        name="git_diff", category=ToolCategory.GIT, action_type=ActionType.READ, timeout_s=30, idempotent=True,
        description="Show `git diff` of the workspace (staged with staged=true).",
        parameters=_object({"staged": {"type": "boolean"}}),
    ),
    ToolSpec(
        name="git_log", category=ToolCategory.GIT, action_type=ActionType.READ, timeout_s=30, idempotent=True,
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
        timeout_s=30, idempotent=True,
        description=("Check that an http(s) URL answers: a HEAD request (then a GET when the server refuses "
                     "HEAD) and its status code and timing. The body is not returned."),
        parameters=_object({"url": {"type": "string", "minLength": 8, "maxLength": 2000,
                                    "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^\\s]+$",
                                    "description": "an absolute http:// or https:// URL"}}, ["url"]),
    ),
    ToolSpec(
        name="docker_status", category=ToolCategory.DOCKER, action_type=ActionType.HOST, runs_on=RunsOn.HOST,
        timeout_s=30, idempotent=True,
        description="List the host's Docker containers with their state (read-only).",
        parameters=_object({}),
    ),
    ToolSpec(
        name="docker_logs", category=ToolCategory.DOCKER, action_type=ActionType.HOST, runs_on=RunsOn.HOST,
        timeout_s=30, idempotent=True,
        description="Show the last lines of a host container's logs (read-only).",
        parameters=_object({"container": _CONTAINER, "tail": {"type": "integer", "minimum": 1, "maximum": 5000}},
                           ["container"]),
    ),
    ToolSpec(
        name="docker_restart", category=ToolCategory.DOCKER, action_type=ActionType.HOST, runs_on=RunsOn.HOST,
        always_ask=True, timeout_s=120, max_attempts=1,
        description="Restart a host container. Always needs a person's approval.",
        parameters=_object({"container": _CONTAINER}, ["container"]),
    ),
    ToolSpec(
        name="generate_code", category=ToolCategory.AI, action_type=ActionType.CODE_GENERATION, timeout_s=600,
        idempotent=True,  # a retry writes the same generated bytes
        description=("Have the model write a whole file from instructions: the code is generated and written to "
                     "path in the workspace (at most 5 MB), and shown to you."),
        parameters=_object({
            "path": _PATH,
            "instructions": {"type": "string", "minLength": 1, "maxLength": 20000,
                             "description": "what the file must do, its interfaces, constraints"},
            "language": {"type": "string", "minLength": 1, "maxLength": 40,
                         "description": "e.g. python; guessed from the path when absent"},
        }, ["path", "instructions"]),
    ),
    ToolSpec(
        name="review_diff", category=ToolCategory.AI, action_type=ActionType.CODE_REVIEW, timeout_s=600,
        idempotent=True,
        description=("Review the workspace's uncommitted changes (`git diff`, or the staged ones with "
                     "staged=true): the model reads the diff and returns its review."),
        parameters=_object({"staged": {"type": "boolean"},
                            "focus": {"type": "string", "minLength": 1, "maxLength": 2000,
                                      "description": "what to look at most closely (security, tests, ...)"}}),
    ),
    ToolSpec(
        name="final_answer", category=ToolCategory.AI, action_type=ActionType.BUILTIN, runs_on=RunsOn.BUILTIN,
        timeout_s=1, description=("Give your final answer to the user and end this turn. Use it once the work is "
                                  "done; no other tool runs after it."),
        parameters=_object({"answer": {"type": "string", "minLength": 1, "maxLength": 16000}}, ["answer"]),
    ),

    # --- task plans (issue 15): runs on the worker, asks a person by default (``ask-create-plan``)
    ToolSpec(
        name="create_plan", category=ToolCategory.AI, action_type=ActionType.HOST, runs_on=RunsOn.HOST,
        timeout_s=660, idempotent=True,  # a retry finds the plan the first attempt started (same id)
        description=("Split a request into a plan of tasks done by agents, some in parallel (at most 3 at once), "
                     "each after the tasks it depends_on, whose results it is given. Returns every task's "
                     "result once the plan is done (or, after about 10 minutes, the plan's id)."),
        parameters=_object({
            "title": {"type": "string", "maxLength": 200},
            "tasks": {"type": "array", "minItems": 1, "maxItems": 200, "items": _object({
                "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"},
                "title": {"type": "string", "maxLength": 200},
                "prompt": {"type": "string", "minLength": 1, "maxLength": 8000,
                           "description": "what the agent doing this task is asked"},
                "agent": {"type": "string", "description": "agent template: assistant, developer, analyst, moderator"},
                "priority": {"type": "string", "enum": ["critical", "high", "normal", "low"]},
                "depends_on": {"type": "array", "items": {"type": "string"}},
                "estimate_s": {"type": "number", "minimum": 0},
            }, ["id", "prompt"])},
            "max_parallel": {"type": "integer", "minimum": 1, "maximum": 3},
            "on_failure": {"type": "string", "enum": ["skip_dependents", "fail_plan"]},
        }, ["tasks"]),
    ),

    _agent_message(
        "send_private_message",
        "Send a private request to another agent. It may refuse (busy, outside its expertise). With "
        "wait=true its answer is this tool's result (at most timeout_s); otherwise you get the message id "
        "and its outcome arrives later as a note.",
        {"to": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                "description": "the agent's name, e.g. developer"},
         "content": _MESSAGE_CONTENT,
         "wait": {"type": "boolean", "description": "wait for the answer (default false)"},
         "timeout_s": _MESSAGE_WAIT_S,
         "deepthink": {"type": "boolean", "description": "ask it to reason in several private steps first"}},
        ["to", "content"],
    ),
    _agent_message(
        "answer_private_message",
        "Answer the question of an agent you sent a private message to (its state is input required; "
        "the note or tool result that told you gives the message_id). With wait=true its next outcome "
        "is this tool's result (at most timeout_s); otherwise it arrives later as a note.",
        {"message_id": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]*$"},
         "content": _MESSAGE_CONTENT,
         "wait": {"type": "boolean", "description": "wait for the message's next outcome (default false)"},
         "timeout_s": _MESSAGE_WAIT_S},
        ["message_id", "content"],
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
