"""Rules and tools agree: every rule of the default policy decides some real, valid tool call.

For each rule, its ``match`` examples are turned into the calls they describe; at least one must be
a call of a tool of the catalogue, with that tool's action type and arguments valid against its
schema, that the *whole* default policy decides with this rule. A rule naming a tool that does not
exist, or whose condition no real call can meet, fails here.
"""

from __future__ import annotations

from activities.tools.catalog import BY_NAME
from config.policy import load_policy
from models.policy import ActionType
from models.tools import RunsOn
from policy.engine import evaluate
from policy.examples import example_context
from workflows.arguments import argument_errors
from tests.pure import no_sandbox_cleanup  # noqa: F401 - a fixture: these tests use no Docker

POLICY = load_policy()


TOOLS = BY_NAME


def real_calls(rule):
    """The rule's match examples that are valid calls of real, policy-judged tools.

    A call may break a schema ``pattern`` only: ``ask-option-like-paths`` deliberately repeats the
    schema's "a path never starts with -" in the policy, so that the guard holds in
    ``daemonflow policy check`` and for any tool whose schema lacks it; a model can still send such a
    call (the workflow then refuses it as invalid before the policy sees it)."""
    for example in rule.match:
        call = example_context(rule, example)
        spec = TOOLS.get(call.tool)
        if spec is None or spec.runs_on == RunsOn.MEMORY or spec.action_type != call.action_type:
            continue
        if all(" does not match the pattern " in error for error in argument_errors(spec.parameters, call.arguments)):
            yield call


def test_every_default_rule_decides_a_real_tool_call():
    unreachable = [rule.id for rule in POLICY.rules
                   if not any(evaluate(POLICY, call).rule_id == rule.id for call in real_calls(rule))]
    assert not unreachable, f"rules no valid call of a real tool is decided by: {unreachable}"


def test_rules_name_only_real_tools_and_the_dead_rule_is_gone():
    named = {tool for rule in POLICY.rules for tool in rule.tools}
    assert named <= set(TOOLS), named - set(TOOLS)
    ids = {rule.id for rule in POLICY.rules}
    assert "ask-test-execution-other-commands" not in ids  # run_tests takes no command: it could never fire
    assert {"allow-code-generation", "allow-code-review"} <= ids
    assert "command" not in TOOLS["run_tests"].parameters["properties"]
