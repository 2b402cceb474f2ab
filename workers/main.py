"""The worker process: which workflows and activities run on which task queue.

Workers are stateless; start as many as the load needs. SIGTERM or SIGINT stops taking new tasks
and lets running activities finish (up to the graceful shutdown timeout) before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.audit import AuditActivities
from activities.llm import LlmActivities
from activities.sandbox import SandboxManager, connect_docker
from activities.tools.runner import ToolActivities
from activities.transcript import TranscriptActivities
from config.policy import load_policy
from config.settings import Settings
from store.actions import ActionStore
from store.engine import make_engine
from store.transcript import TranscriptStore
from workers import schedules
from workers.client import connect, ensure_search_attributes
from workflows.conversation import ConversationWorkflow
from workflows.tool_execution import ToolExecutionWorkflow

log = logging.getLogger("daemonflow.worker")

GRACEFUL_SHUTDOWN = timedelta(seconds=20)


def build_worker(
    client: Client, settings: Settings, task_queue: str | None = None, sandbox: SandboxManager | None = None
) -> Worker:
    engine = make_engine(settings.effective_database_url)
    store = TranscriptStore(engine)
    actions = ActionStore(engine)
    transcript = TranscriptActivities(store, settings, load_policy(settings.policy_file))
    llm = LlmActivities(store, settings)
    sandbox = sandbox or build_sandbox(settings)
    tools = ToolActivities(sandbox, sandbox.client if sandbox else None, actions)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[ConversationWorkflow, ToolExecutionWorkflow, *schedules.WORKFLOWS],
        activities=[
            *transcript.all(), llm.chat, AuditActivities(actions).record, tools.run,
            *schedules.activities(settings, engine, sandbox.client if sandbox else None),
        ],
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


def build_sandbox(settings: Settings) -> SandboxManager | None:
    """Sandboxes if a Docker engine answers; without one, conversations work and tools say why."""
    try:
        client = connect_docker(timeout_s=10)
    except Exception as err:  # noqa: BLE001 - any failure means the same: no sandboxes here
        log.warning("no Docker engine (%s): sandbox and Docker tools are unavailable on this worker", err)
        return None
    return SandboxManager(client, settings, settings.var_dir / "artifacts")


async def reap_idle_sandboxes(sandbox: SandboxManager, idle_s: float, stop: asyncio.Event) -> None:
    """Removes containers idle for ``idle_s`` (their workspace volumes stay) until ``stop``."""
    while not stop.is_set():
        try:
            removed = await asyncio.to_thread(sandbox.reap_idle, idle_s)
            if removed:
                log.info("reaped idle sandboxes: %s", ", ".join(removed))
        except Exception as err:  # noqa: BLE001 - the reaper must outlive a Docker hiccup
            log.warning("reaping idle sandboxes failed: %s", err)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=min(idle_s, 60))


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set or the process gets SIGTERM/SIGINT."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = await connect(settings)
    await ensure_search_attributes(client)
    await schedules.apply_at_start(client, settings)
    sandbox = build_sandbox(settings)
    worker = build_worker(client, settings, sandbox=sandbox)
    log.info("worker polling task queue %r on %s", settings.task_queue, settings.temporal_address)
    reaper = asyncio.create_task(reap_idle_sandboxes(sandbox, settings.sandbox_idle_s, stop)) if sandbox else None
    async with worker:
        await stop.wait()
        log.info("stopping: finishing running activities (up to %ss)", GRACEFUL_SHUTDOWN.seconds)
    if reaper:
        await reaper


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run_worker(Settings()))


if __name__ == "__main__":
    main()
