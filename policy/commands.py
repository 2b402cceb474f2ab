"""Every command a shell line runs, cut into the units the policy judges.

One unit per simple command, wherever it stands: in a list or pipeline, in ``( … )`` or
``{ …; }``, in ``$(…)``, backticks or ``<(…)``, in the source given to ``bash -c``/``eval``/
``su -c``/``watch``…, in ``find -exec``. Each unit carries two readings:

- *as written* (``written``, ``argv``, ``assignments``): the simple command exactly as bash will
  run it — assignments, wrapper and its options, the command path as typed. Allow rules see only
  this, so ``sudo x``, ``A=1 x`` or ``./x`` are never allowed by a rule written for ``x``.
- *views*: the command and, behind each wrapper, what it goes on to run, with command names
  reduced to their last path component (``/bin/rm`` → ``rm``). Deny and ask rules see every view,
  so ``sudo /bin/rm -rf /`` is still ``rm -rf /`` to them.

A unit that cannot be judged reliably carries a ``problem`` (computed command names, arguments
only known at run time, anything bash may read differently, a line that does not parse); such a
unit may be denied but is never allowed.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from policy.paths import named_paths, written_paths
from policy.shell import Word
from policy.syntax import Redirect, Simple, parse, render, render_redirect, render_simple
from policy.wrappers import Unwrapped, command_name, unwrap

MAX_DEPTH = 12
"""Nesting limit for substitutions and ``bash -c`` strings; deeper is not judged (never allowed)."""
MAX_VIEWS = 16
MAX_UNITS = 500


@dataclass(frozen=True)
class View:
    """A command as deny and ask rules see it: the name reduced to its last component."""

    argv: tuple[str, ...]
    redirects: tuple[Redirect, ...] = ()
    assignments: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        parts = [shlex.join(self.argv)] if self.argv else list(self.assignments)
        return " ".join([*parts, *(render_redirect(r) for r in self.redirects)])


@dataclass(frozen=True)
class CommandUnit:
    written: str
    """The simple command in canonical form, as written (what people read, allow rules match)."""
    argv: tuple[str, ...] = ()
    """Its words as written: the command path exactly as typed."""
    assignments: tuple[str, ...] = ()
    variables: tuple[str, ...] = ()
    """Names of every variable set for it: its assignments and those of ``env``/``sudo``."""
    views: tuple[View, ...] = ()
    paths: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    wrapped: bool = False
    """Its command is a wrapper that runs something else (``sudo``, ``env``, ``bash -c``…)."""
    problem: str | None = None

    @property
    def plain(self) -> bool:
        """No assignment, no wrapper, the command by its bare name."""
        return bool(self.argv) and not self.assignments and not self.wrapped and "/" not in self.argv[0]


@dataclass(frozen=True)
class CommandReading:
    units: tuple[CommandUnit, ...]
    canonical: str | None
    """The whole line in canonical form when it is fully understood (what "approve always" binds)."""


def read_command(text: str) -> CommandReading:
    """The units of ``text`` and its canonical form; see the module docstring."""
    reader = _Reader()
    script = reader.line(text, depth=0, inherited=None)
    canonical = render(script.tree) if script is not None and script.tree is not None and not script.error else None
    return CommandReading(tuple(reader.units), canonical)


class _Reader:
    def __init__(self) -> None:
        self.units: list[CommandUnit] = []

    def line(self, text: str, depth: int, inherited: str | None):
        if depth > MAX_DEPTH or len(self.units) >= MAX_UNITS:
            self.units.append(CommandUnit(written=_short(text), problem="commands nested too deeply to judge"))
            return None
        script = parse(text)
        problem = inherited or _line_problem(script.error, script.unsure)
        for source in script.substitutions:
            self.line(source, depth + 1, problem)
        for command in script.commands:
            self.simple(command, depth, problem)
        if script.error or not script.commands:
            why = f"cannot parse it: {script.error}" if script.error else "the command is empty"
            self.units.append(CommandUnit(written=_short(text), problem=problem or why))
        return script

    def simple(self, command: Simple, depth: int, problem: str | None, input_arguments: str | None = None) -> None:
        words = command.words
        argv = tuple(w.value for w in words)
        assignments = tuple(w.value for w in command.assignments)
        views = [View((command_name(argv[0]), *argv[1:]) if argv else (), command.redirects, assignments)]
        variables = [a.split("=", 1)[0].rstrip("+") for a in assignments]
        found = _Unwrapping(self, command.redirects, depth, problem)
        if words:
            found.walk(list(words))
        views += found.views
        variables += found.variables
        files = [r.file for r in command.redirects if r.file is not None]
        files_written = [r.file for r in command.redirects if r.writes]
        paths = [p for v in views for p in named_paths(v.argv, assignments, files)]
        writes = [p for v in views for p in written_paths(v.argv, v.argv[0] if v.argv else "", files_written)]
        self.units.append(CommandUnit(
            written=render_simple(command), argv=argv, assignments=assignments,
            variables=tuple(dict.fromkeys(variables)), views=tuple(dict.fromkeys(views)),
            paths=tuple(dict.fromkeys(paths)), writes=tuple(dict.fromkeys(writes)), wrapped=found.wrapped,
            problem=problem or _word_problem(command) or input_arguments or found.input_arguments,
        ))


class _Unwrapping:
    """Follows wrappers from one simple command; nested lines and commands go to the reader."""

    def __init__(self, reader: _Reader, redirects: tuple[Redirect, ...], depth: int, problem: str | None) -> None:
        self.reader, self.redirects, self.depth, self.problem = reader, redirects, depth, problem
        self.views: list[View] = []
        self.variables: list[str] = []
        self.wrapped = False
        self.input_arguments: str | None = None

    def walk(self, words: list[Word]) -> None:
        frontier = [words]
        while frontier and len(self.views) < MAX_VIEWS:
            current = frontier.pop(0)
            if not current[0].static:
                continue  # a computed name: nothing to follow (the unit already has a problem)
            readings = unwrap(current)
            if readings is None:
                continue
            self.wrapped = True
            for reading in readings:
                frontier += self._follow(reading)

    def _follow(self, reading: Unwrapped) -> list[list[Word]]:
        nested = self.problem or (f"{reading.foreign}, so it is read as bash only to find what to deny"
                                  if reading.foreign else None)
        self.variables += [w.value.split("=", 1)[0].rstrip("+") for w in reading.assignments]
        for script in reading.scripts:
            self.reader.line(script.value, self.depth + 1, nested or _script_problem(script))
        if reading.reads_stdin:
            for redirect in self.redirects:
                if redirect.op in ("<<<", "<<", "<<-"):
                    self.reader.line(redirect.target.value, self.depth + 1, nested)
        for command in reading.also:
            if command:
                self.reader.simple(Simple(words=command), self.depth + 1, nested, reading.input_arguments)
        if not reading.run:
            return []
        if reading.input_arguments:
            self.input_arguments = self.input_arguments or f"it runs with {reading.input_arguments}"
        run = list(reading.run)
        argv = (command_name(run[0].value), *(w.value for w in run[1:]))
        self.views.append(View(argv, self.redirects, tuple(w.value for w in reading.assignments)))
        return [run]


def _line_problem(error: str | None, unsure: tuple[str, ...]) -> str | None:
    if unsure:
        return f"bash may read it differently from what is shown ({'; '.join(unsure)})"
    return f"cannot parse it: {error}" if error else None


def _script_problem(script: Word) -> str | None:
    if script.dynamic or script.pattern:
        return f"the shell source {script.raw!r} is only known at run time"
    return f"bash may read {script.raw!r} differently ({script.unsure})" if script.unsure else None


def _word_problem(command: Simple) -> str | None:
    """Why bash's words for this command are not exactly the ones shown, if they may not be."""
    arguments = [*command.assignments, *command.words[1:], *(r.target for r in command.redirects)]
    for word in (*command.words[:1], *arguments):
        if word.unsure:
            return f"bash may read {word.raw!r} differently from what is shown ({word.unsure})"
    if command.words and not command.words[0].static:
        return f"the command name {command.words[0].raw!r} is only known at run time"
    dynamic = [w.raw for w in arguments if not w.static]
    return f"its arguments are only known when it runs ({', '.join(dynamic)})" if dynamic else None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= limit else text[: limit - 1] + "…"
