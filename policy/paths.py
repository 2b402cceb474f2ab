"""Paths as the policy compares them: normalised, matched by globs, and found in shell commands.

A command *names* a path when it is an operand, the value of ``x=value`` / ``--opt=value``, an
assignment's value, or a redirection's file. It *writes* a path when that path is an output
redirection's file, ``dd``'s ``of=`` (``dcfldd``, ``dc3dd`` too), a ``tee`` operand, the
destination of ``cp``/``mv``/``install``/``ln``/``rsync``/``scp``/``ddrescue``, or an operand of
``shred``/``truncate``. Rules with ``writes: true`` look only
at written paths; other path rules at every named path.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Sequence
from fnmatch import translate
from functools import lru_cache

from models.policy import PATH_PATTERN_KINDS, split_pattern

_DD = frozenset({"dd", "dcfldd", "dc3dd"})
_DESTINATION_LAST = frozenset({"cp", "mv", "install", "ln", "rsync", "scp", "ddrescue"})
_ALL_OPERANDS_WRITTEN = frozenset({"tee", "shred", "truncate"})


def normalize_path(path: str) -> str:
    """``a/../.env`` → ``.env``; ``./x//y/`` → ``x/y``; ``//etc`` → ``/etc``; empty → ``.``."""
    text = path.strip()
    if not text:
        return "."
    normal = posixpath.normpath(text)
    return "/" + normal.lstrip("/") if normal.startswith("//") else normal


@lru_cache(maxsize=1024)
def path_matcher(patterns: tuple[str, ...], ignore_case: bool) -> Callable[[str], bool]:
    """Whether some of ``patterns`` matches a path: ``exact:`` equality; ``**/rest`` at any depth;
    with ``/`` the whole path (``*`` crosses ``/``); without ``/`` any one component (like
    ``.gitignore``).

    Compiled once into one regular expression per kind, because a long command names thousands
    of paths: judging a 3,000-word command took 405 ms with one ``fnmatch`` per pattern and path,
    51 ms this way (``python -m bench.policy``, 2 CPUs, load 4)."""
    fold = str.casefold if ignore_case else str
    exact: set[str] = set()
    kinds: dict[str, list[str]] = {"deep": [], "whole": [], "component": []}
    for pattern in patterns:
        kind, body = split_pattern(pattern, PATH_PATTERN_KINDS)
        if kind == "exact":
            exact.add(fold(normalize_path(body)))
        elif body.startswith("**/"):
            kinds["deep"].append(translate(fold(normalize_path(body[3:]))))
        elif "/" in body:
            kinds["whole"].append(translate(fold(normalize_path(body))))
        else:
            kinds["component"].append(translate(fold(body)))
    deep, whole, component = (re.compile("|".join(parts)) if parts else None for parts in kinds.values())

    def matches(path: str) -> bool:
        path = fold(path)
        if path in exact or (whole is not None and whole.match(path)):
            return True
        parts = path.split("/")
        if component is not None and any(component.match(part) for part in parts):
            return True
        return deep is not None and any(deep.match("/".join(parts[i:])) for i in range(len(parts)))

    return matches


def named_paths(argv: Sequence[str], assignments: Iterable[str] = (), files: Iterable[str] = ()) -> list[str]:
    """Words of a command that may name files (see the module docstring), normalised."""
    found: list[str] = []
    for arg in argv[1:]:
        if arg and not arg.startswith("-"):
            found.append(arg)
        if "=" in arg and arg.split("=", 1)[1]:
            found.append(arg.split("=", 1)[1])
        elif arg.startswith("-") and not arg.startswith("--") and len(arg) > 2 and "/" in arg:
            found.append(arg[2:])  # -o.git/hooks/x: a value attached to a short option
    found += [a.split("=", 1)[1] for a in assignments if "=" in a and a.split("=", 1)[1]]
    found += list(files)
    return list(dict.fromkeys(normalize_path(p) for p in found))


def written_paths(argv: Sequence[str], name: str, files_written: Iterable[str] = ()) -> list[str]:
    """The files a command writes, as far as its name and arguments tell (module docstring)."""
    found = list(files_written)
    operands = [a for a in argv[1:] if a and not a.startswith("-")]
    if name in _DD:
        found += [a[3:] for a in argv[1:] if a.startswith("of=")]
    elif name in _ALL_OPERANDS_WRITTEN:
        found += operands
    elif name in _DESTINATION_LAST:
        targets = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-t", "--target-directory")]
        targets += [a.split("=", 1)[1] for a in argv if a.startswith("--target-directory=")]
        if targets:
            found += targets
        elif len(operands) >= 2:
            found.append(operands[-1])
    return list(dict.fromkeys(normalize_path(p) for p in found))
