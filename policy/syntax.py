"""The structure bash gives a command line: lists, pipelines, groups and simple commands.

``parse`` accepts the part of bash's grammar that agents use and that can be read without doubt:
simple commands with assignments and redirections, joined by ``;`` ``&`` newline ``&&`` ``||``
``|`` ``|&``, ``!``, subshells ``( … )`` and groups ``{ …; }``. Reserved words are recognised only
where bash recognises them (unquoted, in command position). Everything else that bash runs —
``if``/``while``/``for``/``case``, ``[[ ]]``, ``(( ))``, function and array definitions, ``coproc``
— is not understood: the line is then *salvaged* (cut at every operator, leading reserved words
dropped) so that what it would run can still be denied, but nothing of it is ever allowed.

``render`` writes a tree back in one canonical spelling: whitespace, comments, line continuations,
newline-versus-``;`` and the quoting of literal words are normalised; everything that changes what
runs (words, their order, operators, assignments, redirections, the command path as written) is
kept. Two lines with the same canonical text are the same command to bash; that text is what an
"approve always" rule binds to.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace

from policy.shell import ASSIGNMENT, REDIRECTIONS, SUBSCRIPT_ASSIGNMENT, Lexed, Operator, ShellSyntaxError, Word, lex

RESERVED = frozenset({"if", "then", "else", "elif", "fi", "case", "esac", "for", "select", "while", "until",
                      "do", "done", "in", "function", "time", "{", "}", "!", "[[", "]]", "coproc"})
"""Bash's reserved words: special only unquoted and in command position."""
_NOT_UNDERSTOOD = RESERVED - {"{", "!", "time"}
_OUTPUT = frozenset({">", ">>", ">|", "&>", "&>>", "<>"})
_DEFAULT_FD = {"<": "0", "<>": "0", "<<<": "0", "<<": "0", "<<-": "0", "<&": "0",
               ">": "1", ">>": "1", ">|": "1", ">&": "1"}


@dataclass(frozen=True)
class Redirect:
    op: str
    target: Word
    fd: str | None = None

    @property
    def duplicates(self) -> bool:
        """``2>&1``, ``<&0``, ``>&-``: another descriptor, not a file."""
        value = self.target.value
        return self.op in (">&", "<&") and (value.isdigit() or value == "-" or value[:-1].isdigit() and value[-1:] == "-")

    @property
    def file(self) -> str | None:
        """The file this redirection opens, if any (not descriptors, here-strings or here-documents)."""
        if self.duplicates or self.op in ("<<<", "<<", "<<-"):
            return None
        return self.target.value

    @property
    def writes(self) -> bool:
        """It opens its file for writing."""
        return self.file is not None and (self.op in _OUTPUT or self.op == ">&")


@dataclass(frozen=True)
class Simple:
    assignments: tuple[Word, ...] = ()
    words: tuple[Word, ...] = ()
    redirects: tuple[Redirect, ...] = ()


@dataclass(frozen=True)
class Group:
    subshell: bool
    """``( … )`` runs in a subshell; ``{ …; }`` in the current shell."""
    body: Sequence
    redirects: tuple[Redirect, ...] = ()


@dataclass(frozen=True)
class Pipeline:
    commands: tuple[Simple | Group, ...]
    pipes: tuple[str, ...] = ()
    """``|`` between consecutive commands (``|&`` is read as ``2>&1 |``, as bash does)."""
    negations: int = 0
    timed: bool = False
    """Preceded by bash's ``time`` keyword (which makes the line unsure)."""


@dataclass(frozen=True)
class AndOr:
    pipelines: tuple[Pipeline, ...]
    operators: tuple[str, ...] = ()
    """``&&`` or ``||`` between consecutive pipelines."""


@dataclass(frozen=True)
class Sequence:
    items: tuple[tuple[AndOr, str], ...] = ()
    """Each list with its terminator: ``;`` (also for a newline), ``&``, or ``""`` for the last."""


