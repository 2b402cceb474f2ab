"""The policy engine as it was before engine 2, frozen: only for replaying older histories.

``ConversationWorkflow`` judges with ``policy.engine`` once ``workflow.patched("policy-engine-2")``
holds; histories recorded before that patch replay through this module so that every decision —
and so every command — comes out as it was recorded. Never change it; delete it once no history
without the patch marker can be replayed any more.

Only what judging needs is kept (``evaluate``, ``rule_for_approve_always``); rule examples are
checked by ``policy/examples.py``. The original description follows.

The auto-accept policy engine: judge one tool call against rules, deterministically.

It runs inside the conversation workflow, so it is pure: no I/O, no clock, no randomness, no
state kept between calls — the same policy and call always give the same verdict, on replay too.
The rules and pattern syntax are described in ``models/policy.py``.

How a call is judged:

1. The call is cut into *units*. A call with a ``command`` argument gives one unit per shell
   segment (``policy/shell.py``), plus one for the whole command if part of it cannot be
   parsed. A call naming paths gives one unit per normalised path. Anything else is one unit.
2. Each unit collects the decisions of every rule that matches it; the strictest wins
   (deny > ask > allow). No matching rule: ask (fail closed). A unit that cannot be judged
   reliably (unparseable, a computed command name, arguments only known at run time) is never
   allowed: an allow becomes ask.
3. The call takes the strictest unit's decision. Then, in order, only ever raising it: the
   model's risk (``PolicySet.risk_floor``), auto-accept off (allow → ask), and the cap on
   consecutive auto-accepted calls in a turn (allow → ask).

Per-conversation rules ("approve always") are simply more rules, so they can turn an ask that
came from *no rule* into an allow, but can never beat a deny or an ask rule.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from models.policy import (
    Decision,
    PolicyRule,
    PolicySet,
    ToolCallContext,
    Verdict,
    split_pattern,
)
from policy.legacy.shell import Segment, split_command

COMMAND_PATTERN_KINDS = ("glob", "exact", "re", "argv", "raw")
PATH_PATTERN_KINDS = ("glob", "exact")
ARGUMENT_PATTERN_KINDS = ("glob", "exact")

PATH_KEYS = ("path", "paths", "file", "files", "file_path", "filename", "target", "source", "src",
             "destination", "dest", "dst", "directory", "dir", "cwd", "workdir")
"""Arguments that name files; their values (strings or lists of strings) are judged as paths."""
CONTENT_KEYS = ("content", "code")
"""Arguments whose UTF-8 size counts against ``max_bytes`` when ``content_bytes`` is absent."""
LABEL_LIMIT = 200


def evaluate(policy: PolicySet, call: ToolCallContext, overrides: Sequence[PolicyRule] = ()) -> Verdict:
    """The verdict on ``call``: the policy's rules plus this conversation's ``overrides``."""
    rules = [*policy.rules, *overrides]
    size = content_size(call)
    memo: dict = {}  # raw-pattern results: the whole command is the same for every segment
    judged = [_judge_unit(rules, call, unit, size, memo) for unit in _units(call)]
    worst = max(judged, key=lambda j: j.rank)
    decision, rule_id = worst.decision, (worst.rule.id if worst.rule else None)
    reason = worst.reason if decision != Decision.ALLOW else _allow_reason(judged)

    floor = policy.risk_floor.get(call.risk) if call.risk else None
    if floor is not None and floor.severity > decision.severity:
        decision, rule_id = floor, None
        reason = f"the model rated this call {call.risk.value} risk, so at least {floor.value} ({reason})"
    if decision == Decision.ALLOW and not call.auto_accept:
        decision, rule_id = Decision.ASK, None
        reason = f"auto-accept is off for this conversation ({reason})"
    if decision == Decision.ALLOW and call.consecutive_auto >= policy.max_consecutive_auto:
        decision, rule_id = Decision.ASK, None
        reason = (f"{call.consecutive_auto} calls were auto-accepted in a row this turn "
                  f"(limit {policy.max_consecutive_auto}); a person decides on this one ({reason})")
    return Verdict(decision=decision, rule_id=rule_id, reason=reason,
                   segments=[j.label for j in judged], policy_version=policy.version)


def rule_for_approve_always(call: ToolCallContext, rule_id: str | None = None) -> PolicyRule:
    """A narrow allow rule for "approve always": this tool, and exactly this command (each of its
    normalised segments), these paths, or — for other tools — these argument values.

    It is just another rule, so denies and ask rules still win over it; a command that cannot be
    parsed stays "ask" even with the rule (it is kept, so the audit shows what was approved).
    """
    command = _command_text(call)
    fields: dict
    if command is not None:
        parsed = split_command(command)
        if parsed.ok and parsed.segments:
            fields = {"command": list(dict.fromkeys(f"exact:{s.text}" for s in parsed.segments))}
        else:
            fields = {"command": [f"raw:\\A{re.escape(command)}\\Z"]}
    elif paths := _call_paths(call):
        fields = {"path": [f"exact:{p}" for p in paths]}
    else:
        fields = {"arguments": {k: [f"exact:{_argument_text(v)}"] for k, v in sorted(call.arguments.items())}}
    identity = json.dumps({"tool": call.tool, "type": call.action_type.value, **fields}, sort_keys=True)
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    label = command if command is not None else ", ".join(_call_paths(call)) or _argument_text(call.arguments)
    return PolicyRule(
        id=rule_id or f"always-{call.tool}-{digest}",
        description=f"approved always in this conversation: {call.tool} {_short(label)}",
        decision=Decision.ALLOW,
        action_types=[call.action_type],
        tools=[call.tool],
        **fields,
    )


def normalize_path(path: str) -> str:
    """``a/../.env`` → ``.env``; ``./x//y/`` → ``x/y``; ``//etc`` → ``/etc``; empty → ``.``."""
    text = path.strip()
    if not text:
        return "."
    normal = posixpath.normpath(text)
    return "/" + normal.lstrip("/") if normal.startswith("//") else normal


