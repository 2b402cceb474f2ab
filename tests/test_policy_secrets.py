"""The README's secrets table is the policy: one test per row, and the rows are the rules.

Each row names a ``secret-*`` rule, its patterns, what it leaves out and an example path. The
row's patterns must be the rule's, every ``secret-*`` rule must have its row, ``deny-secret-writes``
must cover exactly the rows; and for the example, reads ask (by the tool and through a command)
while writes are denied (by the tool and through a command).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config.policy import load_policy
from models.policy import ActionType, Decision, ToolCallContext
from policy.engine import evaluate
from tests.pure import no_sandbox_cleanup  # noqa: F401 - a fixture: these tests use no Docker

ROOT = Path(__file__).resolve().parent.parent
POLICY = load_policy()
RULES = {rule.id: rule for rule in POLICY.rules}


def readme_rows() -> list[dict]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Secrets"):]
    section = section[:section.index("\n### ")]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].startswith("`secret-"):
            rows.append({"kind": cells[0], "rule": cells[1].strip("`"), "patterns": re.findall(r"`([^`]+)`", cells[2]),
                         "except": re.findall(r"`([^`]+)`", cells[3]), "example": cells[4].strip("`")})
    return rows


ROWS = readme_rows()


def call(tool: str, action_type: ActionType, **arguments) -> ToolCallContext:
    return ToolCallContext(tool=tool, action_type=action_type, arguments=arguments)


def test_the_table_is_the_policy():
    secret_rules = {rule_id for rule_id in RULES if rule_id.startswith("secret-")}
    assert {row["rule"] for row in ROWS} == secret_rules and len(ROWS) == len(secret_rules)
    writes = RULES["deny-secret-writes"]
    assert writes.writes and writes.decision == Decision.DENY
    assert sorted(writes.path) == sorted(p for row in ROWS for p in row["patterns"])
    assert sorted(writes.except_path) == sorted(p for row in ROWS for p in row["except"])


@pytest.mark.parametrize("row", ROWS, ids=[row["rule"] for row in ROWS])
def test_row(row):
    rule = RULES[row["rule"]]
    assert (row["patterns"], row["except"]) == (rule.path, rule.except_path), "the README row and the rule differ"
    assert rule.decision == Decision.ASK and rule.ignore_case
    path = row["example"]
    read = evaluate(POLICY, call("read_file", ActionType.READ, path=path))
    assert (read.decision, read.rule_id) == (Decision.ASK, rule.id), read.reason
    shell_read = evaluate(POLICY, call("run_command", ActionType.TERMINAL_COMMAND, command=f"cat {path} | head -1"))
    assert (shell_read.decision, shell_read.rule_id) == (Decision.ASK, rule.id), shell_read.reason
    write = evaluate(POLICY, call("write_file", ActionType.FILE_WRITE, path=path, content="x"))
    assert (write.decision, write.rule_id) == (Decision.DENY, "deny-secret-writes"), write.reason
    generated = evaluate(POLICY, call("generate_code", ActionType.CODE_GENERATION, path=path, instructions="x"))
    assert generated.decision == Decision.DENY, generated.reason
    shell_write = evaluate(POLICY, call("run_command", ActionType.TERMINAL_COMMAND, command=f"echo x > {path}"))
    assert (shell_write.decision, shell_write.rule_id) == (Decision.DENY, "deny-secret-writes"), shell_write.reason
    upper = evaluate(POLICY, call("read_file", ActionType.READ, path=path.upper()))
    assert upper.decision == Decision.ASK, "patterns ignore case"


@pytest.mark.parametrize("path", ["environment.py", "keyboard.py", "docs/env.md", ".env.example", "id_rsa.pub",
                                  "main.tf", "src/settings.xml", "tokenizer.py", "monkey.py", "envs/dev.yaml"])
def test_ordinary_files_are_not_flooded(path):
    assert evaluate(POLICY, call("read_file", ActionType.READ, path=path)).decision == Decision.ALLOW
    assert evaluate(POLICY, call("write_file", ActionType.FILE_WRITE, path=path, content="x")).decision == Decision.ALLOW
