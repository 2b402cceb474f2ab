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

from activities.ai_tools import AiToolActivities
from activities.archive import ArchiveActivities
from activities.audit import AuditActivities
from activities.channels import ChannelActivities, ChannelMemoryActivities
from activities.llm import LlmActivities, LlmProviders
from activities.memory import MemoryService
from activities.memory.activities import MemoryActivities
from activities.messages import MessageModelActivities, MessageRecordActivities
from activities.plans import PlanActivities
from activities.relevance import RelevanceActivities, RelevanceRecordActivities
from activities.relevance.settings import RelevanceSettingsActivities
from activities.sandbox import SandboxManager, connect_docker
from activities.tools.plan_tool import PlanTool
from activities.tools.runner import ToolActivities
from activities.transcript import TranscriptActivities
from config.policy import load_policy
from config.settings import Settings
from store.actions import ActionStore
from store.channels import ChannelStore
from store.engine import make_engine
from store.relevance import RelevanceStore
from store.payloads import PayloadStore
from store.private_messages import PrivateMessageStore
from store.transcript import TranscriptStore
from store.turn_writes import TurnWriter
from workers import payload_visits, queues, schedules
from workers.client import connect, ensure_search_attributes
from workers.interceptors import DaemonflowInterceptor
from workers.logs import configure_logging
from workers.metrics import SandboxObserver, serve_metrics, temporal_runtime, track_conversation_states
from workers.telemetry import setup_tracing, shutdown_tracing
from workers.worker_group import Helpers, check_processes
from workers.workflow_runner import LeanSandboxRunner
from workflows.channel import ChannelWorkflow
from workflows.conversation import ConversationWorkflow
from workflows.memory_admin import MemoryAdminWorkflow
from workflows.private_message import PrivateMessageWorkflow
from workflows.plan import TaskPlanWorkflow
from workflows.relevance_calculation import RelevanceCalculationWorkflow
from workflows.tool_execution import ToolExecutionWorkflow

log = logging.getLogger("daemonflow.worker")

GRACEFUL_SHUTDOWN = timedelta(seconds=20)
HEARTBEAT_THROTTLE = timedelta(seconds=1)
"""Heartbeats (and with them a cancellation, e.g. double-texting ``interrupt``) reach the server at
most this late; by default the SDK holds them for 80 % of the heartbeat timeout (8 s for
``llm.chat``). Heartbeats are not history events: this costs RPCs, not history."""


WORKFLOWS: list[type] = [
    ConversationWorkflow, ChannelWorkflow, ToolExecutionWorkflow, MemoryAdminWorkflow, RelevanceCalculationWorkflow,
    PrivateMessageWorkflow, *schedules.WORKFLOWS,
    TaskPlanWorkflow,  # task plans (issue 15)
]
"""Workflows, all on the main queue."""


def build_activities(
    settings: Settings,
    sandbox: SandboxManager | None,
    memory: MemoryService,
    host_queue: str | None = None,
    client: Client | None = None,
    providers: LlmProviders | None = None,
) -> dict[str, list]:
    """Activities by role (``workers/queues.py``): ``main`` beside the store, ``llm`` beside
    the model servers, ``sandbox`` on Docker hosts."""
    engine = make_engine(settings.effective_database_url)
    store = TranscriptStore(engine)
    actions = ActionStore(engine)
    payloads = PayloadStore(engine)
    writer = TurnWriter(engine)
    transcript = TranscriptActivities(store, settings, load_policy(settings.policy_file), writer)
    providers = providers or LlmProviders(settings)  # one client per model server, shared by the model activities
    llm = LlmActivities(store, settings, memory, providers, writer)
    plan_tool = PlanTool(client, settings.task_queue, settings.plan_tool_wait_s).tools() if client else None  # issue 15
    tools = ToolActivities(sandbox, sandbox.client if sandbox else None, actions, payloads, host_queue=host_queue,
                           worker_tools=plan_tool)
    return {
        "main": [
            *transcript.all(), AuditActivities(actions).record,
            *schedules.activities(settings, engine, sandbox.client if sandbox else None),
            *RelevanceRecordActivities(RelevanceStore(engine)).all(),
            *ChannelActivities(store, settings).all(),
            *RelevanceSettingsActivities(settings, engine).all(),
            *MessageRecordActivities(PrivateMessageStore(engine)).all(),
            *ArchiveActivities(engine).all(),  # archiving after inactivity, revival
            *PlanActivities(settings, engine).all(),  # task plans (issue 15)
        ],
        "llm": [
            llm.chat, *MemoryActivities(memory, store, settings, providers).all(),
            *RelevanceActivities(memory.embedder, store, settings).all(),
            *ChannelMemoryActivities(memory, ChannelStore(engine)).all(),
            *AiToolActivities(store, payloads, settings, providers).all(),
            *MessageModelActivities(settings, providers).all(),
        ],
        "sandbox": [tools.run, tools.diff],
    }


def _worker(client: Client, task_queue: str, workflows: list, activities: list, *, local_only: bool = False) -> Worker:
    """``local_only``: workflow tasks and the local activities they start, no activity tasks (helpers)."""
    payload_visits.install()  # no walks over payloads that no codec or external storage changes
    return Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=activities,
        interceptors=[DaemonflowInterceptor()],
        workflow_runner=LeanSandboxRunner(),  # the SDK's sandbox without its exec per payload lookup
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,  # issue 16: an interrupt reaches llm.chat in ~1 s
        no_remote_activities=local_only,
    )


