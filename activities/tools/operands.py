"""The values a tool hands to a program, checked so that they can only ever be operands.

A model (or a person editing a call) chooses these values; the program that receives them has an
option parser. ``run_tests`` once passed ``path`` straight to pytest, so ``--basetemp=.`` was read
as an option and pytest emptied the workspace (``.git``, ``src``). Every value here is refused
with a non-retryable ``InvalidArguments`` error whose message the model sees, or turned into a
form no parser can take for an option (``/workspace/…`` absolute paths, ``--max-count=N``).
The workflow checks the same rules first through the tools' JSON schemas (``pattern``); these
checks stand on their own, whoever called the activity.
"""

from __future__ import annotations

import re
import urllib.parse

from temporalio.exceptions import ApplicationError

from activities.sandbox import SandboxViolation, workspace_path

CONTAINER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
"""Docker's own rule for container names (and hex ids): no ``/``, so a name cannot walk the
engine's URL paths (the SDK leaves ``/`` unquoted)."""
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


class InvalidArguments(ApplicationError):
    """The call's arguments cannot be run as given; retrying cannot help, the model must fix them."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="InvalidArguments", non_retryable=True)


def workspace_operand(value: object, name: str = "path") -> str:
    """The absolute path inside /workspace that ``value`` names; never an option."""
    if not isinstance(value, str) or not value:
        raise InvalidArguments(f"{name} must be a non-empty path relative to /workspace")
    if value.startswith("-"):
        raise InvalidArguments(
            f"{name} {value[:80]!r} starts with '-', which a program would read as an option; "
            f"a file whose name starts with '-' is written ./{value[:80]}"
        )
    try:
        return workspace_path(value)
    except SandboxViolation as err:
        raise InvalidArguments(f"{name}: {err.message}") from None


def bounded_int(arguments: dict, name: str, default: int, lowest: int, highest: int) -> int:
    value = arguments.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        raise InvalidArguments(f"{name} must be an integer from {lowest} to {highest}, not {value!r}")
    return value


def http_url(value: object) -> str:
    """An absolute http(s) URL with a host, no whitespace or control characters; nothing else
    (``file:``, ``ftp:``, ``-…``, a bare host) reaches the network check."""
    if not isinstance(value, str) or _CONTROL.search(value):
        raise InvalidArguments("url must be one absolute http:// or https:// URL without spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError as err:
        raise InvalidArguments(f"url {value[:200]!r} is not a valid URL: {err}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or not port_ok:
        raise InvalidArguments(
            f"url {value[:200]!r} is not an absolute http:// or https:// URL with a host; "
            "other schemes (file:, ftp:, …) are not checked"
        )
    return value


def container_operand(value: object) -> str:
    if not isinstance(value, str) or not CONTAINER_NAME.fullmatch(value):
        raise InvalidArguments(
            f"container {str(value)[:80]!r} is not a container name or id (letters, digits, '_', '.', '-'; "
            "starting with a letter or digit)"
        )
    return value
