"""The event loop a worker process runs on: uvloop when it is installed, else asyncio's own.

A worker at 50 concurrent conversations is CPU-bound in one Python process, and much of that CPU
is the event loop's own work: every activity hands store calls to threads and back
(``call_soon_threadsafe``), streams a model answer and an embedding over HTTP, and polls the SDK's
core. uvloop (libuv, in C) does that work for less; see ``bench/README.md``, *Figures*, for the
worker's CPU per turn on each loop. Workflow code is unaffected: the SDK runs each workflow on a
deterministic loop of its own, whatever loop the worker runs on.

``DAEMONFLOW_EVENT_LOOP=asyncio`` keeps the standard loop (``uvloop`` insists on it, and fails
when it is not installed); ``auto`` (the default) takes uvloop if it imports.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from config.settings import Settings

T = TypeVar("T")


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for ``asyncio.Runner`` (``None``: asyncio's default loop)."""
    if choice == "asyncio" or (choice == "auto" and importlib.util.find_spec("uvloop") is None):
        return None
    import uvloop  # noqa: PLC0415 - optional: only when chosen or installed

    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], settings: Settings) -> T:
    """``asyncio.run(main)`` on the loop ``settings.event_loop`` chooses."""
    with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
        return runner.run(main)
