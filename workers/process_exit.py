"""Leaving a process that used a Temporal client, without interpreter finalization.

temporalio's Rust threads may still release Python objects while the interpreter finalizes, which
aborts the process ("PyGILState_Release: thread state ... must be current", temporalio/sdk-python#300)
and turns a run that printed everything into exit code 134. It happens most when the process has
just stopped the dev server its client was connected to: 3 runs in 4 of a benchmark's shape (a
dev server, a worker process, a client; ``bench/``), none with the dev server left running. The
CLI and the benchmarks therefore flush what they wrote and leave with ``os._exit``; the dev server
and worker subprocesses are already stopped by then.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import NoReturn


def exit_without_finalization(code: int) -> NoReturn:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
