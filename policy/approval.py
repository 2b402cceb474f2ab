""""Approve always": a rule that allows exactly the call a person approved, and nothing more.

For a command, the rule carries the whole line in canonical form (``line:``): the same simple
commands, in the same order, joined by the same operators, with the same assignments, wrappers
and options, command paths and redirections. Only spelling that does not change what bash runs
(whitespace, comments, line continuations, newline versus ``;``, the quoting of literal words)
may differ. For a file tool, the normalised paths. Every other argument is bound exactly (long
values by their SHA-256), and the call may carry no argument the approval did not
(``no_other_arguments``): a later ``timeout_s`` or ``max_bytes`` the person never saw asks again.

It is just another rule, so denies and ask rules still win over it; a command that cannot be
read with certainty stays "ask" even with the rule (it is kept, so the audit shows what was
approved).
"""

from __future__ import annotations

import json
import re

from models.policy import Decision, PolicyRule, ToolCallContext
from policy.calls import PATH_KEYS, argument_text, call_paths, command_text, digest
from policy.commands import read_command
from policy.engine import LEGACY_ALWAYS_DESCRIPTION

EXACT_LIMIT = 200
"""Argument values longer than this are bound by their SHA-256 instead of their text."""
LABEL_LIMIT = 200


def rule_for_approve_always(call: ToolCallContext, rule_id: str | None = None) -> PolicyRule:
    """The allow rule for "approve always" on ``call`` (see the module docstring)."""
    command = command_text(call)
    fields: dict = {}
    if command is not None:
        canonical = read_command(command).canonical
        fields["command"] = [f"line:{canonical}" if canonical is not None else f"raw:\\A{re.escape(command)}\\Z"]
    paths = call_paths(call)
    if paths:
        fields["path"] = [f"exact:{p}" for p in paths]
    bound = {k: v for k, v in call.arguments.items()
             if not (k == "command" and command is not None) and not (k in PATH_KEYS and paths)}
    arguments = {key: [_bound(value)] for key, value in sorted(bound.items())}
    identity = json.dumps({"tool": call.tool, "type": call.action_type.value, **fields, "arguments": arguments},
                          sort_keys=True)
    label = command if command is not None else ", ".join(paths) or argument_text(call.arguments)
    return PolicyRule(
        id=rule_id or f"always-{call.tool}-{digest(identity)[:12]}",
        description=f"{LEGACY_ALWAYS_DESCRIPTION}: {call.tool} {_short(label)}",
        decision=Decision.ALLOW,
        action_types=[call.action_type],
        tools=[call.tool],
        arguments=arguments,
        no_other_arguments=True,
        **fields,
    )


def _bound(value: object) -> str:
    text = argument_text(value)
    return f"exact:{text}" if len(text) <= EXACT_LIMIT else f"sha256:{digest(text)}"


def _short(text: str) -> str:
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…"
