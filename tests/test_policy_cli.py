"""``daemonflow policy check``, run as a real subprocess: arguments, stdin, files, JSON schema, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from tests.pure import no_sandbox_cleanup  # noqa: F401 - a fixture: these tests use no Docker

ROOT = Path(__file__).resolve().parent.parent


def check(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environment.pop("DAEMONFLOW_POLICY_FILE", None)
    return subprocess.run([sys.executable, "-m", "cli.main", "policy", "check", *args], input=stdin, cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=120)


def as_json(*args: str, **kwargs) -> dict:
    done = check(*args, "-o", "json", **kwargs)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_one_call_as_an_argument_shows_decision_rule_reason_and_every_unit():
    done = check('{"tool": "run_command", "arguments": {"command": "ls; sudo /bin/rm -rf /"}}')
    assert done.returncode == 0, done.stderr
    assert "decision: deny  (rule deny-rm-recursive-force)" in done.stdout
    assert "reason:   rule deny-rm-recursive-force denies `sudo /bin/rm -rf /`" in done.stdout
    assert "      ask   -" in done.stdout and "ls" in done.stdout
    assert "      deny  deny-rm-recursive-force" in done.stdout


def test_a_list_on_stdin_in_the_documented_json_schema():
    calls = [{"tool": "read_file", "arguments": {"path": "src/app.py"}},
             {"tool": "write_file", "arguments": {"path": ".env", "content": "A=1"}},
             {"tool": "run_command", "arguments": {"command": "cat .npmrc && echo done"}}]
    report = as_json(stdin=json.dumps(calls))
    assert set(report) == {"schema", "policy", "approved_rules", "results", "expect", "expectation_met"}
    assert report["schema"] == 1 and report["policy"]["file"].endswith("config/policy.yaml")
    assert report["policy"]["version"] and report["approved_rules"] == [] and report["expect"] is None
    assert [(r["index"], r["tool"], r["action_type"], r["decision"], r["rule"]) for r in report["results"]] == [
        (0, "read_file", "READ", "allow", "allow-reads"),
        (1, "write_file", "FILE_WRITE", "deny", "deny-secret-writes"),
        (2, "run_command", "TERMINAL_COMMAND", "ask", "secret-package-registries")]
    units = report["results"][2]["units"]
    assert [(u["unit"], u["decision"], u["rule"]) for u in units] == [
        ("cat .npmrc", "ask", "secret-package-registries"), ("echo done", "ask", None)]
    assert all(set(r) == {"index", "tool", "action_type", "arguments", "decision", "rule", "reason", "units",
                          "argument_errors"} for r in report["results"])


def test_calls_from_a_file_and_approved_always_before_them(tmp_path):
    approved = tmp_path / "approved.json"
    approved.write_text(json.dumps({"tool": "run_command", "arguments": {"command": "git push origin main"}}))
    calls = tmp_path / "calls.json"
    calls.write_text(json.dumps([
        {"tool": "run_command", "arguments": {"command": "git  push origin 'main'"}},
        {"tool": "run_command", "arguments": {"command": "GIT_SSH_COMMAND='sh -c x' git push origin main"}},
        {"tool": "run_command", "arguments": {"command": "git push origin main && rm -rf /"}}]))
    report = as_json("--file", str(calls), "--approved", str(approved))
    assert len(report["approved_rules"]) == 1 and report["approved_rules"][0].startswith("always-run_command-")
    assert [r["decision"] for r in report["results"]] == ["allow", "ask", "deny"]
    assert report["results"][0]["rule"] == report["approved_rules"][0]


def test_another_policy_file(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"version": "test-1", "rules": [
        {"id": "allow-make", "decision": "allow", "command": ["make *"], "match": ["make build"]}]}))
    report = as_json('{"tool": "run_command", "arguments": {"command": "make build"}}', "--policy", str(policy))
    assert report["policy"] == {"file": str(policy), "version": "test-1"}
    assert (report["results"][0]["decision"], report["results"][0]["rule"]) == ("allow", "allow-make")


def test_expect_sets_the_exit_status_only_when_given():
    deny = '{"tool": "run_command", "arguments": {"command": "rm -rf /"}}'
    assert check(deny).returncode == 0
    assert check(deny, "--expect", "deny").returncode == 0
    failed = check(deny, "--expect", "allow")
    assert failed.returncode == 1 and "expected allow for every call: NOT met" in failed.stdout
    report = json.loads(check(deny, "--expect", "allow", "-o", "json").stdout)
    assert (report["expect"], report["expectation_met"]) == ("allow", False)


def test_the_workflow_s_own_rules_show_through():
    """docker_restart always asks; memory tools are never judged; invalid arguments are reported."""
    report = as_json(stdin=json.dumps([
        {"tool": "docker_restart", "arguments": {"container": "web"}},
        {"tool": "memory_recall", "arguments": {"query": "tea"}},
        {"tool": "read_file", "arguments": {"path": "a.py", "bogus": 1}},
        {"tool": "my_tool", "action_type": "NETWORK", "arguments": {"url": "https://x"}}]))
    results = report["results"]
    assert [(r["decision"], r["rule"]) for r in results[:2]] == [("ask", "ask-docker-restart"), ("allow", "builtin:memory")]
    assert results[2]["argument_errors"] and "bogus" in results[2]["argument_errors"][0]
    assert (results[3]["action_type"], results[3]["decision"]) == ("NETWORK", "ask")


def test_usage_errors_exit_2_with_a_message(tmp_path):
    cases = [
        (["not json"], "not valid JSON"),
        (['{"tool": "no_such_tool", "arguments": {}}'], "give its action_type"),
        (['{"tool": "read_file", "argumnts": {}}'], "unknown key"),
        (['[]'], "no call given"),
        (['{"arguments": {}}'], "expected an object like"),
        (['{"tool": "read_file"}', "--file", "x.json"], "not both"),
        (['{"tool": "read_file"}', "--policy", str(tmp_path / "missing.yaml")], "cannot read policy"),
        (['{"tool": "read_file"}', "--approved", str(tmp_path / "missing.json")], "cannot read"),
    ]
    for args, message in cases:
        done = check(*args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
