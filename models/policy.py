"""The auto-accept policy as data: rules, the call being judged, and the verdict.

The engine that applies these models is the pure ``policy`` package (``policy/engine.py``, run
inside the workflow); the loader that reads ``config/policy.yaml`` is ``config/policy.py``. Keeping
the rules as plain data lets the workflow receive them once per run and judge every call
identically on replay.

Semantics in one paragraph: every rule that matches a call contributes its decision and the
strictest wins (deny > ask > allow), so a rule added later — "approve always" for this
conversation — can never beat a deny or an ask. Nothing matching means ask (fail closed); that is
how TERMINAL_COMMAND, NETWORK and HOST "ask by default" while a narrow allow rule can still
allow one command.

Units
-----
A call is judged in *units*. A call with a ``command`` argument gives one unit per simple command
bash would run (``policy/commands.py``): in lists and pipelines, subshells and groups, ``$(…)``,
backticks, process substitutions, ``bash -c``/``eval``/``su -c``/``watch`` sources, ``find
-exec``. Other calls give one unit per normalised path argument, or one unit for the tool. A call
is allowed only if every unit is allowed. A unit that cannot be judged reliably — a line bash may
read differently from what is shown (control or invisible characters, ``$'…'``, here-documents,
arithmetic…), a line that does not parse or that uses compound commands (``if``, ``for``…), a
computed command name, arguments only known at run time (``$X``, globs, ``xargs`` input) — is
never allowed; it may still be denied.

Allow rules see a command exactly as written; deny and ask rules see through it
---------------------------------------------------------------------------------
Each command unit has a *written* form — the simple command in canonical spelling with its
assignments, wrapper words and options, the command path as typed, and its redirections
(``LANG=C sudo -u app ./git status >out``) — and *views*: the command and what every wrapper
(``sudo``, ``env``, ``timeout``, ``nice``, ``xargs``…) goes on to run, with command names reduced
to their last path component and assignments left out (``git status``).

- An **allow** rule's command patterns match only the written form. So a unit carrying
  assignments (``GIT_PAGER=… git log``), a wrapper (``sudo git log``, ``env -C / git log``) or a
  path-qualified name (``./git``, ``vendor/bin/git``, ``/usr/bin/git``) is allowed only by a rule
  whose pattern says so (``*`` says everything). An allow rule without command patterns never
  allows a shell command. ``ignore_case`` never folds an allow rule's command patterns.
- A **deny** or **ask** rule's command patterns match the written form *or any view*, so
  ``sudo /bin/rm -rf /`` and ``env -i rm -rf /`` are still ``rm -rf /``.

Command patterns (``PolicyRule.command``)
-----------------------------------------
A prefix chooses the kind:

- ``glob:`` (the default, no prefix needed) — ``fnmatch`` on the text: words joined by single
  spaces (``shlex`` quoting where a word needs it), then redirections (``>out.txt``, ``2>&1``).
  ``git status`` matches exactly that; ``pytest*`` any pytest run.
- ``exact:`` — the text must be equal.
- ``re:`` — a Python regular expression matching the whole text (``re.fullmatch``).
- ``argv:`` — order-free: ``NAME REQ REQ …``. ``NAME`` is a glob (or ``a|b`` alternatives) on the
  command word (for allow rules: as written, and the unit has no assignments); each ``REQ`` is a
  ``|``-separated set of globs of which one must equal some argument, in any position; a path-like
  argument is also tried in its normalised form. A single-letter flag such as ``-r`` also matches
  inside a cluster of short flags (``-rf``), ``/s`` inside a Windows switch cluster (``/s/q``);
  flags are looked for only before ``--``. ``argv:rm -r|-R|--recursive -f|--force`` matches
  ``rm -rf x``, ``rm -f -r x`` and ``rm --force --recursive x``, not ``rm -r -- -f``.
- ``line:`` — the *whole* command line in canonical form must be equal: the same simple commands
  in the same order, joined by the same operators, with the same words, assignments, wrappers and
  options, command paths and redirections; only whitespace, comments, line continuations, newline
  versus ``;`` and the quoting of literal words are normalised. This is what "approve always"
  produces: it vouches for every unit of exactly that line.
- ``env:`` — (deny/ask only) a glob on the name of a variable the unit sets: its assignments and
  those given to ``env``/``sudo``.
- ``raw:`` — (deny/ask only) a regular expression searched (``re.search``) in the raw, unparsed
  command string: the only kind that sees commands the tokenizer refuses (a fork bomb).

An "approve always" rule made before this version (``always-…`` ids with ``exact:`` segments) is
still honoured, but only for units that are plain (no assignment, no wrapper, a bare command name)
and never through ``raw:``: it never allows more than it did.

Path patterns (``PolicyRule.path``)
-----------------------------------
Globs on normalised paths (``posixpath.normpath`` with leading slashes collapsed: ``a/../.env``
is ``.env``, ``./x//y/`` is ``x/y``, ``/dev/./sda`` is ``/dev/sda``). As in ``.gitignore``, a
pattern without ``/`` is tried against *every component* of the path (``*secret*`` catches
``secrets/db.yaml``); ``**/`` in front matches at any depth (``**/.kube/config``); any other
pattern with ``/`` matches the whole path (``*`` crosses ``/``). ``exact:`` requires equality with
the whole normalised path. A deny or ask rule fires when any path of the unit matches; an allow
rule only vouches for a unit whose paths all match. ``except_path`` takes paths out of the rule
(``.env.example`` is no secret); ``writes: true`` makes the rule look only at paths the call
*writes* (the paths of FILE_WRITE and CODE_GENERATION calls; in commands, output redirections,
``dd of=``, ``tee``, ``cp``/``mv``/``install``/``ln`` destinations, ``shred``/``truncate``). A
list inside ``path`` or ``except_path`` is flattened, so YAML anchors can share pattern lists.

Arguments (``PolicyRule.arguments``)
------------------------------------
Per argument name, patterns on its value (the string, or JSON for other values): globs,
``exact:``, or ``sha256:`` of the text. ``no_other_arguments`` requires the call to carry no
argument the rule does not constrain (besides ``command`` and path arguments when the rule has
command or path patterns).

``ignore_case`` folds case for every pattern of the rule except an allow rule's command patterns.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

COMMAND_PATTERN_KINDS = ("glob", "exact", "re", "argv", "line", "env", "raw")
RESTRICTING_COMMAND_KINDS = ("env", "raw")
"""Kinds that only deny or ask: an allow rule using them is refused when the rules load."""
PATH_PATTERN_KINDS = ("glob", "exact")
ARGUMENT_PATTERN_KINDS = ("glob", "exact", "sha256")


class ActionType(StrEnum):
    FILE_WRITE = "FILE_WRITE"
    TERMINAL_COMMAND = "TERMINAL_COMMAND"
    CODE_GENERATION = "CODE_GENERATION"
    TEST_EXECUTION = "TEST_EXECUTION"
    CODE_REVIEW = "CODE_REVIEW"
    READ = "READ"
    NETWORK = "NETWORK"
    HOST = "HOST"
    MEMORY = "MEMORY"
    """The agent's own long-term memory (memory_store, memory_recall): auto-accepted, never sandboxed."""
    BUILTIN = "BUILTIN"
    """Handled by the conversation itself (``final_answer`` ends the turn): no policy, no sandbox."""
    AGENT_MESSAGE = "AGENT_MESSAGE"
    """A private message to another agent (``send_private_message``): asked by default."""


