"""``daemonflow policy check``: what the auto-accept policy decides for tool calls, before any run.

Like Codex's ``execpolicy check``: an operator (or a script) gives one or more tool calls as JSON
and sees, for each, the decision the conversation would take, the rule that decided, the reason,
and every judged unit (each simple command of a shell line, each path). Nothing is run and no
Temporal server is needed: the same pure engine judges as in the workflow.

The JSON output (``-o json``) is a stable interface, documented in the README: keys are only ever
added, never renamed or removed, and ``schema`` changes if that promise must be broken.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from activities.tools.catalog import BY_NAME
from cli.common import EXIT_USAGE, CliError
from config.policy import DEFAULT_POLICY_PATH, PolicyError, load_policy
from config.settings import Settings
from models.policy import ActionType, Decision, PolicyRule, PolicySet, ToolCallContext, Verdict
from models.tools import RunsOn
from policy.approval import rule_for_approve_always
from policy.engine import evaluate
from workflows.arguments import argument_errors

SCHEMA = 1
CALL_KEYS = {"tool", "arguments", "action_type", "risk", "auto_accept", "consecutive_auto", "content_bytes"}
EXIT_EXPECTATION_NOT_MET = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    policy = sub.add_parser("policy", help="the auto-accept policy")
    actions = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="show what the policy decides for tool calls given as JSON (nothing is run)",
        description='Calls are {"tool": NAME, "arguments": {...}} objects (or a list of them); the action type '
                    "comes from the tool catalogue unless given as action_type.")
    check.add_argument("calls", nargs="?", metavar="JSON", help="the call(s); default: --file, else standard input")
    check.add_argument("--file", metavar="FILE", help="read the call(s) from FILE ('-': standard input)")
    check.add_argument("--approved", metavar="FILE", help="calls approved 'always' before these, in order (JSON)")
    check.add_argument("--policy", metavar="FILE", help="judge with this policy file (default: DAEMONFLOW_POLICY_FILE "
                                                        "or config/policy.yaml)")
    check.add_argument("-o", "--output", choices=["text", "json"], default="text")
    check.add_argument("--expect", choices=[d.value for d in Decision],
                       help="exit 1 unless every call gets this decision")


def run(args: argparse.Namespace, settings: Settings) -> int:
    policy_path = Path(args.policy) if args.policy else settings.policy_file or DEFAULT_POLICY_PATH
    try:
        policy = load_policy(policy_path)
    except PolicyError as err:
        raise CliError(str(err), code=EXIT_USAGE) from err
    approved = _read_calls(_read_text(args.approved), f"--approved {args.approved}") if args.approved else []
    overrides: list[PolicyRule] = [rule_for_approve_always(_context(call)) for call in approved]
    calls = _read_calls(_calls_text(args), "the calls")
    results = [_judge(index, call, policy, overrides) for index, call in enumerate(calls)]
    met = None if args.expect is None else all(r["decision"] == args.expect for r in results)
    report = {"schema": SCHEMA, "policy": {"file": str(policy_path), "version": policy.version},
              "approved_rules": [rule.id for rule in overrides], "results": results,
              "expect": args.expect, "expectation_met": met}
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.output == "json" else _text(report))
    return EXIT_EXPECTATION_NOT_MET if met is False else 0


# --- reading calls -------------------------------------------------------------------------------------


def _calls_text(args: argparse.Namespace) -> str:
    if args.calls is not None and args.file is not None:
        raise CliError("give the calls as an argument or with --file, not both", code=EXIT_USAGE)
    if args.calls is not None:
        return args.calls
    return _read_text(args.file or "-")


def _read_text(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except OSError as err:
        raise CliError(f"cannot read {source}: {err.strerror or err}", code=EXIT_USAGE) from err


def _read_calls(text: str, what: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(f"{what} are not valid JSON: {err}", code=EXIT_USAGE) from err
    calls = data if isinstance(data, list) else [data]
    if not calls:
        raise CliError(f"{what}: no call given", code=EXIT_USAGE)
    for index, call in enumerate(calls):
        if not isinstance(call, dict) or not isinstance(call.get("tool"), str):
            raise CliError(f'{what}[{index}]: expected an object like {{"tool": "run_command", "arguments": {{…}}}}',
                           code=EXIT_USAGE)
        unknown = set(call) - CALL_KEYS
        if unknown:
            raise CliError(f"{what}[{index}]: unknown key(s) {sorted(unknown)}; allowed: {sorted(CALL_KEYS)}",
                           code=EXIT_USAGE)
    return calls


def _context(call: dict[str, Any]) -> ToolCallContext:
    spec = BY_NAME.get(call["tool"])
    action_type = call.get("action_type") or (spec.action_type.value if spec else None)
    if action_type is None:
        raise CliError(f"unknown tool {call['tool']!r}: give its action_type ({', '.join(ActionType)})",
                       code=EXIT_USAGE)
    try:
        return ToolCallContext(tool=call["tool"], action_type=action_type, arguments=call.get("arguments", {}),
                               **{k: call[k] for k in ("risk", "auto_accept", "consecutive_auto", "content_bytes")
                                  if k in call})
    except ValidationError as err:
        raise CliError(f"invalid call {json.dumps(call, ensure_ascii=False)}: {err}", code=EXIT_USAGE) from err


# --- judging ----------------------------------------------------------------------------------------------


def _judge(index: int, call: dict[str, Any], policy: PolicySet, overrides: list[PolicyRule]) -> dict[str, Any]:
    """The decision a conversation would take on ``call``: arguments checked against the tool's schema, then the policy."""
    context = _context(call)
    spec = BY_NAME.get(context.tool)
    errors = argument_errors(spec.parameters, context.arguments) if spec else []
    if spec is not None and spec.runs_on == RunsOn.MEMORY:
        verdict = Verdict(decision=Decision.ALLOW, rule_id="builtin:memory",
                          reason="the agent's own memory: never judged by the policy", segments=[context.tool])
    else:
        verdict = evaluate(policy, context, overrides)
        if spec is not None and spec.always_ask and verdict.decision == Decision.ALLOW:
            verdict = verdict.model_copy(update={"decision": Decision.ASK, "rule_id": None,
                                                 "reason": f"{context.tool} always needs a person ({verdict.reason})"})
    return {
        "index": index, "tool": context.tool, "action_type": context.action_type.value,
        "arguments": context.arguments, "decision": verdict.decision.value, "rule": verdict.rule_id,
        "reason": verdict.reason,
        "units": [{"unit": u.unit, "decision": u.decision.value, "rule": u.rule_id, "reason": u.reason}
                  for u in verdict.units] or [{"unit": context.tool, "decision": verdict.decision.value,
                                               "rule": verdict.rule_id, "reason": verdict.reason}],
        "argument_errors": errors,
    }


def _text(report: dict[str, Any]) -> str:
    lines = [f"policy {report['policy']['version']} ({report['policy']['file']})"]
    if report["approved_rules"]:
        lines.append(f"approved always before: {', '.join(report['approved_rules'])}")
    for result in report["results"]:
        arguments = json.dumps(result["arguments"], ensure_ascii=False)
        lines += ["", f"[{result['index']}] {result['tool']} ({result['action_type']}) {arguments}",
                  f"    decision: {result['decision']}" + (f"  (rule {result['rule']})" if result["rule"] else ""),
                  f"    reason:   {result['reason']}"]
        if result["argument_errors"]:
            lines.append(f"    refused before judging, invalid arguments: {'; '.join(result['argument_errors'])}")
        lines.append("    units:")
        lines += [f"      {u['decision']:<5} {u['rule'] or '-':<34} {u['unit']}" for u in result["units"]]
    if report["expect"] is not None:
        verdict = "met" if report["expectation_met"] else "NOT met"
        lines += ["", f"expected {report['expect']} for every call: {verdict}"]
    return "\n".join(lines)
