"""Differential test: for every command the policy engine allows, bash reads the same commands and words.

The sandbox runs commands with ``/bin/bash --noprofile --norc -c`` (``models/sandbox.py``); the
engine must read them exactly as that bash does, and must not allow what it is unsure of. Here the
real bash is the oracle, without running anything it reads:

1. *Structure*: bash runs the command with ``extdebug`` and a DEBUG trap (inherited with
   ``set -T``) that records ``$BASH_COMMAND`` — bash's own print of each simple command it is
   about to run — and skips it (a trap returning non-zero skips the command before its words are
   expanded, so no command, substitution or redirection of a simple command ever runs). Skipped
   commands count as successful, so the engine's tree is walked the same way (``||`` right sides
   and negated pipelines are not reached). Both sides must give the same simple commands, word
   for word as written, with the same redirections.
2. *Values*: each word bash printed is then given to ``__w=( … )`` under the same trap (only that
   assignment and the ``printf`` that reports it may run) and its value compared with the
   engine's.

The oracle runs with an empty environment and PATH, in a temporary directory, as ``nobody`` when
the tests run as root, so even a compound command's redirection (not covered by the trap) can only
touch that directory. Inputs: every command of the corpora and of the default policy's examples,
and hypothesis-generated lines, structured and hostile (control and invisible characters, quotes,
expansions, operators), each judged with the most permissive override (``*``) so the engine allows
as much as it ever would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.policy import load_policy, parse_rules
from models.policy import ActionType, Decision, ToolCallContext
from policy.engine import evaluate
from policy.shell import Word
from policy.syntax import AndOr, Group, Pipeline, Redirect, Sequence, Simple, parse
from tests.pure import no_sandbox_cleanup  # noqa: F401 - a fixture: these tests use no Docker

BASH = shutil.which("bash", path="/bin:/usr/bin")
pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")
ROOT = Path(__file__).resolve().parent.parent
POLICY = load_policy()
ALLOW_ALL = parse_rules([{"id": "allow-every-command", "decision": "allow", "command": ["*"]}])
TRAP = "shopt -s extdebug; set -T; trap '{test}' DEBUG\n"
"""Record-or-skip every simple command."""


# --- the oracle ----------------------------------------------------------------------------------


class Bash:
    """Runs bash as the sandbox does, under a trap that records and skips every simple command."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {"HOME": str(home), "PATH": str(home / "empty-path"), "LC_ALL": "C.UTF-8"}
        self.nobody = os.geteuid() == 0

    def _run(self, trap: str, script: Callable[[int], str]) -> list[str]:
        """Run ``script(fd)`` under the DEBUG ``trap(fd)``; what they write to ``fd`` is returned."""
        with tempfile.TemporaryFile(dir=self.home) as out:
            fd = out.fileno()
            subprocess.run(
                [BASH, "--noprofile", "--norc", "-c", TRAP.format(test=trap.format(fd=fd)) + script(fd)],
                env=self.env, cwd=self.home,
                # stdout is a pipe read to its end: that waits for background jobs (&) to report too
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, pass_fds=(fd,),
                timeout=10, user=65534 if self.nobody else None, group=65534 if self.nobody else None,
                extra_groups=[] if self.nobody else None,
            )
            out.seek(0)
            data = out.read().decode("utf-8", "surrogateescape")
        return data.split("\0")[:-1]

    def commands(self, command: str) -> list[str]:
        """Bash's print of every simple command it would run."""
        return self._run('printf "%s\\0" "$BASH_COMMAND" >&{fd}; false', lambda fd: command)

    def values(self, raw_words: list[str]) -> list[str]:
        """Bash's values for words it printed (one word each)."""
        return self._run('[[ $BASH_COMMAND == "__w=("* || $BASH_COMMAND == "printf "* ]]',
                         lambda fd: f"__w=( {' '.join(raw_words)} )\nprintf '%s\\0' \"${{__w[@]}}\" >&{fd}")


