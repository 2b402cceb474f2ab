"""What ``tools.run`` tells a tool about the run it is in: its budget and its at-most-once hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ToolContext:
    timeout_s: float
    """The call's budget (``ToolSpec.command_timeout_s``): the sandbox kills the command after it."""
    on_start: Callable[[], None] | None = None
    """For a tool that must not run twice: call it right before the side effect begins (the sandbox
    does, just before it creates the command); it records that the call started. None for
    idempotent tools."""

    def starting(self) -> None:
        if self.on_start is not None:
            self.on_start()