class Decision(StrEnum):
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"

    @property
    def severity(self) -> int:
        """Order of precedence: the strictest decision wins."""
        return _SEVERITY[self]


_SEVERITY = {Decision.ALLOW: 0, Decision.ASK: 1, Decision.DENY: 2}


class Risk(StrEnum):
    """A model's own estimate of a call's risk; it can only make the policy stricter."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


def split_pattern(pattern: str, kinds: tuple[str, ...]) -> tuple[str, str]:
    """``"re:^ls$"`` → ``("re", "^ls$")``; no known prefix → ``("glob", pattern)``."""
    kind, sep, body = pattern.partition(":")
    if sep and kind in kinds:
        return kind, body
    return "glob", pattern


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleExample(_Frozen):
    """A small call a rule must (``match``) or must not (``not_match``) decide, checked at load.

    In YAML an example may also be a plain string: the command for a rule with command patterns,
    else the path. A missing ``tool`` is the rule's first one, else ``run_command`` for commands
    and ``write_file`` for paths; a missing ``action_type`` is that tool's (TERMINAL_COMMAND,
    FILE_WRITE) when the rule covers it, else the rule's first.
    """

    tool: str | None = None
    action_type: ActionType | None = None
    arguments: dict = Field(default_factory=dict)
    content_bytes: int | None = Field(default=None, ge=0)


class PolicyRule(_Frozen):
    id: str = Field(min_length=1)
    description: str = ""
    decision: Decision
    action_types: list[ActionType] = Field(default_factory=list)
    """Empty: every action type."""
    tools: list[str] = Field(default_factory=list)
    """Tool names; empty: every tool."""
    command: list[str] = Field(default_factory=list)
    """Patterns on shell segments (see the module docstring); a rule with some matches only calls
    that carry a ``command`` argument."""
    path: list[str] = Field(default_factory=list)
    """Globs on normalised paths (see the module docstring); a rule with some matches only calls
    (or shell commands) that name at least one path."""
    except_path: list[str] = Field(default_factory=list)
    """Paths these globs match are outside the rule."""
    writes: bool = False
    """Path patterns look only at the paths the call writes (see the module docstring)."""
    arguments: dict[str, list[str]] = Field(default_factory=dict)
    """Per argument name, globs (or ``exact:``, ``sha256:``) on its value (JSON for non-strings);
    all must match."""
    no_other_arguments: bool = False
    """The call carries no argument beyond those the rule constrains (see the module docstring)."""
    ignore_case: bool = False
    max_bytes: int | None = Field(default=None, ge=0)
    """The rule only covers calls whose content is at most this many bytes (UTF-8)."""
    match: list[RuleExample | str] = Field(default_factory=list)
    not_match: list[RuleExample | str] = Field(default_factory=list)

    @field_validator("command")
    @classmethod
    def _command_patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            kind, body = split_pattern(pattern, COMMAND_PATTERN_KINDS)
            if not body.strip():
                raise ValueError(f"empty command pattern {pattern!r}")
            if kind in ("re", "raw"):
                try:
                    re.compile(body)
                except re.error as err:
                    raise ValueError(f"command pattern {pattern!r} is not a valid regular expression: {err}") from err
        return patterns

    @field_validator("path", "except_path", mode="before")
    @classmethod
    def _flatten(cls, patterns: object) -> object:
        """``path: [*secrets, *keys]`` in YAML is a list of lists: one list of patterns."""
        if isinstance(patterns, list) and any(isinstance(p, list) for p in patterns):
            return [q for p in patterns for q in (p if isinstance(p, list) else [p])]
        return patterns

    @field_validator("path", "except_path")
    @classmethod
    def _path_patterns_not_empty(cls, patterns: list[str]) -> list[str]:
        if any(not split_pattern(p, PATH_PATTERN_KINDS)[1].strip() for p in patterns):
            raise ValueError("empty path pattern")
        return patterns


class PolicySet(_Frozen):
    version: str = Field(min_length=1)
    """Recorded with every audited decision; bump it whenever the rules change."""
    rules: list[PolicyRule] = Field(default_factory=list)
    max_consecutive_auto: int = Field(default=20, ge=0)
    """Auto-accepted calls allowed in a row within one turn; the next one asks."""
    risk_floor: dict[Risk, Decision] = Field(
        default_factory=lambda: {Risk.HIGH: Decision.ASK, Risk.CRITICAL: Decision.DENY}
    )
    """The least strict decision for a model-supplied risk. Only raises: ``high`` → at least ask,
    ``critical`` → deny (the model itself says the call is dangerous; a person can still edit
    or rephrase it). ``low``/``medium`` change nothing."""

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> PolicySet:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
        return self


class ToolCallContext(_Frozen):
    """One tool call as the policy sees it."""

    tool: str
    action_type: ActionType
    arguments: dict = Field(default_factory=dict)
    risk: Risk | None = None
    """Model-supplied; can only raise the decision."""
    content_bytes: int | None = Field(default=None, ge=0)
    """Size of the content written; when absent, the UTF-8 length of ``arguments["content"]``."""
    auto_accept: bool = True
    """Off: every allow becomes ask (the conversation's ``set_auto_accept``)."""
    consecutive_auto: int = Field(default=0, ge=0)
    """Calls auto-accepted in a row so far in this turn."""


class UnitVerdict(_Frozen):
    """The decision on one judged unit of a call (a simple command, a path, or the tool itself)."""

    unit: str
    decision: Decision
    rule_id: str | None = None
    reason: str


class Verdict(_Frozen):
    decision: Decision
    rule_id: str | None = None
    """The rule that decided; ``None`` when no rule matched (fail closed) or when the decision
    came from the call itself (unparseable command, model risk, auto-accept off, the cap)."""
    reason: str
    segments: list[str] = Field(default_factory=list)
    """What was judged, for display: each simple command as written, or each normalised path."""
    units: list[UnitVerdict] = Field(default_factory=list)
    """Each judged unit with its own decision, rule and reason (``daemonflow policy check``)."""
    policy_version: str = ""