def content_size(call: ToolCallContext) -> int:
    """Bytes the call writes: ``content_bytes``, else the UTF-8 size of its content arguments."""
    if call.content_bytes is not None:
        return call.content_bytes
    return sum(len(v.encode("utf-8", "surrogatepass")) for key in CONTENT_KEYS
               if isinstance(v := call.arguments.get(key), str))


# --- units -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    label: str
    segment: Segment | None = None
    raw: str | None = None
    """The whole command string, for ``raw:`` patterns."""
    paths: tuple[str, ...] = ()
    problem: str | None = None
    """Why the unit cannot be judged reliably; such a unit is never allowed."""


def _units(call: ToolCallContext) -> list[_Unit]:
    paths = _call_paths(call)
    command = _command_text(call)
    if command is None and "command" in call.arguments:
        return [_Unit(label=_short(repr(call.arguments["command"])), paths=paths,
                      problem="the command is neither a string nor a list of strings")]
    if command is not None:
        parsed = split_command(command)
        units = [
            _Unit(label=_short(s.text), segment=s, raw=command, paths=(*paths, *_segment_paths(s)),
                  problem=s.problem or (f"its arguments are only known when it runs ({', '.join(s.dynamic)})"
                                        if s.dynamic else None))
            for s in parsed.segments
        ]
        if parsed.errors or not units:
            why = "; ".join(parsed.errors) or "the command is empty"
            units.append(_Unit(label=_short(command), raw=command, paths=paths, problem=f"cannot parse it: {why}"))
        return units
    if paths:
        return [_Unit(label=p, paths=(p,)) for p in paths]
    return [_Unit(label=call.tool)]


def _command_text(call: ToolCallContext) -> str | None:
    value = call.arguments.get("command")
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        # An argv list runs without a shell: quote every word so none is read as an operator.
        return " ".join("'" + v.replace("'", "'\"'\"'") + "'" for v in value)
    return None


def _call_paths(call: ToolCallContext) -> tuple[str, ...]:
    found: list[str] = []
    for key in PATH_KEYS:
        value = call.arguments.get(key)
        values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        found += [normalize_path(v) for v in values if isinstance(v, str)]
    return tuple(dict.fromkeys(found))


def _segment_paths(segment: Segment) -> tuple[str, ...]:
    """Words of a segment that may name files: operands, ``x=value`` values, redirection targets."""
    found: list[str] = []
    for arg in segment.argv[1:]:
        if arg and not arg.startswith("-"):
            found.append(arg)
        if "=" in arg and arg.split("=", 1)[1]:
            found.append(arg.split("=", 1)[1])
    found += segment.redirect_targets
    return tuple(dict.fromkeys(normalize_path(p) for p in found))


# --- matching ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Judgement:
    decision: Decision
    rule: PolicyRule | None
    reason: str
    label: str
    problem: bool

    @property
    def rank(self) -> tuple[int, bool, bool]:
        """Strictest first; among equals, a rule's decision explains more than the fallback."""
        return self.decision.severity, self.rule is not None, self.problem