@pytest.fixture(scope="module")
def bash(tmp_path_factory) -> Bash:
    home = tmp_path_factory.mktemp("bash-oracle")
    (home / "empty-path").mkdir()
    home.chmod(0o777)
    return Bash(home)


# --- the engine's side -----------------------------------------------------------------------------


def executed(node, ran: list[Simple]) -> bool:
    """Walk the engine's tree as bash walks it when every simple command succeeds."""
    if isinstance(node, Simple):
        ran.append(node)
        return True
    if isinstance(node, Group):
        return executed(node.body, ran)
    if isinstance(node, Pipeline):
        status = [executed(command, ran) for command in node.commands][-1]
        return status if node.negations % 2 == 0 else not status
    if isinstance(node, AndOr):
        status = executed(node.pipelines[0], ran)
        for operator, pipeline in zip(node.operators, node.pipelines[1:]):
            if (operator == "&&") == status:
                status = executed(pipeline, ran)
        return status
    assert isinstance(node, Sequence)
    status = True
    for and_or, _ in node.items:
        status = executed(and_or, ran)
    return status


def bash_print(command: Simple) -> str:
    """How bash prints a simple command (print_cmd.c): words as written, then redirections."""
    words = " ".join(w.raw for w in (*command.assignments, *command.words))
    redirects = " ".join(_print_redirect(r) for r in command.redirects)
    return f"{words} {redirects}" if words and redirects else words or redirects


def _print_redirect(redirect: Redirect) -> str:
    op, fd, target = redirect.op, redirect.fd, redirect.target.raw
    default = "0" if op.startswith("<") else "1"
    if op in (">&", "<&") and (target.isdigit() or target == "-" or (target[:-1].isdigit() and target.endswith("-"))):
        return f"{fd or default}{'>' if target == '-' else op[0]}&{target}"
    if op in ("&>", "&>>"):
        return f"{op} {target}"
    if op == "<>":  # bash 5.2 prints the descriptor of <> unless it is 1 (its default is 0)
        return f"{'' if fd == '1' else fd or default}<> {target}"
    if op in (">&", "<&"):
        return f"{fd or ''}{op}{target}"
    return f"{fd if fd and fd != default else ''}{op} {target}"


def words_of(command: Simple) -> list[Word]:
    """The words whose values bash computes (not descriptor numbers of ``2>&1``-style redirections)."""
    return [*command.assignments, *command.words, *(r.target for r in command.redirects if not r.duplicates)]


# --- the comparison ----------------------------------------------------------------------------------


def allowed(command: str) -> bool:
    call = ToolCallContext(tool="run_command", action_type=ActionType.TERMINAL_COMMAND, arguments={"command": command})
    return evaluate(POLICY, call, ALLOW_ALL).decision == Decision.ALLOW


def group_redirects(node) -> list[Redirect]:
    """Redirections of subshells and groups: bash performs them for real (the trap only skips
    simple commands), so the oracle can compare such lines only when they cannot fail."""
    if isinstance(node, Group):
        return [*node.redirects, *group_redirects(node.body)]
    if isinstance(node, Pipeline):
        return [r for command in node.commands for r in group_redirects(command)]
    if isinstance(node, AndOr):
        return [r for pipeline in node.pipelines for r in group_redirects(pipeline)]
    if isinstance(node, Sequence):
        return [r for and_or, _ in node.items for r in group_redirects(and_or)]
    return []


def comparable(bash: Bash, tree: Sequence) -> bool:
    """Prepare the files a group's redirections open; False when one could fail anyway."""
    for redirect in group_redirects(tree):
        target = redirect.file
        if target is None or target == "/dev/null":
            continue
        if target.startswith(("/", "~")) or ".." in target.split("/") or "/" in target:
            return False
        (bash.home / target).touch(exist_ok=True)
        (bash.home / target).chmod(0o666)
    return True


