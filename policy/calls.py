"""What a tool call names, as the policy reads its arguments: a command, paths, content size."""

from __future__ import annotations

import hashlib
import json

from models.policy import ActionType, ToolCallContext
from policy.paths import normalize_path

PATH_KEYS = ("path", "paths", "file", "files", "file_path", "filename", "target", "source", "src",
             "destination", "dest", "dst", "directory", "dir", "cwd", "workdir")
"""Arguments that name files; their values (strings or lists of strings) are judged as paths."""
CONTENT_KEYS = ("content", "code")
"""Arguments whose UTF-8 size counts against ``max_bytes`` when ``content_bytes`` is absent."""
WRITING_TYPES = frozenset({ActionType.FILE_WRITE, ActionType.CODE_GENERATION})
"""Action types whose path arguments are written."""


def command_text(call: ToolCallContext) -> str | None:
    """The shell command the call runs, if it carries one (an argv list is quoted word by word)."""
    value = call.arguments.get("command")
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        # An argv list runs without a shell: quote every word so none is read as an operator.
        return " ".join("'" + v.replace("'", "'\"'\"'") + "'" for v in value)
    return None


def call_paths(call: ToolCallContext) -> tuple[str, ...]:
    """The call's path arguments, normalised, in argument order."""
    found: list[str] = []
    for key in PATH_KEYS:
        value = call.arguments.get(key)
        values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        found += [normalize_path(v) for v in values if isinstance(v, str)]
    return tuple(dict.fromkeys(found))


def content_size(call: ToolCallContext) -> int:
    """Bytes the call writes: ``content_bytes``, else the UTF-8 size of its content arguments."""
    if call.content_bytes is not None:
        return call.content_bytes
    return sum(len(v.encode("utf-8", "surrogatepass")) for key in CONTENT_KEYS
               if isinstance(v := call.arguments.get(key), str))


def argument_text(value: object) -> str:
    """An argument as patterns see it: the string itself, or canonical JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
