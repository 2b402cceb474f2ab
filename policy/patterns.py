"""How one command or argument pattern meets one unit (the syntax is in ``models/policy.py``).

Allow rules and deny/ask rules read a command differently on purpose: ``allows`` looks only at the
command exactly as written, ``restricts`` at the written form and every view behind wrappers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from models.policy import ARGUMENT_PATTERN_KINDS, COMMAND_PATTERN_KINDS, split_pattern
from policy.calls import argument_text, digest
from policy.commands import CommandUnit
from policy.paths import normalize_path


@dataclass(frozen=True)
class CommandContext:
    """What command patterns may look at for one unit."""

    unit: CommandUnit | None
    """``None`` for the whole-line unit of a line that does not parse."""
    raw: str
    canonical: str | None


def allows(pattern: str, context: CommandContext, legacy: bool = False) -> bool:
    """An allow rule's pattern vouches for this unit (case is never folded)."""
    kind, body = split_pattern(pattern, COMMAND_PATTERN_KINDS)
    unit = context.unit
    if kind == "line":
        return context.canonical is not None and context.canonical == body
    if unit is None or kind in ("raw", "env") or (legacy and not unit.plain):
        return False
    if kind == "argv":
        return not unit.assignments and argv_matches(body, unit.argv, fold=str)
    return text_matches(kind, body, unit.written, fold=str)


def restricts(pattern: str, context: CommandContext, ignore_case: bool, memo: dict) -> bool:
    """A deny or ask rule's pattern catches this unit: as written, behind any wrapper, or raw."""
    kind, body = split_pattern(pattern, COMMAND_PATTERN_KINDS)
    fold = str.casefold if ignore_case else str
    if kind == "raw":
        key = (body, ignore_case, context.raw)
        if key not in memo:
            memo[key] = re.search(body, context.raw, re.IGNORECASE if ignore_case else 0) is not None
        return memo[key]
    if kind == "line":
        return context.canonical is not None and fold(context.canonical) == fold(body)
    unit = context.unit
    if unit is None:
        return False
    if kind == "env":
        return any(fnmatchcase(fold(name), fold(body)) for name in unit.variables)
    if kind == "argv":
        return any(argv_matches(body, view.argv, fold) for view in unit.views)
    return any(text_matches(kind, body, text, fold) for text in (unit.written, *(v.text for v in unit.views)))


def text_matches(kind: str, body: str, text: str, fold=str) -> bool:
    if kind == "re":
        return re.fullmatch(body, text, re.IGNORECASE if fold is str.casefold else 0) is not None
    if kind == "exact":
        return fold(text) == fold(body)
    return fnmatchcase(fold(text), fold(body))


def argument_matches(pattern: str, value: object, ignore_case: bool) -> bool:
    kind, body = split_pattern(pattern, ARGUMENT_PATTERN_KINDS)
    text = argument_text(value)
    if kind == "sha256":
        return digest(text) == body.lower()
    fold = str.casefold if ignore_case else str
    if kind == "exact":
        return fold(text) == fold(body)
    return fnmatchcase(fold(text), fold(body))


def argv_matches(body: str, argv: tuple[str, ...], fold=str) -> bool:
    """``NAME REQ…`` (see ``models/policy.py``); flags are only looked for before ``--``."""
    if not argv:
        return False
    name, *required = body.split()
    if not any(fnmatchcase(fold(argv[0]), fold(alt)) for alt in name.split("|")):
        return False
    args = [fold(a) for a in argv[1:]]
    before_end = args[:args.index("--")] if "--" in args else args
    return all(any(_arg_matches(arg, fold(alt)) for alt in req.split("|")
                   for arg in (before_end if alt.startswith("-") and alt != "-" else args)) for req in required)


def _arg_matches(arg: str, alternative: str) -> bool:
    if fnmatchcase(arg, alternative):
        return True
    if len(alternative) == 2 and alternative[0] == "-" and alternative[1] != "-":
        if len(arg) > 2 and arg[0] == "-" and arg[1] != "-" and arg[1:].isalnum() and alternative[1] in arg[1:]:
            return True  # -r inside -rf
    if len(alternative) == 2 and alternative[0] == "/" and re.fullmatch(r"(/[A-Za-z0-9?](:\S*)?)+", arg):
        return alternative in re.findall(r"/[A-Za-z0-9?]", arg)  # /s inside /s/q (cmd.exe switches)
    return "/" in arg and fnmatchcase(normalize_path(arg), alternative)