def build_worker(
    client: Client,
    settings: Settings,
    task_queue: str | None = None,
    sandbox: SandboxManager | None = None,
    memory: MemoryService | None = None,
    providers: LlmProviders | None = None,
) -> Worker:
    """Every workflow and activity on one queue (tests, and the simplest deployment).

    ``memory`` is opened lazily on first use; pass one to close it when the worker stops
    (the embedded memory store admits one process at a time); ``providers`` likewise, to close
    the model servers' connections."""
    memory = memory or MemoryService.from_settings(settings)
    sandbox = sandbox or build_sandbox(settings)
    by_role = build_activities(settings, sandbox, memory, client=client, providers=providers)
    return _worker(client, task_queue or settings.task_queue, WORKFLOWS, [a for acts in by_role.values() for a in acts])


def build_workers(
    client: Client,
    settings: Settings,
    roles: tuple[str, ...] = queues.ROLES,
    sandbox: SandboxManager | None = None,
    memory: MemoryService | None = None,
    providers: LlmProviders | None = None,
) -> list[Worker]:
    """One ``Worker`` per queue the roles resolve to, plus this host's sandbox queue when the
    ``sandbox`` role has a Docker engine here. Without split-queue settings every role resolves
    to the main queue: one worker, as ``build_worker`` makes."""
    memory = memory or MemoryService.from_settings(settings)
    host = queues.host_queue(settings) if sandbox is not None and "sandbox" in roles else None
    by_role = build_activities(settings, sandbox, memory, host_queue=host, client=client, providers=providers)
    return [
        _worker(
            client,
            queue,
            WORKFLOWS if "main" in served else [],
            [activity for role in served for activity in by_role[role]],
        )
        for queue, served in queues.plan(settings, roles, host).items()
    ]


def build_helper_workers(client: Client, settings: Settings, roles: tuple[str, ...], memory: MemoryService,
                         providers: LlmProviders) -> list[Worker]:  # fmt: skip
    """A helper process's worker (``workers/worker_group.py``): the main queue's workflow tasks, with
    the activities of the roles on that queue for the local steps those tasks start."""
    by_role = build_activities(settings, None, memory, client=client, providers=providers)
    served = queues.plan(settings, roles)[settings.task_queue]
    activities = [activity for role in served for activity in by_role[role]]
    return [_worker(client, settings.task_queue, WORKFLOWS, activities, local_only=True)]


def build_sandbox(settings: Settings) -> SandboxManager | None:
    """Sandboxes if a Docker engine answers; without one, conversations work and tools say why."""
    try:
        client = connect_docker(timeout_s=10)
    except Exception as err:  # noqa: BLE001 - any failure means the same: no sandboxes here
        log.warning("no Docker engine (%s): sandbox and Docker tools are unavailable on this worker", err)
        return None
    return SandboxManager(client, settings, settings.var_dir / "artifacts", observer=SandboxObserver())


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


async def run_worker(settings: Settings, stop: asyncio.Event | None = None, roles: tuple[str, ...] | None = None,
                     processes: int | None = None) -> None:  # fmt: skip
    """Run until ``stop`` is set or the process gets SIGTERM/SIGINT.

    ``roles`` (``daemonflow worker --queues``): which of main, llm and sandbox this process serves;
    default all of them. ``processes`` (``--processes``, default ``worker_processes``): this one and
    helpers for the main queue's workflow tasks (``workers/worker_group.py``)."""
    roles = roles or queues.ROLES
    processes = processes if processes is not None else settings.worker_processes
    check_processes(processes, roles)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    setup_tracing(settings, "daemonflow-worker")
    serve_metrics(settings)
    client = await connect(settings, runtime=temporal_runtime(settings))
    await ensure_search_attributes(client)
    if "main" in roles:
        await schedules.apply_at_start(client, settings)
    sandbox = build_sandbox(settings) if "sandbox" in roles else None
    memory = MemoryService.from_settings(settings)
    providers = LlmProviders(settings)
    workers = build_workers(client, settings, roles, sandbox=sandbox, memory=memory, providers=providers)
    for worker in workers:
        log.info("worker polling task queue %r on %s", worker.task_queue, settings.temporal_address)
    reaper = asyncio.create_task(reap_idle_sandboxes(sandbox, settings.sandbox_idle_s, stop)) if sandbox else None
    states = (
        asyncio.create_task(track_conversation_states(client, settings.conversation_metrics_interval_s, stop))
        if "main" in roles
        else None
    )
    async with contextlib.AsyncExitStack() as running:
        for worker in workers:
            await running.enter_async_context(worker)
        await running.enter_async_context(Helpers(settings, roles, memory, processes - 1))  # stopped first
        await stop.wait()
        log.info("stopping: finishing running activities (up to %ss)", GRACEFUL_SHUTDOWN.seconds)
    await memory.close()
    await providers.close()  # the model servers' connections (aiohttp warns about sessions left open)
    for task in (reaper, states):
        if task:
            await task
    shutdown_tracing()


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
