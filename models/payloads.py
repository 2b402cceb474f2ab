"""Payloads: large texts that travel by reference, never through workflow history.

A model may write a 3 MB ``write_file`` content, and a tool may print megabytes. Temporal keeps
every activity input and result in the workflow's history (and warns from 256 KB on, fails at
2 MB), so large strings are stored once in the records store, keyed by their SHA-256, and history
carries a *marker* in their place:

    [daemonflow-payload sha256=<64 hex> bytes=<UTF-8 size> chars=<length>]

The marker names the exact content (content addressing), so everything bound to a call's
arguments — the approval's ``args_hash``, the audit row, "approve always" — is bound to the real
content, and the sizes let the workflow judge ``max_bytes`` and ``maxLength`` without reading it.
Only the activity that stores a payload writes markers: a model that writes a marker-shaped string
itself gets it stored as a payload of its own (``store.payloads``), so a marker can never point at
content the call did not carry. Pure: the workflow uses these functions.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import BaseModel, Field

INLINE_MAX_CHARS = 20_000
"""A model-written string argument longer than this is stored and replaced by its marker. Equal to
the longest argument the catalogue judges by its text (``run_command.command``), so an argument a
rule must read (a command, a path) is never a marker unless it is too long to be valid anyway."""
PREVIEW_CHARS = 1_000
"""How much of a payload an approver sees in the approval itself (the whole is one API call away)."""
TOOL_OUTPUT_CAP_CHARS = 30_000
"""The most of a tool's output the model is given; the full output is kept as an artifact."""
OUTPUT_INLINE_CHARS = 2_000
"""A tool output up to this long crosses history as is; a longer one is stored and referenced."""

_MARKER = re.compile(r"\[daemonflow-payload sha256=([0-9a-f]{64}) bytes=(\d{1,12}) chars=(\d{1,12})\]")


class PayloadRef(BaseModel):
    """One stored payload: its identity, its sizes, and the start of it for people to read."""

    digest: str
    """SHA-256 (hex) of the UTF-8 content."""
    bytes: int = Field(ge=0)
    chars: int = Field(ge=0)
    preview: str = ""
    """The first ``PREVIEW_CHARS`` characters (empty when parsed back from a marker)."""

    def marker(self) -> str:
        return f"[daemonflow-payload sha256={self.digest} bytes={self.bytes} chars={self.chars}]"

    @classmethod
    def parse(cls, value: object) -> PayloadRef | None:
        """The reference a marker stands for; None for anything that is not exactly a marker."""
        if not isinstance(value, str):
            return None
        match = _MARKER.fullmatch(value)
        if match is None:
            return None
        return cls(digest=match.group(1), bytes=int(match.group(2)), chars=int(match.group(3)))


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ref_of(text: str) -> PayloadRef:
    """The reference ``text`` is stored under (what ``PayloadStore.put`` returns)."""
    return PayloadRef(digest=digest_of(text), bytes=len(text.encode()), chars=len(text), preview=text[:PREVIEW_CHARS])


def refs_in(value: Any) -> list[PayloadRef]:
    """Every marker in a JSON value (strings inside dicts and lists too), in order."""
    if isinstance(value, dict):
        return [ref for item in value.values() for ref in refs_in(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in refs_in(item)]
    ref = PayloadRef.parse(value)
    return [ref] if ref else []


def content_bytes(arguments: dict, keys: tuple[str, ...]) -> int | None:
    """UTF-8 size of the content a call writes when some of it travels by reference; None when
    none does (the policy then measures the inline arguments itself, exactly as before)."""
    if not any(PayloadRef.parse(arguments.get(key)) for key in keys):
        return None
    total = 0
    for key in keys:
        value = arguments.get(key)
        ref = PayloadRef.parse(value)
        total += ref.bytes if ref else len(value.encode()) if isinstance(value, str) else 0
    return total
