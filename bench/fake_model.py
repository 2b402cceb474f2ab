"""The fake model server in a process of its own, as Ollama runs beside Daemonflow.

``python -m bench.fake_model`` serves ``tests/fakes/ollama.py`` (echo replies, hashed embeddings,
``{}`` to structured outputs) on an ephemeral port, prints its URL on the first line of stdout and
serves until its stdin closes or it gets SIGTERM. The benchmarks start it with ``serve()``.

In the benchmarks' own process the fake's HTTP handling (Python threads) took the interpreter lock
from the worker being measured: two requests a turn, ~3 ms of CPU, charged to Daemonflow although
Ollama is a separate (Go) program. Out here it still uses the machine's CPUs, as Ollama would.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator

from tests.fakes.ollama import FakeOllama

REQUEST_LOG_KEPT = 1_000
"""The fake logs every request for tests; a long benchmark clears it now and then."""


@contextlib.contextmanager
def serve() -> Iterator[str]:
    """A fake model server process; yields its URL, stops it on exit."""
    process = subprocess.Popen([sys.executable, "-m", "bench.fake_model"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the fake model server did not start (said {url!r})")
        yield url
    finally:
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    stop = threading.Event()
    with FakeOllama() as fake:
        fake.simulated_timings = False  # the model takes no time, and says so (tests/fakes/ollama.py)
        print(fake.url, flush=True)
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        while not stop.wait(5):
            if len(fake.requests) > REQUEST_LOG_KEPT:
                fake.reset()


if __name__ == "__main__":
    main()
