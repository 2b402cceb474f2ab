"""The auto-accept policy as data: rules, the call being judged, and the verdict.

The engine that applies these models is ``policy/engine.py`` (pure, run inside the workflow);
the loader that reads ``config/policy.yaml`` is ``config/policy.py``. Keeping the rules as plain
data lets the workflow receive them once per run and judge every call identically on replay.

Semantics in one paragraph: every rule that matches a call contributes its decision and the
strictest wins (deny > ask > allow), so a rule added later — "approve always" for this
conversation — can never beat a deny or an ask. Nothing matching means ask (fail closed); that is
how TERMINAL_COMMAND, NETWORK and HOST "ask by default" while a narrow allow rule can still
allow one command.

Command patterns (``PolicyRule.command``)
-----------------------------------------
Each entry is matched against every *segment* of a shell command: one simple command after
splitting on ``;`` ``&&`` ``||`` ``|`` ``&`` and newlines, after unwrapping ``sudo``, ``env``,
``xargs``, ``bash -c``, ``eval``, ``find -exec``… and normalising the command word (basename,
quotes removed). A prefix chooses the kind of pattern:

- ``glob:`` (the default, no prefix needed) — ``fnmatch`` on the segment's canonical text: its
  words joined by single spaces (``shlex.join`` quoting where a word needs it), followed by its
  redirections (``> out.txt``). ``git status`` matches exactly that; ``pytest*`` any pytest run.
- ``exact:`` — the canonical text must be equal (what "approve always" produces).
- ``re:`` — a Python regular expression matching the whole canonical text (``re.fullmatch``).
- ``argv:`` — order-free: ``NAME REQ REQ …``. ``NAME`` is a glob (or ``a|b`` alternatives) on the
  command word; each ``REQ`` is a ``|``-separated set of globs of which one must equal some
  argument, in any position; a path-like argument is also tried in its normalised form. A
  single-letter flag such as ``-r`` also matches inside a cluster of short flags (``-rf``,
  ``-fR``). Other arguments may be present. ``argv:rm -r|-R|--recursive -f|--force`` matches
  ``rm -rf x``, ``rm -f -r x`` and ``rm --force --recursive x``.
- ``raw:`` — a regular expression searched (``re.search``) in the raw, unparsed command string:
  the only kind that sees commands the tokenizer refuses (a fork bomb, for instance).

Path patterns (``PolicyRule.path``)
-----------------------------------
Globs on normalised paths (``posixpath.normpath`` with leading slashes collapsed: ``a/../.env``
is ``.env``, ``./x//y/`` is ``x/y``). As in ``.gitignore``, a pattern without ``/`` is tried
against *every component* of the path (``*secret*`` catches ``secrets/db.yaml``); a pattern with
``/`` against the whole path (``*`` crosses ``/``). ``exact:`` requires equality with the whole
normalised path. A deny or ask rule fires when any path of the call matches; an allow rule only
vouches for a segment whose paths all match.

``ignore_case`` folds case for every pattern of the rule (command, path and argument).
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

COMMAND_PATTERN_KINDS = ("glob", "exact", "re", "argv", "raw")
PATH_PATTERN_KINDS = ("glob", "exact")
ARGUMENT_PATTERN_KINDS = ("glob", "exact")


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
    else the path. Missing ``tool``/``action_type`` default to the rule's first ones (then
    ``run_command``/TERMINAL_COMMAND for commands, ``write_file``/FILE_WRITE for paths).
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
    (or shell segments) that name at least one path."""
    arguments: dict[str, list[str]] = Field(default_factory=dict)
    """Per argument name, globs (or ``exact:``) on its value (JSON for non-strings); all must match."""
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

    @field_validator("path")
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


class Verdict(_Frozen):
    decision: Decision
    rule_id: str | None = None
    """The rule that decided; ``None`` when no rule matched (fail closed) or when the decision
    came from the call itself (unparseable command, model risk, auto-accept off, the cap)."""
    reason: str
    segments: list[str] = Field(default_factory=list)
    """What was judged, for display: each shell segment, or each normalised path."""
    policy_version: str = ""
