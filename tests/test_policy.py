"""The auto-accept policy: a corpus of calls against the default rules, plus the loader and engine.

Everything here is pure (no server, no Docker): the engine runs inside the workflow, so it must be
correct without any of them. The corpus lives in ``tests/policy_corpus.yaml``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from config.policy import DEFAULT_POLICY_PATH, PolicyError, load_policy, parse_policy, parse_rules
from models.policy import ActionType, Decision, PolicyRule, PolicySet, Risk, ToolCallContext
from policy.approval import rule_for_approve_always
from policy.calls import content_size
from policy.engine import evaluate
from policy.paths import normalize_path
from policy.commands import read_command
from tests.pure import no_sandbox_cleanup  # noqa: F401 - a fixture: these tests use no Docker

ROOT = Path(__file__).resolve().parent.parent
CORPUS = yaml.safe_load((Path(__file__).with_name("policy_corpus.yaml")).read_text(encoding="utf-8"))
CASES: list[dict] = CORPUS["cases"]
CORPUS_RULES = {rule.id: rule for rule in parse_rules(CORPUS["rules"], "corpus rules")}
POLICY = load_policy()


def call_of(spec: dict) -> ToolCallContext:
    """A call from the corpus shorthand (see the corpus header)."""
    if "cmd" in spec:
        tool, action_type, arguments = "run_command", ActionType.TERMINAL_COMMAND, {"command": spec["cmd"]}
    elif "write" in spec:
        tool, action_type = "write_file", ActionType.FILE_WRITE
        arguments = {"path": spec["write"], "content": spec.get("content", "x")}
    elif "read" in spec:
        tool, action_type, arguments = "read_file", ActionType.READ, {"path": spec["read"]}
    else:
        tool, action_type, arguments = spec["tool"], ActionType(spec["action_type"]), spec.get("arguments", {})
    return ToolCallContext(
        tool=tool,
        action_type=action_type,
        arguments=arguments,
        risk=spec.get("risk"),
        content_bytes=spec.get("content_bytes"),
        auto_accept=spec.get("auto_accept", True),
        consecutive_auto=spec.get("consecutive_auto", 0),
    )


def overrides_of(case: dict) -> list[PolicyRule]:
    rules = [CORPUS_RULES[rule_id] for rule_id in case.get("overrides", [])]
    if "approve_always" in case:
        rules.append(rule_for_approve_always(call_of(case["approve_always"])))
    return rules


def judge(case: dict):
    return evaluate(POLICY, call_of(case), overrides_of(case))


# --- the corpus --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_corpus(case):
    verdict = judge(case)
    assert verdict.decision == Decision(case["expect"]), verdict.reason
    assert verdict.reason and verdict.segments and verdict.policy_version == POLICY.version


def test_the_corpus_is_large_unique_and_well_formed():
    ids = [c["id"] for c in CASES]
    assert len(CASES) >= 80
    assert len(ids) == len(set(ids))
    assert {c["expect"] for c in CASES} == {"allow", "ask", "deny"}
    assert all(set(c.get("overrides", [])) <= CORPUS_RULES.keys() for c in CASES)


def test_verdicts_are_deterministic_within_and_across_processes():
    first = [judge(c).model_dump(mode="json") for c in CASES]
    assert [judge(c).model_dump(mode="json") for c in CASES] == first
    # Another interpreter with another hash seed: set or dict-order accidents would show here.
    script = (
        "import json, tests.test_policy as t;"
        "print(json.dumps([t.judge(c).model_dump(mode='json') for c in t.CASES]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == first


# --- verdict details ---------------------------------------------------------------------------


def run(command: str, **kwargs) -> ToolCallContext:
    return ToolCallContext(tool="run_command", action_type=ActionType.TERMINAL_COMMAND,
                           arguments={"command": command}, **kwargs)


def write(path: str, **kwargs) -> ToolCallContext:
    return ToolCallContext(tool="write_file", action_type=ActionType.FILE_WRITE, arguments={"path": path}, **kwargs)


def test_each_unit_is_shown_as_written_and_the_deciding_rule_named():
    verdict = evaluate(POLICY, run("ls -la; sudo /bin/rm -rf / | cat"))
    assert verdict.segments == ["ls -la", "sudo /bin/rm -rf /", "cat"]
    assert (verdict.decision, verdict.rule_id) == (Decision.DENY, "deny-rm-recursive-force")
    assert "sudo /bin/rm -rf /" in verdict.reason
    assert [(u.unit, u.decision, u.rule_id) for u in verdict.units] == [
        ("ls -la", Decision.ASK, None), ("sudo /bin/rm -rf /", Decision.DENY, "deny-rm-recursive-force"),
        ("cat", Decision.ASK, None)]


def test_no_rule_means_ask_without_a_rule_id():
    verdict = evaluate(POLICY, run("whoami"))
    assert (verdict.decision, verdict.rule_id) == (Decision.ASK, None)
    assert "no rule allows" in verdict.reason


def test_unparseable_commands_explain_why():
    verdict = evaluate(POLICY, run("echo 'unterminated"))
    assert verdict.decision == Decision.ASK and "unterminated single quote" in verdict.reason


def test_size_limit_reason_names_the_limit_and_utf8_counts():
    verdict = evaluate(POLICY, write("big.bin", content_bytes=10 * 2**20 + 1))
    assert verdict.decision == Decision.ASK and "allow-file-writes" in verdict.reason
    generated = ToolCallContext(tool="gen", action_type=ActionType.CODE_GENERATION,
                                arguments={"path": "x.py", "content": "é" * (2**20 * 5 // 2 + 1)})
    assert content_size(generated) == 5 * 2**20 + 2  # two bytes per "é", not one per character
    assert evaluate(POLICY, generated).decision == Decision.ASK


def test_adjustments_say_why_and_drop_the_rule_id():
    capped = evaluate(POLICY, write("a.py", consecutive_auto=20))
    assert (capped.decision, capped.rule_id) == (Decision.ASK, None) and "in a row" in capped.reason
    off = evaluate(POLICY, write("a.py", auto_accept=False))
    assert off.decision == Decision.ASK and "auto-accept is off" in off.reason
    risky = evaluate(POLICY, write("a.py", risk=Risk.HIGH))
    assert risky.decision == Decision.ASK and "high risk" in risky.reason


def test_the_consecutive_cap_comes_from_the_policy():
    strict = POLICY.model_copy(update={"max_consecutive_auto": 2})
    assert evaluate(strict, write("a.py", consecutive_auto=1)).decision == Decision.ALLOW
    assert evaluate(strict, write("a.py", consecutive_auto=2)).decision == Decision.ASK


def test_overrides_are_never_mutated_and_default_to_none():
    overrides = [CORPUS_RULES["allow-safe-commands"]]
    evaluate(POLICY, run("ls"), overrides)
    assert overrides == [CORPUS_RULES["allow-safe-commands"]]
    assert evaluate(POLICY, run("ls")).decision == Decision.ASK


# --- approve always ----------------------------------------------------------------------------


def test_approve_always_for_a_command_binds_the_whole_line():
    rule = rule_for_approve_always(run("cd src  &&  /usr/bin/git status # why"))
    assert rule.decision == Decision.ALLOW
    assert (rule.tools, rule.action_types) == (["run_command"], [ActionType.TERMINAL_COMMAND])
    assert rule.command == ["line:cd src && /usr/bin/git status"]
    assert rule.no_other_arguments and rule.arguments == {}
    assert rule.id == rule_for_approve_always(run("cd src && /usr/bin/git status")).id  # deterministic


def test_approve_always_for_a_file_is_that_path_only():
    rule = rule_for_approve_always(write("./src//app.py"))
    assert rule.path == ["exact:src/app.py"]
    assert evaluate(POLICY, write("src/app.py", risk=Risk.HIGH), [rule]).decision == Decision.ASK  # risk still raises
    other = ToolCallContext(tool="write_file", action_type=ActionType.FILE_WRITE,
                            arguments={"path": "lib/src/app.py"}, auto_accept=False)
    with_rule = other.model_copy(update={"arguments": {"path": "src/app.py"}})
    assert evaluate(POLICY, other, [rule]).decision == Decision.ASK
    assert evaluate(POLICY, with_rule, [rule]).decision == Decision.ASK  # auto-accept off wins too


def test_approve_always_rule_round_trips_as_data():
    rule = rule_for_approve_always(run("make build"))
    assert PolicyRule.model_validate_json(rule.model_dump_json()) == rule


# --- loading -----------------------------------------------------------------------------------


def test_default_policy_loads_with_every_example_checked():
    assert DEFAULT_POLICY_PATH.name == "policy.yaml" and POLICY.version
    assert POLICY.max_consecutive_auto == 20
    assert all(rule.match for rule in POLICY.rules), "every default rule carries examples"
    assert {r.id for r in POLICY.rules} >= {"deny-rm-recursive-force", "deny-secret-writes", "allow-file-writes"}


def _write_policy(tmp_path: Path, rules: list[dict]) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"version": "t", "rules": rules}), encoding="utf-8")
    return path


def test_a_rule_whose_match_example_fails_is_refused_by_name(tmp_path):
    path = _write_policy(tmp_path, [{
        "id": "deny-rm-typo", "decision": "deny", "command": ["argv:rm -rf"], "match": ["rm -r -f x"],
    }])
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    message = str(err.value)
    assert "deny-rm-typo" in message and "'rm -r -f x'" in message and "is not matched" in message


def test_a_rule_whose_not_match_example_matches_is_refused(tmp_path):
    path = _write_policy(tmp_path, [{
        "id": "allow-git", "decision": "allow", "command": ["git*"], "not_match": ["git push --force"],
    }])
    with pytest.raises(PolicyError, match=r"allow-git.*'git push --force' is matched, but must not be"):
        load_policy(path)


def test_invalid_policies_are_refused_clearly(tmp_path):
    with pytest.raises(PolicyError, match="not a valid regular expression"):
        parse_policy({"version": "t", "rules": [{"id": "x", "decision": "deny", "command": ["re:("]}]})
    with pytest.raises(PolicyError, match="duplicate rule id"):
        parse_policy({"version": "t", "rules": [{"id": "x", "decision": "ask"}, {"id": "x", "decision": "deny"}]})
    with pytest.raises(PolicyError, match="invalid"):
        parse_policy({"version": "t", "rules": [{"id": "x", "decision": "maybe"}]})
    with pytest.raises(PolicyError, match="needs a rule with command or path"):
        parse_rules([{"id": "x", "decision": "ask", "match": ["ls"]}])
    (tmp_path / "bad.yaml").write_text("rules: [", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(tmp_path / "bad.yaml")
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")


def test_policy_models_travel_as_json():
    assert PolicySet.model_validate_json(POLICY.model_dump_json()) == POLICY


# --- the tokenizer and paths -------------------------------------------------------------------


@pytest.mark.parametrize(("command", "units"), [
    ("a; b && c || d | e & f\ng", ["a", "b", "c", "d", "e", "f", "g"]),
    ("echo $(date) `pwd`", ["date", "pwd", "echo $(date) `pwd`"]),
    ("sudo -u root env A=1 xargs -0 rm -f", ["sudo -u root env A=1 xargs -0 rm -f"]),
    ("find . -name '*.py' -exec wc -l {} +", ["wc -l '{}'", "find . -name '*.py' -exec wc -l '{}' +"]),
    ("echo hi >> log.txt 2>&1", ["echo hi >>log.txt 2>&1"]),
    ("bash -c 'a; b' && sh script.sh", ["a", "b", "bash -c 'a; b'", "sh script.sh"]),
    ("command -v rm", ["command -v rm"]),
])
def test_read_command(command, units):
    reading = read_command(command)
    assert reading.canonical is not None and [u.written for u in reading.units] == units


def test_read_command_reports_what_it_refuses():
    for command in ("echo 'x", "cat <<EOF\nx\nEOF", "for i in 1; do :; done", "a |", "(ls", "ls)"):
        reading = read_command(command)
        assert reading.canonical is None or all(u.problem for u in reading.units), command
        assert any(u.problem for u in reading.units), command


@pytest.mark.parametrize(("path", "normal"), [
    ("a/../.env", ".env"), ("./x//y/", "x/y"), ("//etc/passwd", "/etc/passwd"), ("", "."), ("../x", "../x"),
])
def test_normalize_path(path, normal):
    assert normalize_path(path) == normal


def test_engine_modules_stay_pure():
    """The policy package runs inside the workflow: stdlib (no I/O), pydantic, models, itself."""
    allowed = {"__future__", "hashlib", "json", "posixpath", "re", "shlex", "collections", "dataclasses",
               "fnmatch", "functools", "models", "policy", "pydantic", "unicodedata", "typing"}
    for path in sorted((ROOT / "policy").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert {m.split(".")[0] for m in imported} <= allowed, path.name


def test_config_never_imports_workflows():
    for path in sorted((ROOT / "config").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not any(m.split(".")[0] == "workflows" for m in imported), path.name
