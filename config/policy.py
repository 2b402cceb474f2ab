"""Loads the auto-accept policy from YAML and refuses rules whose own examples disagree with them.

Checking each rule's ``match``/``not_match`` examples at load time is what keeps a pattern typo
from silently allowing (or never catching) what its author meant: the worker fails at start with
the rule and the example named, instead of judging calls wrongly for weeks.

The engine itself is pure and lives in the ``policy`` package; this module is the only one that
reads files. ``rule_for_approve_always`` is re-exported here for callers outside the workflow.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from models.policy import (
    COMMAND_PATTERN_KINDS,
    RESTRICTING_COMMAND_KINDS,
    Decision,
    PolicyRule,
    PolicySet,
    split_pattern,
)
from policy.approval import rule_for_approve_always
from policy.examples import check_examples

DEFAULT_POLICY_PATH = Path(__file__).with_name("policy.yaml")

__all__ = ["DEFAULT_POLICY_PATH", "PolicyError", "load_policy", "parse_policy", "parse_rules",
           "rule_for_approve_always"]


class PolicyError(ValueError):
    """The policy file is unreadable, invalid, or a rule's examples fail."""


def load_policy(path: Path | str | None = None) -> PolicySet:
    """The policy at ``path`` (default: ``config/policy.yaml``), validated and example-checked."""
    source = Path(path) if path is not None else DEFAULT_POLICY_PATH
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as err:
        raise PolicyError(f"cannot read policy {source}: {err}") from err
    except yaml.YAMLError as err:
        raise PolicyError(f"policy {source} is not valid YAML: {err}") from err
    return parse_policy(data, str(source))


def parse_policy(data: object, source: str = "policy") -> PolicySet:
    """A ``PolicySet`` from already-parsed data (a mapping), validated and example-checked."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: expected a mapping with version and rules, got {type(data).__name__}")
    try:
        policy = PolicySet.model_validate(data)
    except ValidationError as err:
        raise PolicyError(f"{source} is invalid: {err}") from err
    _check(policy.rules, source)
    return policy


def parse_rules(data: list[dict], source: str = "policy overrides") -> list[PolicyRule]:
    """Per-conversation rules (``ConversationInput.policy``), validated and example-checked."""
    try:
        rules = [PolicyRule.model_validate(item) for item in data]
    except ValidationError as err:
        raise PolicyError(f"{source} are invalid: {err}") from err
    _check(rules, source)
    return rules


def _check(rules: list[PolicyRule], source: str) -> None:
    failures = [failure for rule in rules for failure in (*_restricting_patterns_in_allow(rule), *check_examples(rule))]
    if failures:
        raise PolicyError(f"{source}: {len(failures)} rule example(s) fail, refusing the policy:\n  "
                          + "\n  ".join(failures))


def _restricting_patterns_in_allow(rule: PolicyRule) -> list[str]:
    """``raw:`` and ``env:`` patterns only deny or ask: in an allow rule they would allow nothing
    (the engine ignores them there), so a rule relying on them is a mistake worth refusing."""
    if rule.decision != Decision.ALLOW:
        return []
    return [f"rule {rule.id!r}: {pattern!r} can only deny or ask; an allow rule cannot use it"
            for pattern in rule.command if split_pattern(pattern, COMMAND_PATTERN_KINDS)[0] in RESTRICTING_COMMAND_KINDS]
