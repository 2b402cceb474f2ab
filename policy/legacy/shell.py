"""The shell reader of policy engine 1, frozen with ``policy/legacy/engine.py`` (see there).

A small POSIX-shell lexer that splits a command line into the simple commands it would run.

Why not just ``shlex``: the policy must see *every* command a line can start — after ``;``,
``&&``, ``|``, inside ``$(…)`` and backticks, inside ``bash -c '…'`` and ``eval``, behind
``sudo``/``env``/``xargs``/``timeout``, in ``find -exec`` — and must know when it cannot tell
(unbalanced quotes, here-documents, a command name computed at run time). This module does only
that. It is pure and deterministic (no I/O, no globals that change) so the workflow can call it.

What it refuses (reported in ``ParsedCommand.errors``, which the policy turns into "ask"):
unterminated quotes or substitutions, here-documents, ``for``/``case``/``select``/function
definitions, stray parentheses, operators with a missing side, nesting deeper than
``MAX_DEPTH``. Segments parsed before an error are still returned, so a ``rm -rf /`` in front of
an unbalanced quote is still denied.

What it marks but keeps (``Segment.problem`` / ``Segment.dynamic``): a command word that is
computed (``$CMD``, ``$(…)``, globs, brace expansion), and arguments whose value is only known at
run time (expansions, globs that may expand to ``-rf``, ``xargs`` input). Such segments can be
denied but never allowed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

MAX_DEPTH = 12
"""Nesting limit for substitutions and ``bash -c`` strings; deeper is refused."""
MAX_UNWRAP = 16

_METACHARS = frozenset(" \t\r\n;&|()<>")
_OPERATORS = (  # longest first
    ";;&", "&>>", "<<<", "<<-",
    ";;", ";&", "&&", "||", "|&", "&>", ">>", ">|", ">&", "<&", "<<", "<>",
    ";", "&", "|", "(", ")", "<", ">", "\n",
)
_BINARY = frozenset({"&&", "||", "|", "|&"})
_REDIRECTS = frozenset({"<", ">", ">>", ">|", "<>", "&>", "&>>", ">&", "<&", "<<<", "<<", "<<-"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
_BRACE_EXPANSION = re.compile(r"\{[^{}\s]*(,|\.\.)[^{}\s]*\}")
_PREFIX_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{"})
_CLOSING_KEYWORDS = frozenset({"fi", "done", "}", "esac"})
_UNSUPPORTED_KEYWORDS = frozenset({"for", "case", "select", "function", "coproc", "in"})
_PARAMETER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]")
_HEX_DIGITS = {"x": re.compile(r"[0-9A-Fa-f]{1,2}"), "u": re.compile(r"[0-9A-Fa-f]{1,4}"),
               "U": re.compile(r"[0-9A-Fa-f]{1,8}")}
_OCTAL_DIGITS = re.compile(r"[0-7]{0,2}")
_ANSI_C = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r",
           "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}


class ShellSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Word:
    value: str
    """Quotes removed; expansions (``$X``, ``$(…)``, backticks) kept as written."""
    quoted: bool = False
    """Some part was quoted or escaped (so it is never a keyword or operator)."""
    dynamic: bool = False
    """Contains an expansion whose value is only known when the command runs."""
    pattern: bool = False
    """Contains unquoted pathname (``* ? [``) or brace (``{a,b}``) expansion."""


@dataclass(frozen=True)
class Segment:
    """One simple command the line would run, after unwrapping."""

    argv: tuple[str, ...]
    redirects: tuple[tuple[str, str], ...] = ()
    """``(operator, target)`` pairs, e.g. ``(">", "out.txt")``."""
    assignments: tuple[str, ...] = ()
    wrappers: tuple[str, ...] = ()
    """Wrappers stripped in front of it (``sudo``, ``env``, ``xargs``…), outermost first."""
    dynamic: tuple[str, ...] = ()
    """Arguments whose value is only known at run time."""
    problem: str | None = None
    """Why this segment cannot be judged reliably (it can then be denied, never allowed)."""

    @property
    def command(self) -> str:
        return self.argv[0] if self.argv else ""

    @property
    def text(self) -> str:
        """The canonical form command patterns match and people read."""
        parts = [shlex.join(self.argv)] if self.argv else list(self.assignments)
        parts += [f"{op} {shlex.quote(target)}" for op, target in self.redirects]
        return " ".join(p for p in parts if p)

    @property
    def redirect_targets(self) -> tuple[str, ...]:
        """Files the redirections read or write (not fd duplications nor here-strings)."""
        return tuple(
            target for op, target in self.redirects
            if op != "<<<" and not (op in (">&", "<&") and (target.isdigit() or target == "-"))
        )


@dataclass(frozen=True)
class ParsedCommand:
    segments: tuple[Segment, ...]
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def split_command(command: str) -> ParsedCommand:
    """Every simple command ``command`` would run, outermost first; see the module docstring."""
    splitter = _Splitter()
    splitter.parse(command, depth=0)
    return ParsedCommand(tuple(splitter.segments), tuple(splitter.errors))


def command_basename(word: str) -> str:
    """``/usr/bin/rm`` → ``rm``; ``./x/`` → ``x`` (the name a shell would look up last)."""
    stripped = word.rstrip("/")
    return stripped.rsplit("/", 1)[-1] if "/" in stripped else word


# --- lexer -------------------------------------------------------------------------------------


@dataclass
class _Op:
    value: str


class _Lexer:
    """Turns text into ``Word`` and ``_Op`` tokens; collects the sources of command substitutions."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.substitutions: list[str] = []
        self.out: list[Word | _Op] = []
        """Tokens so far; still meaningful after a ``ShellSyntaxError``."""

    def tokens(self) -> list[Word | _Op]:
        out = self.out
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in " \t\r":
                self.pos += 1
            elif c == "\\" and text.startswith("\\\n", self.pos):
                self.pos += 2
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif c in "<>" and text.startswith("(", self.pos + 1):
                out.append(self._word())  # process substitution <(…) / >(…)
            elif c in _METACHARS:
                op = next(o for o in _OPERATORS if text.startswith(o, self.pos))
                self.pos += len(op)
                out.append(_Op(op))
            else:
                word = self._word()
                if word.value.isdigit() and not word.quoted and self.pos < len(text) and text[self.pos] in "<>":
                    continue  # a file descriptor number before a redirection: 2>err.log
                out.append(word)
        return out

    def _word(self) -> Word:
        text = self.text
        value: list[str] = []
        unquoted: list[str] = []  # the unquoted characters, to spot glob and brace expansion
        quoted = dynamic = False
        while self.pos < len(text):
            c = text[self.pos]
            if c in "<>" and text.startswith("(", self.pos + 1):
                inner = self._balanced(self.pos + 2, "(", ")")
                self.substitutions.append(inner)
                value.append(f"{c}({inner})")
                dynamic = True
                continue
            if c in _METACHARS:
                break
            if c == "\\":
                if text.startswith("\\\n", self.pos):
                    self.pos += 2
                    continue
                quoted = True
                if self.pos + 1 < len(text):
                    value.append(text[self.pos + 1])
                    unquoted.append("\0")
                self.pos += 2
            elif c == "'":
                end = text.find("'", self.pos + 1)
                if end < 0:
                    raise ShellSyntaxError("unterminated single quote")
                value.append(text[self.pos + 1:end])
                quoted = True
                self.pos = end + 1
            elif c == '"':
                self.pos += 1
                part, has_expansion = self._double_quoted()
                value.append(part)
                quoted = True
                dynamic = dynamic or has_expansion
            elif c == "$":
                part, is_dynamic, is_quoted = self._dollar()
                value.append(part)
                dynamic = dynamic or is_dynamic
                quoted = quoted or is_quoted
            elif c == "`":
                value.append(self._backticks())
                dynamic = True
            else:
                value.append(c)
                unquoted.append(c)
                self.pos += 1
        bare = "".join(unquoted)
        pattern = any(ch in bare for ch in "*?[") or bool(_BRACE_EXPANSION.search(bare))
        return Word("".join(value), quoted=quoted, dynamic=dynamic, pattern=pattern)

    def _double_quoted(self) -> tuple[str, bool]:
        text = self.text
        out: list[str] = []
        dynamic = False
        while self.pos < len(text):
            c = text[self.pos]
            if c == '"':
                self.pos += 1
                return "".join(out), dynamic
            if c == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] in '$`"\\\n':
                if text[self.pos + 1] != "\n":
                    out.append(text[self.pos + 1])
                self.pos += 2
            elif c == "$":
                part, is_dynamic, _ = self._dollar(in_double_quotes=True)
                out.append(part)
                dynamic = dynamic or is_dynamic
            elif c == "`":
                out.append(self._backticks())
                dynamic = True
            else:
                out.append(c)
                self.pos += 1
        raise ShellSyntaxError("unterminated double quote")

    def _dollar(self, in_double_quotes: bool = False) -> tuple[str, bool, bool]:
        """An expansion starting at ``$``: (text as written or decoded, dynamic, quoted)."""
        text = self.text
        nxt = text[self.pos + 1] if self.pos + 1 < len(text) else ""
        if nxt == "'" and not in_double_quotes:
            self.pos += 2
            return self._ansi_c(), False, True
        if nxt == '"' and not in_double_quotes:
            self.pos += 2
            part, dynamic = self._double_quoted()
            return part, dynamic, True
        if text.startswith("$((", self.pos):
            inner = self._balanced(self.pos + 3, "(", ")", closing="))")
            if "$(" in inner or "`" in inner:
                raise ShellSyntaxError("command substitution inside arithmetic expansion")
            return f"$(({inner}))", True, False
        if nxt == "(":
            inner = self._balanced(self.pos + 2, "(", ")")
            self.substitutions.append(inner)
            return f"$({inner})", True, False
        if nxt == "{":
            inner = self._balanced(self.pos + 2, "{", "}")
            if "$(" in inner or "`" in inner or "<(" in inner or ">(" in inner:
                raise ShellSyntaxError("command substitution inside ${…}")
            return f"${{{inner}}}", True, False
        match = _PARAMETER.match(text, self.pos + 1)
        if match:
            self.pos = match.end()
            return "$" + match.group(), True, False
        self.pos += 1
        return "$", False, False

    def _balanced(self, start: int, open_: str, close: str, closing: str | None = None) -> str:
        """The text from ``start`` to the matching ``close`` (quotes and nesting respected)."""
        text = self.text
        depth, i = 1, start
        while i < len(text):
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if c == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise ShellSyntaxError("unterminated single quote")
                i = end + 1
                continue
            if c in '"`':
                i = self._skip_quoted(i, c)
                continue
            if c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    if closing and not text.startswith(closing, i):
                        raise ShellSyntaxError("unbalanced arithmetic expansion")
                    self.pos = i + len(closing or close)
                    return text[start:i]
            i += 1
        raise ShellSyntaxError(f"unterminated {open_}…{close}")

    def _skip_quoted(self, i: int, quote: str) -> int:
        text = self.text
        i += 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
            elif text[i] == quote:
                return i + 1
            else:
                i += 1
        raise ShellSyntaxError("unterminated double quote" if quote == '"' else "unterminated backtick")

    def _backticks(self) -> str:
        end = self._skip_quoted(self.pos, "`")
        source = self.text[self.pos + 1:end - 1]
        inner = re.sub(r"\\([\\`$])", r"\1", source)
        self.substitutions.append(inner)
        self.pos = end
        return f"`{source}`"

    def _ansi_c(self) -> str:
        """Decode ``$'…'`` (position just after the opening quote)."""
        text = self.text
        out: list[str] = []
        while self.pos < len(text):
            c = text[self.pos]
            if c == "'":
                self.pos += 1
                return "".join(out)
            if c != "\\" or self.pos + 1 >= len(text):
                out.append(c)
                self.pos += 1
                continue
            esc = text[self.pos + 1]
            self.pos += 2
            if esc in _ANSI_C:
                out.append(_ANSI_C[esc])
            elif esc in "xuU":
                digits = _HEX_DIGITS[esc].match(text, self.pos)
                if not digits:
                    out.append("\\" + esc)
                    continue
                self.pos = digits.end()
                out.append(chr(min(int(digits.group(), 16), 0x10FFFF)))
            elif esc in "01234567":
                digits = _OCTAL_DIGITS.match(text, self.pos)
                assert digits is not None
                self.pos = digits.end()
                out.append(chr(int(esc + digits.group(), 8)))
            elif esc == "c" and self.pos < len(text):
                out.append(chr(ord(text[self.pos]) & 0x1F))
                self.pos += 1
            else:
                out.append("\\" + esc)
        raise ShellSyntaxError("unterminated $'…' string")


