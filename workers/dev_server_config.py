"""The dynamic config every Temporal server Daemonflow starts runs with: ``daemonflow dev``'s dev
server, the test session's, the benchmarks', and (``deploy/temporal/dynamicconfig.yaml``, kept
equal by a test) the compose server's.

Why: a history shard's queue readers load new tasks at most ``history.<queue>ProcessorMaxPollRPS``
times a second, 20 by default, and the dev server has one shard. A workflow task that a completed
activity, a signal or a fired timer schedules is a transfer-queue task, so it waits for that
reader's next load: up to 50 ms, whatever the load. An update's own workflow task goes to
matching directly and does not wait, which hid it; a bare update → activity → reply loop on the
dev server took 13–20 ms p50 for its first second or so (the limiter's burst) and 50 ms in steady
state, each workflow task after an activity waiting 30–35 ms to be handed to a waiting poller
(event times of the histories, 2 cores, load ~2). A private message or a channel post is a chain
of such tasks, so it paid this a dozen times.

The price is batching. Under saturation a reader that may load 20 times a second takes many tasks
per load; one that may load more often takes fewer, and spends more per task. In
``bench.conversation`` (50 conversations at once, SQLite, one run each, load 3–5) the floor made
138–159 turns/s at 20 and 107–128 at 100, 200 and 1,000; Daemonflow 48–54 at 20 and 42–48 above
it. Sequentially, the floor's turn went from 50 to 15–17 ms p50 and Daemonflow's from 50–54 to
40–47 ms; in ``bench.messages`` (20 of each, two runs at each limit, alternating, load 0.5–0.7)
a private message answered by an agent went from 750 to 140–176 ms p50 and one refused from 250
to 63–71 ms. An agent platform is used one person at a time far more than at
saturation, so the servers Daemonflow starts take the latency, at the lowest limit that keeps
it: 100 loads a second, so a task waits 10 ms at most. Only the transfer queue: timers and
visibility records waiting up to 50 ms change nothing anyone sees. A single-node compose server
has 4 shards and the same default; clusters with many shards meet the limit less.
"""

from __future__ import annotations

from typing import Any

DYNAMIC_CONFIG: dict[str, Any] = {
    "history.transferProcessorMaxPollRPS": 100,  # workflow and activity tasks, signals, child starts
}


def dynamic_config_flags() -> list[str]:
    """``--dynamic-config-value KEY=VALUE`` (the value as JSON) for ``temporal server start-dev``."""
    flags: list[str] = []
    for key, value in DYNAMIC_CONFIG.items():
        flags += ["--dynamic-config-value", f"{key}={value}"]
    return flags
