"""The auto-accept policy engine: judge one tool call against rules, deterministically.

It runs inside the conversation workflow, so it is pure: no I/O, no clock, no randomness, no
state kept between calls — the same policy and call always give the same verdict, on replay too.
The rules, units and pattern syntax are described in ``models/policy.py``.

How a call is judged:

1. The call is cut into *units*: one per simple command bash would run (``policy/commands.py``),
   plus one for the whole line when it does not parse; else one per normalised path; else one
   for the tool.
2. Each unit collects the decisions of every rule that matches it; the strictest wins
   (deny > ask > allow). No matching rule: ask (fail closed). A unit that cannot be judged
   reliably is never allowed: an allow becomes ask.
3. The call takes the strictest unit's decision. Then, in order, only ever raising it: the
   model's risk (``PolicySet.risk_floor``), auto-accept off (allow → ask), and the cap on
   consecutive auto-accepted calls in a turn (allow → ask).

Per-conversation rules ("approve always") are simply more rules, so they can turn an ask that
came from *no rule* into an allow, but can never beat a deny or an ask rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.policy import (
    Decision,
    PolicyRule,
    PolicySet,
    ToolCallContext,
    UnitVerdict,
    Verdict,
)
from policy.calls import PATH_KEYS, WRITING_TYPES, call_paths, command_text, content_size
from policy.commands import read_command
from policy.paths import path_matcher
from policy.patterns import CommandContext, allows, argument_matches, restricts

LABEL_LIMIT = 200
LEGACY_ALWAYS_DESCRIPTION = "approved always in this conversation"


def evaluate(policy: PolicySet, call: ToolCallContext, overrides: Sequence[PolicyRule] = ()) -> Verdict:
    """The verdict on ``call``: the policy's rules plus this conversation's ``overrides``."""
    rules = [*policy.rules, *overrides]
    size = content_size(call)
    memo: dict = {}  # raw-pattern results: the whole command is the same for every unit
    judged = [_judge_unit(rules, call, unit, size, memo) for unit in units_of(call)]
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
    return Verdict(decision=decision, rule_id=rule_id, reason=reason, segments=[j.label for j in judged],
                   units=[UnitVerdict(unit=j.label, decision=j.decision, rule_id=j.rule.id if j.rule else None,
                                      reason=j.reason) for j in judged],
                   policy_version=policy.version)


# --- units -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    label: str
    command: CommandContext | None = None
    paths: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    problem: str | None = None
    """Why the unit cannot be judged reliably; such a unit is never allowed."""


def units_of(call: ToolCallContext) -> list[Unit]:
    paths = call_paths(call)
    writes = paths if call.action_type in WRITING_TYPES else ()
    command = command_text(call)
    if command is None and "command" in call.arguments:
        return [Unit(label=_short(repr(call.arguments["command"])), paths=paths, writes=writes,
                     problem="the command is neither a string nor a list of strings")]
    if command is not None:
        reading = read_command(command)
        # A unit without views is the whole line of a command that does not parse.
        return [Unit(label=_short(u.written), command=CommandContext(u if u.views else None, command, reading.canonical),
                     paths=(*paths, *u.paths), writes=(*writes, *u.writes), problem=u.problem)
                for u in reading.units]
    if paths:
        return [Unit(label=p, paths=(p,), writes=(p,) if writes else ()) for p in paths]
    return [Unit(label=call.tool)]


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


def _judge_unit(rules: list[PolicyRule], call: ToolCallContext, unit: Unit, size: int, memo: dict) -> _Judgement:
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


def _matches(rule: PolicyRule, call: ToolCallContext, unit: Unit, size: int, memo: dict) -> bool:
    if rule.action_types and call.action_type not in rule.action_types:
        return False
    if rule.tools and call.tool not in rule.tools:
        return False
    if rule.max_bytes is not None and size > rule.max_bytes:
        return False
    allow = rule.decision == Decision.ALLOW
    if not _command_patterns_match(rule, unit, allow, memo):
        return False
    if rule.path and not _paths_match(rule, unit, allow):
        return False
    for key, patterns in rule.arguments.items():
        if key not in call.arguments:
            return False
        if not any(argument_matches(p, call.arguments[key], rule.ignore_case) for p in patterns):
            return False
    return not rule.no_other_arguments or _no_other_arguments(rule, call)


def _command_patterns_match(rule: PolicyRule, unit: Unit, allow: bool, memo: dict) -> bool:
    if not rule.command:
        return not (allow and unit.command is not None)  # an allow rule must name the commands it allows
    if unit.command is None:
        return False
    if allow:
        legacy = is_legacy_always(rule)
        return any(allows(p, unit.command, legacy) for p in rule.command)
    return any(restricts(p, unit.command, rule.ignore_case, memo) for p in rule.command)


def _paths_match(rule: PolicyRule, unit: Unit, allow: bool) -> bool:
    candidates = unit.writes if rule.writes else unit.paths
    if not candidates:
        return False

    included = path_matcher(tuple(rule.path), rule.ignore_case)
    excluded = path_matcher(tuple(rule.except_path), rule.ignore_case)

    def covered(path: str) -> bool:
        return included(path) and not excluded(path)

    return all(covered(p) for p in candidates) if allow else any(covered(p) for p in candidates)


def _no_other_arguments(rule: PolicyRule, call: ToolCallContext) -> bool:
    allowed = set(rule.arguments)
    if rule.command:
        allowed.add("command")
    if rule.path:
        allowed.update(PATH_KEYS)
    return set(call.arguments) <= allowed


def is_legacy_always(rule: PolicyRule) -> bool:
    """An "approve always" rule of policy engine 1: ``exact:`` segments, no ``line:``."""
    return (rule.decision == Decision.ALLOW and rule.id.startswith("always-")
            and rule.description.startswith(LEGACY_ALWAYS_DESCRIPTION)
            and not any(p.startswith("line:") for p in rule.command))


def _short(text: str) -> str:
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…"