@dataclass(frozen=True)
class Script:
    """A command line as bash reads it."""

    tree: Sequence | None
    """``None`` when bash would refuse it or this reader does not understand all of it."""
    commands: tuple[Simple, ...]
    """Every simple command in the order written (salvaged when ``tree`` is ``None``)."""
    substitutions: tuple[str, ...] = ()
    unsure: tuple[str, ...] = ()
    error: str | None = None


def parse(text: str) -> Script:
    """The structure of ``text``; see the module docstring for what is understood."""
    lexed = lex(text)
    parser = _Parser(lexed.tokens)
    error = lexed.error
    tree: Sequence | None = None
    if error is None:
        try:
            tree = parser.program()
        except ShellSyntaxError as err:
            error = str(err)
    commands = tuple(simple_commands(tree)) if tree is not None else tuple(_salvage(lexed))
    return Script(tree, commands, tuple(lexed.substitutions), tuple(dict.fromkeys([*lexed.unsure, *parser.unsure])),
                  error)


def simple_commands(node: Sequence | AndOr | Pipeline | Simple | Group | None):
    """Every simple command under ``node``, in the order written; the redirections of a group or
    subshell are added to each command inside it (``(cat x) > /dev/sda`` writes the device)."""
    if node is None:
        return
    if isinstance(node, Simple):
        yield node
    elif isinstance(node, Group):
        for command in simple_commands(node.body):
            yield replace(command, redirects=(*command.redirects, *node.redirects))
    elif isinstance(node, Pipeline):
        for command in node.commands:
            yield from simple_commands(command)
    elif isinstance(node, AndOr):
        for pipeline in node.pipelines:
            yield from simple_commands(pipeline)
    else:
        for and_or, _ in node.items:
            yield from simple_commands(and_or)


