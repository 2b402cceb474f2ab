"""Reads a command line into words and operators exactly as bash does, and says where it is unsure.

The sandbox runs ``run_command`` with ``/bin/bash --noprofile --norc -c COMMAND`` (no ``BASH_ENV``,
no ``ENV``; see ``models/sandbox.py``), so this lexer follows bash's own reader (``parse.y``
``read_token``/``read_token_word``, checked against bash 5.2 by ``tests/test_policy_bash.py``):

- blanks are space and tab only; a newline is an operator; ``#`` starts a comment only at the start
  of a word; ``\\<newline>`` is removed outside single quotes; a backslash at the very end stays;
- ``'…'`` is literal; in ``"…"`` a backslash escapes only ``$ ` " \\`` and newline;
- a word of digits right before ``<`` or ``>`` is the file descriptor of that redirection;
- here-documents are read up to their delimiter line, like bash does after the next newline.

Whatever bash could read differently from what a person (or this lexer) reads is *unsure*: such a
line may still be judged for deny, but is never allowed. That covers control characters (``\\r``,
other C0, DEL, C1: bash keeps them inside words, a terminal does not show them), non-ASCII blanks
and invisible or format characters, ``$'…'`` and ``$"…"`` (decoded best-effort for deny),
arithmetic (``$((…))``, ``$[…]``), ``${…}`` holding a command substitution, named file descriptors
(``{fd}>x``), subscripted assignments and here-documents.

Pure and deterministic: no I/O, no state between calls (the workflow calls it).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

METACHARACTERS = frozenset(" \t\n;&|()<>")
BLANKS = " \t"
OPERATORS = (  # longest first
    "&>>", ";;&", "<<<", "<<-",
    ";;", ";&", "&&", "||", "|&", "&>", ">>", ">|", ">&", "<&", "<<", "<>",
    ";", "&", "|", "(", ")", "<", ">", "\n",
)
REDIRECTIONS = frozenset({"<", ">", ">>", ">|", "<>", "&>", "&>>", ">&", "<&", "<<<", "<<", "<<-"})
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
SUBSCRIPT_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[")
_PARAMETER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]")
_NAMED_FD = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_INT_MAX = 2**31 - 1
_BRACE_EXPANSION = re.compile(r"\{[^{}]*(,|\.\.)[^{}]*\}")
_HEX = {"x": re.compile(r"[0-9A-Fa-f]{1,2}"), "u": re.compile(r"[0-9A-Fa-f]{1,4}"),
        "U": re.compile(r"[0-9A-Fa-f]{1,8}")}
_OCTAL = re.compile(r"[0-7]{0,2}")
_ANSI_C = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r",
           "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}
_INVISIBLE = frozenset({0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x2800, 0x3164, 0xFFA0}
                       | set(range(0xFE00, 0xFE10)) | set(range(0xE0100, 0xE01F0)))
"""Visible-category code points that show nothing (fillers, variation selectors, braille blank)."""
_UNSURE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


class ShellSyntaxError(ValueError):
    """Bash would refuse this line (or this lexer cannot follow it): never allowed."""


@dataclass(frozen=True)
class Word:
    value: str
    """Quotes removed; expansions (``$X``, ``$(…)``, backticks) kept as written; ``$'…'`` decoded."""
    raw: str = ""
    """The word exactly as written (what bash itself prints for it)."""
    quoted: bool = False
    """Some part was quoted or escaped, so it is never a reserved word, an assignment name or an fd."""
    dynamic: bool = False
    """Holds an expansion whose value is only known when the command runs (``$X``, ``$(…)``, ``~``)."""
    pattern: bool = False
    """Holds unquoted pathname (``* ? [``) or brace (``{a,b}``) expansion."""
    unsure: str | None = None
    """Why bash may read it differently from what is shown (``$'…'``, arithmetic…)."""

    @property
    def static(self) -> bool:
        """Bash's value for it is exactly ``value``."""
        return not (self.dynamic or self.pattern or self.unsure)

    @property
    def plain(self) -> bool:
        """Written without any quoting or expansion: it may be a reserved word."""
        return not self.quoted and self.static and self.raw == self.value


@dataclass(frozen=True)
class Operator:
    value: str
    fd: str | None = None
    """The file descriptor written before a redirection: ``2`` in ``2>x``, ``{fd}`` in ``{fd}>x``."""
    start: int = 0
    """Offset in the text, to tell ``((`` from ``( (``."""


@dataclass
class Lexed:
    tokens: list[Word | Operator] = field(default_factory=list)
    substitutions: list[str] = field(default_factory=list)
    """Sources of command and process substitutions, to be read as commands of their own."""
    unsure: list[str] = field(default_factory=list)
    error: str | None = None
    """Why reading stopped; ``tokens`` holds what was read before."""


def lex(text: str) -> Lexed:
    """The tokens of ``text`` as bash reads them, with every reason to be unsure."""
    lexer = _Lexer(text)
    lexed = Lexed(tokens=lexer.out, substitutions=lexer.substitutions, unsure=lexer.unsure)
    lexed.unsure[:0] = unsure_characters(text)
    try:
        lexer.run()
    except ShellSyntaxError as err:
        lexed.error = str(err)
    return lexed


def unsure_characters(text: str) -> list[str]:
    """Characters a person would not see as bash reads them: one reason per kind found.

    Categories come from ``unicodedata``, whose tables follow the Python version: a code point
    unassigned in one version (unsure) may be a letter in the next. Workers replaying one history
    should run one Python minor version; only lines holding such a code point could differ."""
    found: dict[str, None] = {}
    for char in text:
        code = ord(char)
        if char in "\t\n" or 0x20 <= code < 0x7F:
            continue
        if code == 0x0D:
            found["a carriage return (bash keeps it inside the word; a terminal hides what precedes it)"] = None
        elif code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            found[f"a control character (U+{code:04X})"] = None
        elif code in _INVISIBLE or unicodedata.category(char) in _UNSURE_CATEGORIES:
            name = unicodedata.name(char, "unnamed")
            found[f"an invisible, blank-looking or unassigned character (U+{code:04X} {name})"] = None
    return list(found)


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.out: list[Word | Operator] = []
        self.substitutions: list[str] = []
        self.unsure: list[str] = []
        self.heredocs: list[tuple[int, str, bool, bool]] = []
        """Pending here-documents: (token index, delimiter, strip tabs, expand body)."""

    def run(self) -> None:
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in BLANKS:
                self.pos += 1
            elif text.startswith("\\\n", self.pos):
                self.pos += 2
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif c in "<>" and text.startswith("(", self.pos + 1):
                self.out.append(self._word())  # process substitution <(…) / >(…)
            elif c in METACHARACTERS:
                self._operator()
            else:
                self._word_or_fd()
        if self.heredocs:
            raise ShellSyntaxError("here-document without its delimiter line")

    def _operator(self) -> None:
        start = self.pos
        op = next(o for o in OPERATORS if self.text.startswith(o, start))
        self.pos += len(op)
        self.out.append(Operator(op, start=start))
        self._after_redirection(op)
        if op == "\n" and self.heredocs:
            self._heredoc_bodies()

    def _after_redirection(self, op: str) -> None:
        if op in ("<<", "<<-"):
            self._heredoc_header(strip=op == "<<-")
        elif op in ("<&", ">&") and self.text.startswith("-", self.pos):
            self.pos += 1  # bash reads the "-" of <&- / >&- as a token of its own, whatever follows
            self.out.append(Word("-", raw="-"))

    def _word_or_fd(self) -> None:
        word = self._word()
        nxt = self.text[self.pos:self.pos + 1]
        if nxt in ("<", ">") and not self.text.startswith("(", self.pos + 1):
            number = word.raw.isdigit() and int(word.raw) <= _INT_MAX  # bash: a larger number is a word
            if number or _NAMED_FD.fullmatch(word.raw):
                start = self.pos
                op = next(o for o in OPERATORS if self.text.startswith(o, start))
                if op in REDIRECTIONS:
                    if not number:
                        self.unsure.append(f"a named file descriptor ({word.raw}{op})")
                    self.pos += len(op)
                    self.out.append(Operator(op, fd=str(int(word.raw)) if number else word.raw, start=start))
                    self._after_redirection(op)
                    return
        self.out.append(word)

    # --- words ----------------------------------------------------------------------------

    def _word(self) -> Word:
        """One word, up to an unquoted metacharacter, with everything bash would do to it noted."""
        text = self.text
        start = self.pos
        word = _WordParts()
        while self.pos < len(text):
            c = text[self.pos]
            if c in "<>" and text.startswith("(", self.pos + 1):
                inner = self._balanced(self.pos + 2, "(", ")")
                self.substitutions.append(inner)
                word.add(f"{c}({inner})", dynamic=True)
            elif c in METACHARACTERS:
                break
            elif c == "\\":
                self._backslash(word)
            elif c == "'":
                end = text.find("'", self.pos + 1)
                if end < 0:
                    raise ShellSyntaxError("unterminated single quote")
                word.add(text[self.pos + 1:end], quoted=True)
                self.pos = end + 1
            elif c == '"':
                self.pos += 1
                part, dynamic, why = self._double_quoted()
                word.add(part, quoted=True, dynamic=dynamic, unsure=why)
            elif c == "$":
                part, dynamic, quoted, why = self._dollar()
                word.add(part, quoted=quoted, dynamic=dynamic, unsure=why, bare=not (quoted or dynamic))
            elif c == "`":
                word.add(self._backticks(), dynamic=True)
            else:
                word.add(c, bare=True)
                self.pos += 1
        raw = _without_continuations(text[start:self.pos]) + ("\\" if word.trailing_backslash else "")
        return word.finish(raw)

    def _backslash(self, word: _WordParts) -> None:
        """``\\<newline>`` disappears; ``\\x`` is a quoted ``x``; a backslash at the very end stays."""
        text = self.text
        if text.startswith("\\\n", self.pos):
            self.pos += 2
        elif self.pos + 1 >= len(text):
            word.add("\\", quoted=True)
            word.trailing_backslash = True  # bash keeps it, and prints it as \\
            self.pos += 1
        else:
            word.add(text[self.pos + 1], quoted=True)
            self.pos += 2

    def _double_quoted(self) -> tuple[str, bool, str | None]:
        """The inside of ``"…"`` (position after the quote): (value, dynamic, why unsure)."""
        text = self.text
        out: list[str] = []
        dynamic = False
        unsure: str | None = None
        while self.pos < len(text):
            c = text[self.pos]
            if c == '"':
                self.pos += 1
                return "".join(out), dynamic, unsure
            if c == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] in '$`"\\\n':
                if text[self.pos + 1] != "\n":
                    out.append(text[self.pos + 1])
                self.pos += 2
            elif c == "$":
                part, is_dynamic, _, why = self._dollar(in_double_quotes=True)
                out.append(part)
                dynamic = dynamic or is_dynamic
                unsure = unsure or why
            elif c == "`":
                out.append(self._backticks())
                dynamic = True
            else:
                out.append(c)
                self.pos += 1
        raise ShellSyntaxError("unterminated double quote")

    def _dollar(self, in_double_quotes: bool = False) -> tuple[str, bool, bool, str | None]:
        """An expansion at ``$``: (text as written or decoded, dynamic, quoted, why unsure)."""
        text = self.text
        nxt = text[self.pos + 1:self.pos + 2]
        if nxt == "'" and not in_double_quotes:
            self.pos += 2
            return self._ansi_c(), False, True, "ANSI-C quoting ($'…')"
        if nxt == '"' and not in_double_quotes:
            self.pos += 2
            part, dynamic, _ = self._double_quoted()
            return part, dynamic, True, 'locale translation quoting ($"…")'
        if text.startswith("$((", self.pos) or nxt == "[":
            start = self.pos
            if nxt == "[":
                inner = self._balanced(self.pos + 2, "[", "]")
            else:
                inner = self._balanced(self.pos + 3, "(", ")")
                if not text.startswith(")", self.pos):
                    raise ShellSyntaxError("unbalanced arithmetic expansion")
                self.pos += 1
            self._scan_for_substitutions(inner)
            return text[start:self.pos], True, False, "arithmetic expansion"
        if nxt == "(":
            inner = self._balanced(self.pos + 2, "(", ")")
            self.substitutions.append(inner)
            return f"$({inner})", True, False, None
        if nxt == "{":
            inner = self._balanced(self.pos + 2, "{", "}")
            why = self._scan_for_substitutions(inner)
            return f"${{{inner}}}", True, False, why
        match = _PARAMETER.match(text, self.pos + 1)
        if match:
            self.pos = match.end()
            return "$" + match.group(), True, False, None
        self.pos += 1
        return "$", False, False, None

    def _scan_for_substitutions(self, inner: str) -> str | None:
        """Command substitutions nested in ``${…}`` or arithmetic still run: read them too."""
        if not any(mark in inner for mark in ("$(", "`", "<(", ">(")):
            return None
        nested = lex(inner)
        self.substitutions.extend(nested.substitutions)
        return "a command substitution inside ${…} or arithmetic"

    def _balanced(self, start: int, open_: str, close: str) -> str:
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
                    self.pos = i + 1
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
        self.substitutions.append(re.sub(r"\\([\\`$])", r"\1", source))
        self.pos = end
        return f"`{source}`"

    def _ansi_c(self) -> str:
        """Decode ``$'…'`` (position just after the opening quote), best-effort: it stays unsure."""
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
            elif esc in _HEX:
                digits = _HEX[esc].match(text, self.pos)
                if not digits:
                    out.append("\\" + esc)
                    continue
                self.pos = digits.end()
                out.append(chr(min(int(digits.group(), 16), 0x10FFFF)))
            elif esc in "01234567":
                digits = _OCTAL.match(text, self.pos)
                assert digits is not None
                self.pos = digits.end()
                out.append(chr(int(esc + digits.group(), 8) & 0xFF))
            elif esc == "c" and self.pos < len(text):
                out.append(chr(ord(text[self.pos]) & 0x1F))
                self.pos += 1
            else:
                out.append("\\" + esc)
        raise ShellSyntaxError("unterminated $'…' string")

    # --- here-documents -------------------------------------------------------------------

    def _heredoc_header(self, strip: bool) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in BLANKS:
            self.pos += 1
        if self.pos >= len(self.text) or self.text[self.pos] in METACHARACTERS:
            raise ShellSyntaxError("here-document without a delimiter")
        delimiter = self._word()
        self.unsure.append("a here-document")
        self.out.append(delimiter)  # replaced by the body once it is read
        self.heredocs.append((len(self.out) - 1, delimiter.value, strip, not delimiter.quoted))

    def _heredoc_bodies(self) -> None:
        """Bash reads pending here-document bodies after the newline that ends their line."""
        for index, delimiter, strip, expand in self.heredocs:
            lines: list[str] = []
            while True:
                if self.pos >= len(self.text):
                    raise ShellSyntaxError(f"here-document not ended by {delimiter!r}")
                end = self.text.find("\n", self.pos)
                end = len(self.text) if end < 0 else end
                line = self.text[self.pos:end]
                self.pos = min(end + 1, len(self.text))
                if strip:
                    line = line.lstrip("\t")
                if line == delimiter:
                    break
                lines.append(line)
            body = "\n".join(lines) + ("\n" if lines else "")
            dynamic = expand and any(mark in body for mark in ("$", "`"))
            if expand and dynamic:
                self._scan_for_substitutions(body)
            self.out[index] = Word(body, raw=body, quoted=True, dynamic=dynamic, unsure="a here-document")
        self.heredocs.clear()


