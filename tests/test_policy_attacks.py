"""The attack corpus (``tests/policy_attacks.yaml``): every class of issue 11, against the default policy.

Pure (no server): the engine runs inside the workflow. The cases are grouped by class; the test
ids are ``class/case``. ``test_the_attack_corpus_is_large_and_covers_every_class`` prints the
number of cases per class (``pytest -s``) for the notes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config.policy import load_policy, parse_rules
from models.policy import Decision, PolicyRule
from policy.approval import rule_for_approve_always
from policy.engine import evaluate
from tests.test_policy import call_of
from tests.pure import no_sandbox_cleanup  # noqa: F401 - a fixture: these tests use no Docker

CORPUS = yaml.safe_load(Path(__file__).with_name("policy_attacks.yaml").read_text(encoding="utf-8"))
RULES = {rule.id: rule for rule in parse_rules(CORPUS["rules"], "attack corpus rules")}
LEGACY = {rule["id"]: PolicyRule.model_validate(rule) for rule in CORPUS["legacy_rules"]}
CASES = [(name, case) for name, cases in CORPUS["classes"].items() for case in cases]
POLICY = load_policy()
CLASSES = {"approve-always", "allow-as-written", "bash-reading", "wrappers", "exec-config", "secrets", "destructive",
           "tools"}


def overrides_of(case: dict) -> list[PolicyRule]:
    rules = [RULES[rule_id] for rule_id in case.get("overrides", [])]
    rules += [LEGACY[rule_id] for rule_id in case.get("legacy", [])]
    if "approve_always" in case:
        rules.append(rule_for_approve_always(call_of(case["approve_always"])))
    return rules


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[f"{name}/{c['id']}" for name, c in CASES])
def test_attack(case):
    verdict = evaluate(POLICY, call_of(case), overrides_of(case))
    assert verdict.decision == Decision(case["expect"]), verdict.reason
    assert verdict.reason and verdict.units


def test_the_attack_corpus_is_large_and_covers_every_class():
    ids = [f"{name}/{case['id']}" for name, case in CASES]
    assert len(ids) == len(set(ids))
    per_class = {name: len(cases) for name, cases in CORPUS["classes"].items()}
    print("attack cases per class:", per_class, "total", len(CASES))
    assert set(per_class) == CLASSES and len(CASES) >= 120
    for name, cases in CORPUS["classes"].items():
        assert {c["expect"] for c in cases} - {"allow"}, f"{name} must hold cases that do not allow"
