"""Rule examples: the calls a rule's ``match``/``not_match`` lists describe, checked at load time.

Checking them when the rules load is what keeps a pattern typo from silently allowing (or never
catching) what its author meant: the worker fails at start with the rule and the example named.
"""

from __future__ import annotations

import json

from models.policy import ActionType, PolicyRule, PolicySet, RuleExample, ToolCallContext
from policy.calls import PATH_KEYS
from policy.engine import evaluate


def check_examples(rule: PolicyRule) -> list[str]:
    """Why ``rule``'s ``match``/``not_match`` examples fail, one message each (empty: all pass).

    An example *matches* when a policy made of this rule alone decides it with this rule — the
    rule's own decision, attributed to it. That is what the rule will contribute in the real
    policy, whatever the other rules say.
    """
    alone = PolicySet(version="examples", rules=[rule], max_consecutive_auto=1)
    failures: list[str] = []
    for kind, examples, wanted in (("match", rule.match, True), ("not_match", rule.not_match, False)):
        for example in examples:
            try:
                call = example_context(rule, example)
            except ValueError as err:
                failures.append(f"rule {rule.id!r}: {kind} example {_describe(example)} is invalid: {err}")
                continue
            verdict = evaluate(alone, call)
            decided = verdict.rule_id == rule.id and verdict.decision == rule.decision
            if decided != wanted:
                outcome = "is not matched" if wanted else "is matched, but must not be"
                failures.append(f"rule {rule.id!r}: {kind} example {_describe(example)} {outcome} "
                                f"(verdict {verdict.decision.value}: {verdict.reason})")
    return failures


def example_context(rule: PolicyRule, example: RuleExample | str) -> ToolCallContext:
    """The call an example describes; missing tool and action type come from the rule."""
    if isinstance(example, str):
        if rule.command:
            example = RuleExample(arguments={"command": example})
        elif rule.path:
            example = RuleExample(arguments={"path": example})
        else:
            raise ValueError("a plain-string example needs a rule with command or path patterns")
    if "command" in example.arguments:
        tool, action_type = "run_command", ActionType.TERMINAL_COMMAND
    elif any(key in example.arguments for key in PATH_KEYS):
        tool, action_type = "write_file", ActionType.FILE_WRITE
    else:
        tool, action_type = "example", None
    if example.action_type is not None:
        action_type = example.action_type
    elif rule.action_types and action_type not in rule.action_types:
        action_type = rule.action_types[0]
    if action_type is None:
        raise ValueError("name its action_type")
    return ToolCallContext(
        tool=example.tool or (rule.tools[0] if rule.tools else tool),
        action_type=action_type,
        arguments=example.arguments,
        content_bytes=example.content_bytes,
    )


def _describe(example: RuleExample | str) -> str:
    if isinstance(example, str):
        return repr(example)
    return json.dumps(example.model_dump(mode="json", exclude_defaults=True), sort_keys=True, ensure_ascii=False)