class _Parser:
    def __init__(self, tokens: list[Word | Operator]) -> None:
        self.tokens = tokens
        self.i = 0
        self.unsure: list[str] = []

    def program(self) -> Sequence:
        sequence = self._sequence(closer=None)
        if self.i < len(self.tokens):
            raise ShellSyntaxError(f"unexpected {_describe(self.tokens[self.i])}")
        return sequence

    # --- token helpers --------------------------------------------------------------------

    def _peek(self) -> Word | Operator | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _op(self, *values: str) -> bool:
        token = self._peek()
        return isinstance(token, Operator) and token.value in values and token.fd is None

    def _reserved(self, *values: str) -> bool:
        token = self._peek()
        return isinstance(token, Word) and token.plain and token.value in values

    def _take(self) -> Word | Operator:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def _newlines(self) -> None:
        while self._op("\n"):
            self.i += 1

    # --- grammar ---------------------------------------------------------------------------

    def _sequence(self, closer: str | None) -> Sequence:
        items: list[tuple[AndOr, str]] = []
        self._newlines()
        while self._peek() is not None and not (closer == ")" and self._op(")")) \
                and not (closer == "}" and self._reserved("}")):
            and_or = self._and_or()
            if self._op(";", "&", "\n"):
                terminator = self._take().value
                items.append((and_or, "&" if terminator == "&" else ";"))
                self._newlines()
                continue
            items.append((and_or, ""))
            break
        if closer and not items:
            raise ShellSyntaxError(f"empty {'( )' if closer == ')' else '{ }'}")
        return Sequence(tuple(items))

    def _and_or(self) -> AndOr:
        pipelines, operators = [self._pipeline()], []
        while self._op("&&", "||"):
            operators.append(self._take().value)
            self._newlines()
            pipelines.append(self._pipeline())
        return AndOr(tuple(pipelines), tuple(operators))

    def _pipeline(self) -> Pipeline:
        negations, timed = 0, False
        while self._reserved("!", "time"):
            if self._take().value == "!":
                negations += 1
                continue
            timed = True
            self.unsure.append("the time keyword (bash's, not /usr/bin/time)")
            while self._peek() is not None and isinstance(self._peek(), Word) and self._peek().value in ("-p", "--"):
                self.i += 1
        commands, pipes = [self._command()], []
        while self._op("|", "|&"):
            if self._take().value == "|&":  # bash reads a |& b as a 2>&1 | b
                both = Redirect(">&", Word("1", raw="1"), "2")
                commands[-1] = replace(commands[-1], redirects=(*commands[-1].redirects, both))
            pipes.append("|")
            self._newlines()
            commands.append(self._command())
        return Pipeline(tuple(commands), tuple(pipes), negations, timed)

    def _command(self) -> Simple | Group:
        token = self._peek()
        if self._op("("):
            following = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if isinstance(following, Operator) and following.value == "(" and following.start == token.start + 1:
                raise ShellSyntaxError("arithmetic commands ((…)) are not understood")
            return self._group(subshell=True)
        if self._reserved("{"):
            return self._group(subshell=False)
        if isinstance(token, Word) and token.plain and token.value in _NOT_UNDERSTOOD:
            raise ShellSyntaxError(f"'{token.value}' compound commands are not understood")
        if isinstance(token, Word) and token.plain and token.value in ("!", "time"):
            raise ShellSyntaxError(f"'{token.value}' inside a pipeline")  # bash only takes it at the start
        return self._simple()

    def _group(self, subshell: bool) -> Group:
        """``( list )`` or ``{ list; }`` (at the opening token), then its redirections."""
        self.i += 1
        body = self._sequence(closer=")" if subshell else "}")
        if not (self._op(")") if subshell else self._reserved("}")):
            raise ShellSyntaxError(f"unbalanced {'(' if subshell else '{'}")
        self.i += 1
        return Group(subshell, body, self._redirects_only())

    def _redirects_only(self) -> tuple[Redirect, ...]:
        redirects = []
        while isinstance(self._peek(), Operator) and self._peek().value in REDIRECTIONS:
            redirects.append(self._redirect())
        if isinstance(self._peek(), Word):
            raise ShellSyntaxError(f"unexpected word {self._peek().raw!r} after ) or }}")
        return tuple(redirects)

    def _redirect(self) -> Redirect:
        op = self._take()
        assert isinstance(op, Operator)
        target = self._peek()
        if not isinstance(target, Word):
            raise ShellSyntaxError(f"redirection {op.value} without a target")
        self.i += 1
        return Redirect(op.value, target, op.fd)

    def _simple(self) -> Simple:
        words: list[Word] = []
        redirects: list[Redirect] = []
        while True:
            token = self._peek()
            if isinstance(token, Word):
                words.append(token)
                self.i += 1
            elif isinstance(token, Operator) and token.value in REDIRECTIONS:
                redirects.append(self._redirect())
            else:
                break
        if not words and not redirects:
            raise ShellSyntaxError(f"unexpected {_describe(self._peek())}")
        if self._op("("):
            raise ShellSyntaxError("function and array definitions are not understood")
        assignments = 0
        while assignments < len(words) and _is_assignment(words[assignments]):
            if SUBSCRIPT_ASSIGNMENT.match(words[assignments].raw):
                self.unsure.append("an assignment to an array element")
            assignments += 1
        return Simple(tuple(words[:assignments]), tuple(words[assignments:]), tuple(redirects))


def _is_assignment(word: Word) -> bool:
    """``NAME=…``, ``NAME+=…`` or ``NAME[…]=…`` with the name unquoted, as bash decides."""
    raw = word.raw
    if ASSIGNMENT.match(raw):
        return True
    match = SUBSCRIPT_ASSIGNMENT.match(raw)
    return match is not None and ("]=" in raw[match.end():] or "]+=" in raw[match.end():])


def _describe(token: Word | Operator | None) -> str:
    if token is None:
        return "end of the command"
    if isinstance(token, Operator):
        return "newline" if token.value == "\n" else repr(token.value)
    return f"word {token.raw!r}"