def assert_bash_agrees(bash: Bash, command: str) -> bool:
    """Compare bash's reading of ``command`` with the engine's; False when it cannot be compared."""
    script = parse(command)
    assert script.tree is not None and not script.unsure, f"allowed but not fully understood: {command!r}"
    if not comparable(bash, script.tree):
        return False
    ran: list[Simple] = []
    executed(script.tree, ran)
    assert sorted(bash.commands(command)) == sorted(bash_print(c) for c in ran), f"structure differs for {command!r}"
    words = [w for c in ran for w in words_of(c)]
    if words:
        assert bash.values([w.raw for w in words]) == [w.value for w in words], f"word values differ for {command!r}"
    return True


def corpus_commands() -> list[str]:
    found: list[str] = []
    for name in ("policy_corpus.yaml", "policy_attacks.yaml"):
        data = yaml.safe_load((ROOT / "tests" / name).read_text(encoding="utf-8"))
        cases = data["cases"] if "cases" in data else [c for group in data["classes"].values() for c in group]
        for case in cases:
            for spec in (case, case.get("approve_always") or {}):
                if isinstance(spec.get("cmd"), str):
                    found.append(spec["cmd"])
    for rule in POLICY.rules:
        for example in (*rule.match, *rule.not_match):
            text = example if isinstance(example, str) else example.arguments.get("command")
            if isinstance(text, str) and rule.command:
                found.append(text)
    return list(dict.fromkeys(found))


CORPUS_COMMANDS = corpus_commands()
SAMPLES = [
    "ls -la", "git status", "A=1 B='x y' ls -la \"a b\" a\\ b >out 2>&1 <in", "echo '$(rm -rf /)'",
    "echo \"\\$(rm -rf /)\"", "ls # ; rm -rf /", "ls \\\n-la", "ls x:~/y", "cd build && make || echo failed",
    "! ls | wc -l", "(cd a; ls) > out", "{ ls; pwd; } 2>/dev/null", "ls >&2 3<&0 1>&- 2>>e >|f <<<word",
    "echo a#b c\\#d '#e'", "printf '%s\\n' \"a\\\"b\" 'c'\"'\"'d'", "echo {} {x}", "echo a=b --c=d",
    "true &\nls", "echo \"a\\\nb\" 'c\\\nd'", "'if' x; \"then\" y", "echo é ✓ 'ü'", "ls ;", "ls&", "ls|cat",
    "x=1", "x=1 y=2", ">out", "ls 2 >x", "echo -- -rf", "echo \\", "echo $", "echo a$", "echo \"$\"",
]


def test_the_oracle_reads_what_it_should(bash: Bash):
    """The oracle itself: bash's print of a known line, and values of known words."""
    assert bash.commands("A=1 ls  -la 'x y' >out 2>&1; echo hi && pwd || date") == [
        "A=1 ls -la 'x y' > out 2>&1", "echo hi", "pwd"]
    assert bash.values(["a\\ b", "'c'\"d\"", "e"]) == ["a b", "cd", "e"]
    assert bash.commands("echo $(touch pwned) `touch pwned` <(touch pwned)") and not (bash.home / "pwned").exists()


@pytest.mark.parametrize("command", SAMPLES)
def test_bash_agrees_on_samples(bash: Bash, command: str):
    assert allowed(command), command
    assert assert_bash_agrees(bash, command)


def test_bash_agrees_on_every_allowed_corpus_command(bash: Bash):
    allowed_commands = [c for c in CORPUS_COMMANDS if allowed(c)]
    assert len(allowed_commands) >= 40, "the corpora must hold enough allowed commands to compare"
    assert all([assert_bash_agrees(bash, command) for command in allowed_commands])


# --- generated lines --------------------------------------------------------------------------------

