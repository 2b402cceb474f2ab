"""What crosses the sandbox boundary: limits, an exec request, its result, files in and out.

Plain pydantic so workflows, activities, tests and the benchmark share one vocabulary without
importing the Docker SDK. A conversation id becomes part of Docker object names
(``daemonflow-<id>``, ``daemonflow-ws-<id>``), hence the restricted alphabet.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

WORKSPACE = "/workspace"
"""Where the conversation's volume is mounted; every path the model names is confined to it."""

EGRESS_SUFFIX = "-egress"
"""Suffix of the second container a conversation gets when a call may use the network."""

_CONVERSATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_conversation_id(value: str) -> str:
    """The id itself if it can name Docker objects unambiguously; ValueError otherwise."""
    if not _CONVERSATION_ID.match(value):
        raise ValueError(
            f"conversation id {value!r} cannot name a sandbox: use 1-100 characters from "
            "[A-Za-z0-9_.-], starting with a letter or digit"
        )
    if value.endswith(EGRESS_SUFFIX):
        # `daemonflow-x-egress` is conversation x's egress container; refusing the suffix keeps
        # names unambiguous without a lookup table.
        raise ValueError(f"conversation id {value!r} must not end with {EGRESS_SUFFIX!r}")
    return value


ConversationId = Annotated[str, AfterValidator(check_conversation_id)]


class SandboxLimits(BaseModel):
    """Per-container resource limits and per-command budgets; defaults suit a coding agent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    memory: str = "512m"
    """Docker memory string; swap is capped at the same figure, so there is no swap beyond it."""
    cpus: float = Field(default=1.0, gt=0)
    pids: int = Field(default=128, ge=16)
    """Processes and threads in the container; contains fork bombs."""
    tmp_size: str = "64m"
    """Size of the writable, noexec tmpfs at /tmp (the root filesystem is read-only)."""
    command_timeout_s: float = Field(default=120.0, gt=0)
    no_output_timeout_s: float = Field(default=60.0, gt=0)
    """A command that prints nothing for this long is killed (hung on input, deadlocked...)."""
    output_cap_chars: int = Field(default=30_000, ge=200)
    """What the model sees; the full output goes to an artifact file."""
    artifact_cap_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """A command printing more than this is killed: the artifact must not fill the worker's disk."""
    kill_grace_s: float = Field(default=3.0, gt=0)
    """How long a killed command may take to go away before the container is restarted."""
    pids_full_s: float = Field(default=5.0, gt=0)
    """A command that keeps the container's process table full (≥ 95 % of ``pids``) this long is
    killed: a fork bomb. Every fork then fails, so no command that works does it for long."""


_SHELL_STARTUP_VARIABLES = ("BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "POSIXLY_CORRECT")


class ExecRequest(BaseModel):
    """One command in the conversation's sandbox. Exactly one of ``command`` and ``argv``."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: ConversationId
    command: str | None = None
    """A shell command line, run with ``/bin/bash --noprofile --norc -c`` inside the container."""
    argv: list[str] | None = None
    """A program and its arguments, run as is (no shell)."""
    workdir: str = WORKSPACE
    """Absolute or relative to /workspace; must stay inside /workspace."""
    env: dict[str, str] = Field(default_factory=dict)
    timeout_s: float | None = Field(default=None, gt=0)
    """Wall-clock budget; None means ``SandboxLimits.command_timeout_s``."""
    no_output_timeout_s: float | None = Field(default=None, gt=0)
    """None means ``SandboxLimits.no_output_timeout_s``."""
    network: bool = False
    """Egress allowed by policy: the call runs in the conversation's egress container."""

    @model_validator(mode="after")
    def _one_command(self) -> ExecRequest:
        if (self.command is None) == (self.argv is None):
            raise ValueError("give exactly one of command (a shell line) and argv (a program and its arguments)")
        if self.argv is not None and not self.argv:
            raise ValueError("argv must name a program")
        return self

    def program(self) -> list[str]:
        """The argv to run: ``command`` through bash, or ``argv`` as is.

        The auto-accept policy reads a command exactly as bash 5 does (``policy/shell.py``), so
        bash runs it: ``/bin/bash --noprofile --norc -c``, with ``env -u`` removing the variables
        that would make bash run a file or change how it reads the line first (``BASH_ENV``,
        ``ENV``, ``SHELLOPTS``, ``BASHOPTS``, ``POSIXLY_CORRECT``), whatever the environment holds.
        """
        if self.command is None:
            return list(self.argv or [])
        unset = [part for name in _SHELL_STARTUP_VARIABLES for part in ("-u", name)]
        return ["/usr/bin/env", *unset, "/bin/bash", "--noprofile", "--norc", "-c", self.command]


class ExecResult(BaseModel):
    exit_code: int | None
    """The command's exit status; None if the engine never reported one."""
    output: str
    """stdout and stderr interleaved as produced, capped at ``output_cap_chars`` (head and tail)."""
    truncated: bool = False
    timed_out: bool = False
    """Killed by the command timeout or the no-output timeout."""
    killed_reason: str | None = None
    """``timeout``, ``no_output``, ``oom``, ``output_limit``, ``pids_limit`` or ``cancelled``; None if it
    ended by itself."""
    duration_ms: float
    container_restarted: bool = False
    """The command outlived its kill and the container was restarted: /tmp and processes are gone."""
    output_chars: int = 0
    """Length of the full output."""
    artifact_id: str | None = None
    """Set when the output was truncated: the full output is kept under this id."""
    artifact_path: str | None = None
    """Where the full output is, on the worker that ran the command."""
    container_id: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.killed_reason is None


class WriteFileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: ConversationId
    path: str
    """Relative to /workspace, or absolute inside it."""
    content: str
    mode: int = 0o644


class ReadFileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: ConversationId
    path: str
    max_bytes: int = Field(default=1_000_000, gt=0)


class FileContent(BaseModel):
    path: str
    """The normalised absolute path inside the container."""
    content: str
    """UTF-8 text (undecodable bytes replaced)."""
    size: int
    """The file's size on disk."""
    truncated: bool = False
    """Part of the file lies beyond what was read."""
    offset: int = 0
    """The byte the content starts at."""


class RemoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: ConversationId
    volumes: bool = False
    """Also delete the workspace volume (the conversation's files)."""