def _judge_unit(rules: list[PolicyRule], call: ToolCallContext, unit: _Unit, size: int, memo: dict) -> _Judgement:
    matched = [r for r in rules if _matches(r, call, unit, size, memo)]
    label = f"`{unit.label}`"
    if not matched:
        over = next((r for r in rules if r.decision == Decision.ALLOW and r.max_bytes is not None
                     and size > r.max_bytes and _matches(r, call, unit, 0, memo)), None)
        if unit.problem:
            reason = f"{unit.problem}: {label}"
        elif over is not None:
            reason = (f"{label} writes {size} bytes, over the {over.max_bytes}-byte limit of rule "
                      f"{over.id}; a person decides")
        else:
            reason = f"no rule allows {label} ({call.action_type.value}); a person decides"
        return _Judgement(Decision.ASK, None, reason, unit.label, unit.problem is not None)
    rule = max(matched, key=lambda r: r.decision.severity)  # the first of the strictest
    if rule.decision == Decision.ALLOW and unit.problem:
        reason = f"{unit.problem}, so rule {rule.id} cannot auto-accept {label}"
        return _Judgement(Decision.ASK, None, reason, unit.label, True)
    verb = {Decision.DENY: "denies", Decision.ASK: "asks for", Decision.ALLOW: "allows"}[rule.decision]
    about = f": {rule.description}" if rule.description else ""
    return _Judgement(rule.decision, rule, f"rule {rule.id} {verb} {label}{about}", unit.label, unit.problem is not None)


def _allow_reason(judged: list[_Judgement], shown: int = 5) -> str:
    if len(judged) == 1:
        return judged[0].reason
    more = f"; and {len(judged) - shown} more" if len(judged) > shown else ""
    return "every part is allowed: " + "; ".join(j.reason for j in judged[:shown]) + more


def _matches(rule: PolicyRule, call: ToolCallContext, unit: _Unit, size: int, memo: dict) -> bool:
    if rule.action_types and call.action_type not in rule.action_types:
        return False
    if rule.tools and call.tool not in rule.tools:
        return False
    if rule.max_bytes is not None and size > rule.max_bytes:
        return False
    if rule.command and not any(_command_matches(p, unit, rule.ignore_case, memo) for p in rule.command):
        return False
    if rule.path:
        if not unit.paths:
            return False
        hits = [any(_path_matches(p, path, rule.ignore_case) for p in rule.path) for path in unit.paths]
        if not (all(hits) if rule.decision == Decision.ALLOW else any(hits)):
            return False
    for key, patterns in rule.arguments.items():
        if key not in call.arguments:
            return False
        value = _argument_text(call.arguments[key])
        if not any(_text_matches(p, value, ARGUMENT_PATTERN_KINDS, rule.ignore_case) for p in patterns):
            return False
    return True


def _command_matches(pattern: str, unit: _Unit, ignore_case: bool, memo: dict) -> bool:
    kind, body = split_pattern(pattern, COMMAND_PATTERN_KINDS)
    flags = re.IGNORECASE if ignore_case else 0
    if kind == "raw":
        if unit.raw is None:
            return False
        key = (body, flags, unit.raw)
        if key not in memo:
            memo[key] = re.search(body, unit.raw, flags) is not None
        return memo[key]
    if unit.segment is None:
        return False
    if kind == "re":
        return re.fullmatch(body, unit.segment.text, flags) is not None
    if kind == "argv":
        return _argv_matches(body, unit.segment.argv, ignore_case)
    return _text_matches(pattern, unit.segment.text, COMMAND_PATTERN_KINDS, ignore_case)


def _text_matches(pattern: str, text: str, kinds: tuple[str, ...], ignore_case: bool) -> bool:
    kind, body = split_pattern(pattern, kinds)
    fold = str.casefold if ignore_case else str
    if kind == "exact":
        return fold(text) == fold(body)
    return fnmatchcase(fold(text), fold(body))


def _argv_matches(body: str, argv: tuple[str, ...], ignore_case: bool) -> bool:
    if not argv:
        return False
    fold = str.casefold if ignore_case else str
    name, *required = body.split()
    if not any(fnmatchcase(fold(argv[0]), fold(alt)) for alt in name.split("|")):
        return False
    args = [fold(a) for a in argv[1:]]
    return all(any(_arg_matches(arg, fold(alt)) for arg in args for alt in req.split("|")) for req in required)


def _arg_matches(arg: str, alternative: str) -> bool:
    if fnmatchcase(arg, alternative):
        return True
    if len(alternative) == 2 and alternative[0] == "-" and alternative[1] != "-":
        if len(arg) > 2 and arg[0] == "-" and arg[1] != "-" and arg[1:].isalnum() and alternative[1] in arg[1:]:
            return True  # -r inside -rf
    return "/" in arg and fnmatchcase(normalize_path(arg), alternative)


def _path_matches(pattern: str, path: str, ignore_case: bool) -> bool:
    kind, body = split_pattern(pattern, PATH_PATTERN_KINDS)
    fold = str.casefold if ignore_case else str
    if kind == "exact":
        return fold(path) == fold(normalize_path(body))
    if "/" in body:
        return fnmatchcase(fold(path), fold(normalize_path(body)))
    return any(fnmatchcase(fold(part), fold(body)) for part in path.split("/"))


def _argument_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _short(text: str) -> str:
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…"