_PLAIN = st.sampled_from(["ls", "git", "status", "-la", "--opt=v", "a=b", "x", "2", "~", "a~", "x:~/y", "a#b", "{}",
                          "{a,b}", "a*", "[x]", "é", "-", "--", "if", "then", "{", "}", "!", "time", "done", "-rf",
                          "a=~/x", "A+=b", "a[1]=x", "{x}", "~user", "x=$y", "@(a)", "!(a)", "in", "[[", "]]", "coproc"])
_CHARS = st.sampled_from(list("ab $`\\'\"#;&|()<>{}*?[]~=:\t\n-!@%^,.0123/+")
                         + ["\r", "\x0b", "\x00", "\x1b", "\x7f", "\x85", "\u00a0", "\u200b", "\u202e", "\u3000",
                            "\ufeff", "é", "✓"])
_QUOTED = st.one_of(
    st.text(_CHARS, max_size=6).filter(lambda t: "'" not in t).map(lambda t: f"'{t}'"),
    st.text(_CHARS, max_size=6).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.text(_CHARS, min_size=1, max_size=3).map(lambda t: "".join("\\" + c for c in t)),
    st.sampled_from(["$x", "${x}", "$(ls)", "`ls`", "$'a\\x41'", '$"a"', "$((1))", "\\\n"]),
)
_WORD = st.lists(st.one_of(_PLAIN, _QUOTED), min_size=1, max_size=3).map("".join)
_REDIRECT = st.sampled_from([">x", "2>&1", "<y", ">>z", "&>w", "2>/dev/null", "<<<word", ">&2", "3<&0", "1>&-",
                             ">|q", "2> e", ">&f", "<&-", "0<>rw", "01>x", "3>&4-", ">&-x", "&>>a", "2>>'q r'",
                             "99999999999>x", "<&0-"])
_SIMPLE = st.lists(st.one_of(_WORD, _WORD, _WORD, _REDIRECT), min_size=1, max_size=5).map(" ".join)
_OPERATOR = st.sampled_from([" ; ", " && ", " || ", " | ", " & ", "\n", " |& ", ";", "&&", "|"])


@st.composite
def command_lines(draw) -> str:
    parts = [draw(_SIMPLE)]
    for _ in range(draw(st.integers(0, 3))):
        parts += [draw(_OPERATOR), draw(_SIMPLE)]
    line = "".join(parts)
    wrap = draw(st.sampled_from(["{}", "( {} )", "{{ {}; }}", "! {}", "{} # note", "{}\n", "  {}  "]))
    return wrap.format(line)


HOSTILE = st.text(_CHARS, min_size=1, max_size=24)
MUTATED = st.tuples(st.sampled_from(CORPUS_COMMANDS + SAMPLES), st.integers(0, 80), st.text(_CHARS, max_size=3)).map(
    lambda t: t[0][:t[1]] + t[2] + t[0][t[1]:])
"""A corpus command with a few hostile characters inserted somewhere."""
GENERATED = settings(max_examples=600, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow])
"""Derandomized: the same lines on every run (about 40 s on 2 loaded CPUs). A deeper, random search
is one edit of ``max_examples`` and ``derandomize`` away: while this was written, the final reader
was checked that way on 60,000 random lines (two runs of 10,000 per strategy), 10,757 of them
allowed and compared, with no difference in reading."""


@pytest.mark.parametrize(("strategy", "least_allowed"), [(command_lines(), 100), (HOSTILE, 20), (MUTATED, 50)],
                         ids=["structured", "hostile", "mutated-corpus"])
def test_bash_agrees_on_generated_lines(bash: Bash, strategy, least_allowed: int):
    """Every generated line the engine allows reads the same in bash; enough of them are allowed
    for the comparison to mean something."""
    compared: list[str] = []

    @GENERATED
    @given(line=strategy)
    def check(line: str) -> None:
        if allowed(line) and assert_bash_agrees(bash, line):
            compared.append(line)

    check()
    assert len(compared) >= least_allowed, f"only {len(compared)} generated lines were allowed"