class _WordParts:
    """A word being read: its value, its unquoted characters (for globs and ``~``), its flags."""

    def __init__(self) -> None:
        self.value: list[str] = []
        self.bare: list[str] = []
        self.quoted = self.dynamic = self.trailing_backslash = False
        self.unsure: str | None = None

    def add(self, part: str, quoted: bool = False, dynamic: bool = False, unsure: str | None = None,
            bare: bool = False) -> None:
        self.value.append(part)
        self.bare.append(part if bare else "\0")
        self.quoted = self.quoted or quoted
        self.dynamic = self.dynamic or dynamic
        self.unsure = self.unsure or unsure

    def finish(self, raw: str) -> Word:
        unquoted = "".join(self.bare)
        pattern = any(ch in unquoted for ch in "*?[") or bool(_BRACE_EXPANSION.search(unquoted))
        return Word("".join(self.value), raw=raw, quoted=self.quoted, dynamic=self.dynamic or _tilde_expands(unquoted),
                    pattern=pattern, unsure=self.unsure)


def _tilde_expands(unquoted: str) -> bool:
    """Bash replaces an unquoted ``~`` at the start of a word, and in ``NAME=…`` words (arguments
    too) after the ``=`` and after each ``:``."""
    if unquoted.startswith("~"):
        return True
    match = ASSIGNMENT.match(unquoted)
    if not match:
        return False
    rest = unquoted[match.end():]
    return rest.startswith("~") or ":~" in rest


def _without_continuations(raw: str) -> str:
    """A word's text as bash keeps it: ``\\<newline>`` is removed everywhere but in single quotes."""
    if "\\\n" not in raw:
        return raw
    out: list[str] = []
    i, single, double = 0, False, False
    while i < len(raw):
        c = raw[i]
        if c == "\\" and not single:
            if raw.startswith("\\\n", i):
                i += 2
                continue
            out.append(raw[i:i + 2])
            i += 2
            continue
        if c == "'" and not double:
            single = not single
        elif c == '"' and not single:
            double = not double
        out.append(c)
        i += 1
    return "".join(out)