# --- parser ------------------------------------------------------------------------------------


@dataclass
class _Unwrapped:
    """What a wrapper such as ``sudo`` turns into."""

    run: list[Word] | None = None
    """The command it runs, to unwrap further; ``None``: the wrapper itself is the segment."""
    scripts: list[Word] = field(default_factory=list)
    """Strings it runs as shell source (``bash -c``, ``eval``); the wrapper is not a segment."""
    also: list[list[Word]] = field(default_factory=list)
    """Further commands it runs besides itself (``find -exec``)."""
    dynamic_input: str | None = None
    """The run command gets extra arguments only known at run time (``xargs``)."""


class _Splitter:
    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.errors: list[str] = []

    def parse(self, text: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.errors.append("commands nested too deeply")
            return
        lexer = _Lexer(text)
        try:
            lexer.tokens()
        except ShellSyntaxError as err:
            self.errors.append(str(err))  # still judge what came before the error
        # Substitutions run before the command they appear in.
        for inner in lexer.substitutions:
            self.parse(inner, depth + 1)
        try:
            self._commands(lexer.out, depth)
        except ShellSyntaxError as err:
            self.errors.append(str(err))

    def _commands(self, tokens: list[Word | _Op], depth: int) -> None:
        words: list[Word] = []
        redirects: list[tuple[str, str]] = []
        subshells = 0
        previous: str | None = "start"  # the operator before the current command
        i = 0
        while i < len(tokens):
            token = tokens[i]
            i += 1
            if isinstance(token, Word):
                words.append(token)
                continue
            op = token.value
            if op in _REDIRECTS:
                if op in ("<<", "<<-"):
                    raise ShellSyntaxError("here-documents are not supported")
                if i >= len(tokens) or not isinstance(tokens[i], Word):
                    raise ShellSyntaxError(f"redirection {op} without a target")
                target = tokens[i]
                assert isinstance(target, Word)
                redirects.append((op, target.value))
                i += 1
                continue
            if op == "(":
                if words or redirects:
                    raise ShellSyntaxError("unexpected ( (function definitions and the like are not supported)")
                subshells += 1
                previous = "("
                continue
            if op == ")":
                if subshells == 0:
                    raise ShellSyntaxError("unbalanced )")
                subshells -= 1
            elif op in (";;", ";&", ";;&"):
                raise ShellSyntaxError("case statements are not supported")
            empty = not words and not redirects
            if op in _BINARY and empty and previous != ")":
                raise ShellSyntaxError(f"{op} without a command before it")
            if op in (";", "&") and empty and previous in ("start", "&&", "||", "|", "|&"):
                raise ShellSyntaxError(f"{op} without a command before it")
            if not empty:
                self._simple_or_error(words, redirects, depth)
            words, redirects = [], []
            previous = op
        if words or redirects:
            self._simple_or_error(words, redirects, depth)
        elif previous in _BINARY:
            raise ShellSyntaxError(f"{previous} without a command after it")
        if subshells:
            raise ShellSyntaxError("unbalanced (")

    def _simple_or_error(self, words: list[Word], redirects: list[tuple[str, str]], depth: int) -> None:
        """A command that cannot be understood is an error, but the commands after it are still judged."""
        try:
            self._simple(words, redirects, depth)
        except ShellSyntaxError as err:
            self.errors.append(str(err))

    def _simple(self, words: list[Word], redirects: list[tuple[str, str]], depth: int) -> None:
        """One simple command: keywords, assignments, then wrappers peeled off one by one."""
        words = list(words)
        while words and not words[0].quoted and words[0].value in _PREFIX_KEYWORDS:
            words.pop(0)
        if words and not words[0].quoted and words[0].value in _CLOSING_KEYWORDS:
            if len(words) > 1:
                raise ShellSyntaxError(f"unexpected words after {words[0].value}")
            words.pop(0)
        if words and not words[0].quoted and words[0].value in _UNSUPPORTED_KEYWORDS:
            raise ShellSyntaxError(f"'{words[0].value}' is not supported")
        assignments = []
        while words and _ASSIGNMENT.match(words[0].value):
            assignments.append(words.pop(0).value)
        if not words:
            if assignments or redirects:
                self.segments.append(Segment((), tuple(redirects), tuple(assignments)))
            return
        self._unwrap(words, tuple(redirects), tuple(assignments), depth)

    def _unwrap(self, words: list[Word], redirects: tuple, assignments: tuple, depth: int,
                wrappers: tuple[str, ...] = (), dynamic_input: str | None = None) -> None:
        for _ in range(MAX_UNWRAP):
            head = words[0]
            if head.dynamic or head.pattern:
                self._emit(words, redirects, assignments, wrappers, dynamic_input,
                           problem=f"the command name {head.value!r} is only known at run time")
                return
            name = command_basename(head.value)
            words = [Word(name, quoted=head.quoted), *words[1:]]
            handler = _WRAPPERS.get(name) or (_shell if name in _SHELLS else None)
            result = handler(words) if handler else None
            if result is None:
                self._emit(words, redirects, assignments, wrappers, dynamic_input)
                return
            for more in result.also:
                if more:
                    self._unwrap(more, (), (), depth, (*wrappers, name))
            for script in result.scripts:
                self.parse(script.value, depth + 1)
            if result.run is None:
                if not result.scripts:
                    self._emit(words, redirects, assignments, wrappers, dynamic_input)
                if name in _SHELLS:  # bash <<< 'source' reads its program from the here-string
                    for op, target in redirects:
                        if op == "<<<":
                            self.parse(target, depth + 1)
                return
            wrappers = (*wrappers, name)
            dynamic_input = dynamic_input or result.dynamic_input
            words = result.run
            while words and _ASSIGNMENT.match(words[0].value):
                assignments = (*assignments, words.pop(0).value)
            if not words:
                self._emit([Word(name)], redirects, assignments, wrappers[:-1], dynamic_input)
                return
        self.errors.append("too many nested wrappers")

    def _emit(self, words: list[Word], redirects: tuple, assignments: tuple, wrappers: tuple,
              dynamic_input: str | None, problem: str | None = None) -> None:
        dynamic = tuple(w.value for w in words[1:] if w.dynamic or w.pattern)
        if dynamic_input:
            dynamic = (*dynamic, dynamic_input)
        self.segments.append(Segment(
            argv=tuple(w.value for w in words), redirects=redirects, assignments=assignments,
            wrappers=wrappers, dynamic=dynamic, problem=problem,
        ))


# --- wrappers ----------------------------------------------------------------------------------


def _options(words: list[Word], start: int = 1, with_arg: str = "", long_with_arg: tuple[str, ...] = (),
             numeric: bool = False) -> tuple[int, set[str]]:
    """Skip options from ``start``: returns (index of the first operand, letters/longs seen).

    ``with_arg`` lists short letters that take a value (attached or as the next word);
    ``numeric`` treats ``-10`` as an option (``nice``). Unknown options are skipped as flags,
    which errs towards judging a later word as the command — never towards skipping one.
    """
    seen: set[str] = set()
    i = start
    while i < len(words):
        arg = words[i].value
        if arg == "--":
            return i + 1, seen
        if arg.startswith("--") and len(arg) > 2:
            name = arg.split("=", 1)[0]
            seen.add(name)
            i += 2 if (name in long_with_arg and "=" not in arg) else 1
            continue
        if not arg.startswith("-") or arg == "-":
            return i, seen
        if numeric and arg[1:].isdigit():
            i += 1
            continue
        i += 1
        for pos, letter in enumerate(arg[1:], start=1):
            seen.add(letter)
            if letter in with_arg:
                if pos == len(arg) - 1:
                    i += 1  # the value is the next word
                break
    return i, seen


def _rest(words: list[Word], i: int) -> list[Word] | None:
    return words[i:] or None


def _env(words: list[Word]) -> _Unwrapped | None:
    i = 1
    while i < len(words):
        arg = words[i].value
        if arg == "--":
            i += 1
            break
        if arg in ("-S", "--split-string"):  # env -S "cmd args": judged as shell source (stricter)
            source = words[i + 1].value if i + 1 < len(words) else ""
            return _Unwrapped(scripts=[_joined([Word(source), *words[i + 2:]])])
        if arg.startswith(("-S", "--split-string=")):
            source = arg.split("=", 1)[1] if arg.startswith("--") else arg[2:]
            return _Unwrapped(scripts=[_joined([Word(source), *words[i + 1:]])])
        if arg in ("-u", "-C", "-P", "--unset", "--chdir"):
            i += 2
        elif arg.startswith("-"):  # -i, -, -0, -v, --unset=NAME, -uNAME…
            i += 1
        else:
            break
    while i < len(words) and _ASSIGNMENT.match(words[i].value):
        i += 1
    return _Unwrapped(run=_rest(words, i))


def _sudo(words: list[Word]) -> _Unwrapped | None:
    i, seen = _options(words, with_arg="ugpChDrtTU", long_with_arg=(
        "--user", "--group", "--host", "--prompt", "--close-from", "--chdir", "--role", "--type",
        "--command-timeout", "--other-user"))
    if "e" in seen or "--edit" in seen:
        return _Unwrapped()  # sudoedit: judged as itself
    run = _rest(words, i)
    if run and ({"s", "i"} & seen or {"--shell", "--login"} & seen):
        return _Unwrapped(scripts=[_joined(run)])  # sudo -s CMD runs "$SHELL -c CMD"
    return _Unwrapped(run=run)


def _doas(words: list[Word]) -> _Unwrapped | None:
    i, _ = _options(words, with_arg="uC")
    return _Unwrapped(run=_rest(words, i))


def _xargs(words: list[Word]) -> _Unwrapped | None:
    i, _ = _options(words, with_arg="adEILnPs", long_with_arg=(
        "--arg-file", "--delimiter", "--eof", "--replace", "--max-lines", "--max-args", "--max-procs",
        "--max-chars", "--process-slot-var"))
    run = _rest(words, i)
    if run is None:
        return _Unwrapped()  # runs echo
    return _Unwrapped(run=run, dynamic_input="arguments read by xargs from its input")


def _plain(words: list[Word]) -> _Unwrapped | None:
    """``nohup``, ``builtin``, ``setsid``, ``busybox``…: options, then the command."""
    i, _ = _options(words)
    return _Unwrapped(run=_rest(words, i))


def _time(words: list[Word]) -> _Unwrapped | None:
    i, _ = _options(words, with_arg="fo", long_with_arg=("--format", "--output"))
    return _Unwrapped(run=_rest(words, i))


def _nice(words: list[Word]) -> _Unwrapped | None:
    i, _ = _options(words, with_arg="n", long_with_arg=("--adjustment",), numeric=True)
    return _Unwrapped(run=_rest(words, i))


def _timeout(words: list[Word]) -> _Unwrapped | None:
    i, _ = _options(words, with_arg="sk", long_with_arg=("--signal", "--kill-after"))
    return _Unwrapped(run=_rest(words, i + 1))  # skip the duration


def _command(words: list[Word]) -> _Unwrapped | None:
    i, seen = _options(words)
    if {"v", "V"} & seen:
        return _Unwrapped()  # command -v NAME only looks NAME up
    return _Unwrapped(run=_rest(words, i))


def _exec(words: list[Word]) -> _Unwrapped | None:
    i, _ = _options(words, with_arg="a")
    return _Unwrapped(run=_rest(words, i))


def _stdbuf(words: list[Word]) -> _Unwrapped | None:
    i, _ = _options(words, with_arg="ioe", long_with_arg=("--input", "--output", "--error"))
    return _Unwrapped(run=_rest(words, i))


def _ionice(words: list[Word]) -> _Unwrapped | None:
    i, seen = _options(words, with_arg="cnpPu", long_with_arg=("--class", "--classdata", "--pid", "--pgid", "--uid"))
    return _Unwrapped() if {"p", "P", "u"} & seen else _Unwrapped(run=_rest(words, i))


def _one_operand_then_command(words: list[Word]) -> _Unwrapped | None:
    """``chroot DIR cmd``, ``taskset MASK cmd``: options, one operand, then the command."""
    i, seen = _options(words, long_with_arg=("--userspec", "--groups"))
    if "p" in seen:
        return _Unwrapped()
    return _Unwrapped(run=_rest(words, i + 1))


def _watch(words: list[Word]) -> _Unwrapped | None:
    i, _ = _options(words, with_arg="nq", long_with_arg=("--interval",))
    rest = _rest(words, i)
    return _Unwrapped(scripts=[_joined(rest)]) if rest else _Unwrapped()  # watch runs sh -c "…"


def _flock(words: list[Word]) -> _Unwrapped | None:
    i, _ = _options(words, with_arg="wE", long_with_arg=("--timeout", "--conflict-exit-code"))
    i += 1  # the lock file (or fd)
    if i < len(words) and words[i].value in ("-c", "--command"):
        return _Unwrapped(scripts=words[i + 1:i + 2]) if i + 1 < len(words) else _Unwrapped()
    return _Unwrapped(run=_rest(words, i))


def _su(words: list[Word]) -> _Unwrapped | None:
    for index, word in enumerate(words[1:], start=1):
        if word.value in ("-c", "--command") and index + 1 < len(words):
            return _Unwrapped(scripts=[words[index + 1]])
        if word.value.startswith("--command="):
            return _Unwrapped(scripts=[Word(word.value.split("=", 1)[1], dynamic=word.dynamic)])
    return _Unwrapped()


def _alias(words: list[Word]) -> _Unwrapped | None:
    """``alias x='rm -rf /'`` defines shell source that a later ``x`` runs: judge it now."""
    scripts = [Word(w.value.split("=", 1)[1]) for w in words[1:] if "=" in w.value]
    return _Unwrapped(scripts=scripts) if scripts else _Unwrapped()


def _trap(words: list[Word]) -> _Unwrapped | None:
    """``trap 'source' SIGNAL…`` runs its first operand as shell source."""
    i, seen = _options(words)
    if {"l", "p"} & seen or i >= len(words) or words[i].value == "-":
        return _Unwrapped()
    return _Unwrapped(scripts=[words[i]])


def _runuser(words: list[Word]) -> _Unwrapped | None:
    """``runuser -l user -c 'source'`` like ``su``; ``runuser -u user -- cmd`` like ``sudo``."""
    if any(w.value in ("-c", "--command") or w.value.startswith("--command=") for w in words[1:]):
        return _su(words)
    i, _ = _options(words, with_arg="ugGw", long_with_arg=("--user", "--group", "--supp-group"))
    return _Unwrapped(run=_rest(words, i))


def _strace(words: list[Word]) -> _Unwrapped | None:
    i, _ = _options(words, with_arg="abeEIopPsSuUX")
    return _Unwrapped(run=_rest(words, i))


def _systemd_run(words: list[Word]) -> _Unwrapped | None:
    i, _ = _options(words, with_arg="pEMu", long_with_arg=(
        "--unit", "--property", "--description", "--slice", "--setenv", "--uid", "--gid", "--working-directory",
        "--machine", "--host", "--nice", "--on-active", "--on-calendar"))
    return _Unwrapped(run=_rest(words, i))


def _parallel(words: list[Word]) -> _Unwrapped | None:
    i, _ = _options(words, with_arg="jSdEIa", long_with_arg=("--jobs", "--sshlogin", "--delimiter", "--arg-file"))
    run = _rest(words, i)
    return _Unwrapped(run=run, dynamic_input="arguments supplied by parallel") if run else _Unwrapped()


def _eval(words: list[Word]) -> _Unwrapped | None:
    return _Unwrapped(scripts=[_joined(words[1:])]) if len(words) > 1 else _Unwrapped()


def _shell(words: list[Word]) -> _Unwrapped | None:
    """``bash -c 'source' name args…`` → the source; ``bash script.sh``/``bash`` → itself."""
    i = 1
    command_mode = False
    while i < len(words):
        arg = words[i].value
        if arg == "--":
            i += 1
            break
        if arg in ("-o", "+o", "--rcfile", "--init-file", "-O", "+O"):
            i += 2
            continue
        if arg.startswith("--") or (arg[:1] in "-+" and len(arg) > 1):
            if arg[:1] == "-" and not arg.startswith("--") and "c" in arg[1:]:
                command_mode = True
            i += 1
            continue
        break
    if not command_mode:
        return _Unwrapped()
    if i >= len(words):
        raise ShellSyntaxError(f"{words[0].value} -c without a command string")
    return _Unwrapped(scripts=[words[i]])


def _find(words: list[Word]) -> _Unwrapped | None:
    also: list[list[Word]] = []
    i = 1
    while i < len(words):
        if words[i].value in ("-exec", "-execdir", "-ok", "-okdir"):
            j = i + 1
            while j < len(words) and words[j].value not in (";", "+"):
                j += 1
            also.append(words[i + 1:j])
            i = j
        i += 1
    return _Unwrapped(also=also)


def _joined(words: list[Word]) -> Word:
    return Word(" ".join(w.value for w in words), dynamic=any(w.dynamic for w in words))


_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "yash", "fish", "rbash"})
_WRAPPERS = {
    "env": _env,
    "sudo": _sudo,
    "doas": _doas,
    "xargs": _xargs,
    "nohup": _plain,
    "builtin": _plain,
    "setsid": _plain,
    "busybox": _plain,
    "unbuffer": _plain,
    "time": _time,
    "nice": _nice,
    "timeout": _timeout,
    "command": _command,
    "exec": _exec,
    "stdbuf": _stdbuf,
    "ionice": _ionice,
    "chroot": _one_operand_then_command,
    "taskset": _one_operand_then_command,
    "watch": _watch,
    "flock": _flock,
    "su": _su,
    "runuser": _runuser,
    "script": _su,  # script -c 'source'
    "pkexec": _plain,
    "strace": _strace,
    "ltrace": _strace,
    "systemd-run": _systemd_run,
    "unshare": _plain,
    "parallel": _parallel,
    "eval": _eval,
    "alias": _alias,
    "trap": _trap,
    "find": _find,
}