def _salvage(lexed: Lexed):
    """Simple commands of a line that is not understood: cut at every operator, reserved words
    dropped from the front. Only ever used to find something to deny."""
    words: list[Word] = []
    redirects: list[Redirect] = []
    tokens = lexed.tokens
    i = 0
    while i <= len(tokens):
        token = tokens[i] if i < len(tokens) else None
        i += 1
        if isinstance(token, Word):
            if not words and token.plain and token.value in RESERVED:
                continue
            words.append(token)
        elif isinstance(token, Operator) and token.value in REDIRECTIONS and i < len(tokens) \
                and isinstance(tokens[i], Word):
            redirects.append(Redirect(token.value, tokens[i], token.fd))
            i += 1
        elif words or redirects:
            count = 0
            while count < len(words) and _is_assignment(words[count]):
                count += 1
            yield Simple(tuple(words[:count]), tuple(words[count:]), tuple(redirects))
            words, redirects = [], []


# --- canonical text ------------------------------------------------------------------------------


def render(node: Sequence | AndOr | Pipeline | Simple | Group) -> str:
    """The canonical spelling of ``node`` (see the module docstring)."""
    if isinstance(node, Simple):
        return render_simple(node)
    if isinstance(node, Group):
        body = render(node.body)
        text = f"( {body} )" if node.subshell else f"{{ {body}{'' if body.endswith('&') else ';'} }}"
        return " ".join([text, *(render_redirect(r) for r in node.redirects)])
    if isinstance(node, Pipeline):
        parts = [render(node.commands[0])]
        for pipe, command in zip(node.pipes, node.commands[1:]):
            parts += [pipe, render(command)]
        return "time " * node.timed + "! " * node.negations + " ".join(parts)
    if isinstance(node, AndOr):
        parts = [render(node.pipelines[0])]
        for operator, pipeline in zip(node.operators, node.pipelines[1:]):
            parts += [operator, render(pipeline)]
        return " ".join(parts)
    text = ""
    for and_or, terminator in node.items:
        if text:
            text += " " if text.endswith("&") else "; "
        text += render(and_or) + (" &" if terminator == "&" else "")
    return text


def render_simple(command: Simple) -> str:
    parts = [render_assignment(word) for word in command.assignments]
    parts += [render_word(word, command_position=index == 0) for index, word in enumerate(command.words)]
    parts += [render_redirect(redirect) for redirect in command.redirects]
    return " ".join(parts)


def render_word(word: Word, command_position: bool = False) -> str:
    """A literal word in canonical quotes; anything else exactly as written."""
    if not word.static:
        return word.raw
    quoted = shlex.quote(word.value)
    if quoted == word.value and command_position and (ASSIGNMENT.match(word.value) or word.value in RESERVED):
        return f"'{word.value}'"  # a quoted command name, not an assignment or a reserved word
    return quoted


def render_assignment(word: Word) -> str:
    match = ASSIGNMENT.match(word.raw)
    if not word.static or match is None:
        return word.raw
    name = match.group()
    return name + shlex.quote(word.value[len(name):])


def render_redirect(redirect: Redirect) -> str:
    fd = redirect.fd if redirect.fd is not None and redirect.fd != _DEFAULT_FD.get(redirect.op) else ""
    if redirect.duplicates:
        return f"{fd}{redirect.op}{redirect.target.value}"
    if redirect.op == ">&" and not fd:
        return f"&>{render_word(redirect.target)}"  # >&file is &>file
    if redirect.op in ("<<", "<<-"):
        return f"{fd}<< {shlex.quote(redirect.target.value)}"
    return f"{fd}{redirect.op}{render_word(redirect.target)}"


__all__ = ["RESERVED", "AndOr", "Group", "Pipeline", "Redirect", "Script", "Sequence", "Simple", "parse", "render",
           "render_assignment", "render_redirect", "render_simple", "render_word", "simple_commands"]
