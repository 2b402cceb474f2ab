"""Application metrics (prometheus-client, default registry) and what each activity reports.

The activity interceptor (``workers/interceptors.py``) calls :func:`observe_activity` after every
activity with its input models and result, so ``activities/`` stay free of metrics code; the
same call returns the span attributes of the activity's span. Labels are bounded sets (model
names, tool names, decisions, outcomes): never ids, arguments or message text.

The Temporal SDK's own metrics (task latencies, poll counts, schedule-to-start) are not here: the
worker's Temporal runtime serves them on their own port (``DAEMONFLOW_TEMPORAL_METRICS_PORT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from activities.audit import AuditActivities
from activities.llm import LlmActivities
from activities.memory.activities import MemoryActivities
from activities.tools.runner import ToolActivities
from activities.transcript import TranscriptActivities
from control.visibility import ConversationFilter
from models.conversation import ConversationState
from workers import telemetry

log = logging.getLogger("daemonflow.metrics")

FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SLOW = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
WAIT = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600)

LLM_REQUESTS = Counter("daemonflow_llm_requests", "Model calls (llm.chat attempts)", ["model", "outcome"])
LLM_SECONDS = Histogram("daemonflow_llm_request_seconds", "Model call latency", ["model", "outcome"], buckets=SLOW)
LLM_TOKENS = Counter("daemonflow_llm_tokens", "Tokens by model and kind (prompt, completion)", ["model", "kind"])
TOOL_RUNS = Counter("daemonflow_tool_executions", "Tool executions (tools.run attempts)", ["tool", "outcome"])
TOOL_SECONDS = Histogram("daemonflow_tool_execution_seconds", "Tool execution time", ["tool", "outcome"], buckets=SLOW)
DECISIONS = Counter("daemonflow_tool_decisions", "Tool call decisions as audited", ["decision", "source"])
APPROVAL_WAIT = Histogram(
    "daemonflow_approval_wait_seconds", "Time a tool call waited for a person", ["decision"], buckets=WAIT
)
SANDBOX_START = Histogram(
    "daemonflow_sandbox_start_seconds", "Creating or starting a sandbox container", ["network"], buckets=FAST + (60,)
)
SANDBOX_EXEC = Histogram("daemonflow_sandbox_exec_seconds", "One command in a sandbox", ["outcome"], buckets=SLOW)
MEMORY_OPS = Counter("daemonflow_memory_operations", "Memory activities", ["operation", "outcome"])
MEMORY_SECONDS = Histogram("daemonflow_memory_operation_seconds", "Memory activity time", ["operation"], buckets=FAST)
CONVERSATIONS_OPENED = Counter("daemonflow_conversations_opened", "Conversations opened (transcript.open)")
CONVERSATIONS_CLOSED = Counter("daemonflow_conversations_closed", "Conversations ended (transcript.close)")
CONVERSATIONS = Gauge("daemonflow_conversations", "Running conversations by state (Temporal visibility)", ["state"])
ACTIVITY_ERRORS = Counter("daemonflow_activity_errors", "Activity attempts that raised", ["activity", "error"])

Attributes = dict[str, str | int | float | bool]


def observe_activity(
    fn: Callable[..., Any], activity_type: str, args: Sequence[Any], result: Any, outcome: str, seconds: float
) -> Attributes:
    """Record one attempt of activity ``fn`` (as registered: a bound method); returns the span
    attributes it is worth (no content). Observers are found by the activity itself, not its name."""
    observer = _OBSERVERS.get(fn.__func__ if inspect.ismethod(fn) else fn)
    if observer is None:
        return {}
    try:
        return observer(activity_type, args, result, outcome, seconds)
    except Exception:  # noqa: BLE001 - a metrics bug must never fail an activity
        log.exception("recording metrics of %s failed", activity_type)
        return {}


def _arg(args: Sequence[Any], index: int) -> Any:
    return args[index] if len(args) > index else None


def _llm(kind: str, args: Sequence[Any], result: Any, outcome: str, seconds: float) -> Attributes:
    request = _arg(args, 0)
    model = getattr(request, "model", None) or getattr(getattr(request, "template", None), "model", None) or "unknown"
    LLM_REQUESTS.labels(model, outcome).inc()
    LLM_SECONDS.labels(model, outcome).observe(seconds)
    attributes: Attributes = {"llm.model": model, "llm.turn": getattr(request, "turn", 0)}
    usage = getattr(result, "usage", None)
    if usage is not None:
        LLM_TOKENS.labels(model, "prompt").inc(usage.prompt_tokens)
        LLM_TOKENS.labels(model, "completion").inc(usage.completion_tokens)
        attributes |= {
            "llm.prompt_tokens": usage.prompt_tokens,
            "llm.completion_tokens": usage.completion_tokens,
            "llm.tool_calls": len(getattr(result, "tool_calls", []) or []),
        }
    recalled = getattr(result, "recalled", None)
    if recalled is not None:  # llm.chat recalled the turn's memories itself (activities/turn_prelude.py)
        MEMORY_OPS.labels("recall", "error" if recalled.error else "ok").inc()
        attributes["memory.recalled"] = len(recalled.memory_ids)
    return attributes | _written(getattr(request, "writes", None), outcome)


def _written(writes: Any, outcome: str) -> Attributes:
    """Audit rows a turn's writes carried (``models/turn_writes.py``): the decisions they record
    are counted once, by the attempt that wrote them, as ``audit.record`` counted its row."""
    if writes is None or outcome != "ok":
        return {}
    attributes: Attributes = {"store.messages": len(writes.messages), "store.actions": len(writes.actions)}
    decided = [_decision(record) for record in writes.actions]
    for key in ("tool.name", "approval.decision", "approval.source"):  # one entry per audit row, in order
        if decided:
            attributes[key] = [str(d[key]) for d in decided]
    return attributes


def _writes(kind: str, args: Sequence[Any], result: Any, outcome: str, seconds: float) -> Attributes:
    return _written(_arg(args, 0), outcome)


def _tool(kind: str, args: Sequence[Any], result: Any, outcome: str, seconds: float) -> Attributes:
    spec, call = _arg(args, 0), _arg(args, 1)
    tool = getattr(spec, "name", None) or getattr(call, "tool", None) or "unknown"
    if result is not None:
        outcome = "success" if result.success else "failure"
    TOOL_RUNS.labels(tool, outcome).inc()
    TOOL_SECONDS.labels(tool, outcome).observe(seconds)
    attributes: Attributes = {"tool.name": tool, "tool.outcome": outcome}
    runs_on = getattr(spec, "runs_on", None)
    if runs_on is not None:
        attributes["tool.runs_on"] = str(getattr(runs_on, "value", runs_on))
    if result is not None:
        if result.exit_code is not None:
            attributes["tool.exit_code"] = result.exit_code
        attributes["tool.truncated"] = bool(result.truncated)
        if result.host_queue:
            attributes["tool.host_queue"] = result.host_queue
    return attributes


def _audit(kind: str, args: Sequence[Any], result: Any, outcome: str, seconds: float) -> Attributes:
    record = _arg(args, 0)
    if record is None or outcome != "ok":
        return {}
    return _decision(record)


def _decision(record: Any) -> Attributes:
    source = str(record.source).split(":", 1)[0]  # rule / approver / timeout / schema / default
    DECISIONS.labels(record.decision, source).inc()
    attributes: Attributes = {"tool.name": record.tool, "approval.decision": record.decision, "approval.source": source}
    wait_ms = record.approval_wait_ms
    if wait_ms is not None:
        APPROVAL_WAIT.labels(record.decision).observe(wait_ms / 1000)
        attributes["approval.wait_ms"] = float(wait_ms)
    return attributes


def _memory(kind: str, args: Sequence[Any], result: Any, outcome: str, seconds: float) -> Attributes:
    operation = kind.rpartition(".")[2]  # memory.recall → recall
    if result is not None and getattr(result, "error", None):
        outcome = "error"
    MEMORY_OPS.labels(operation, outcome).inc()
    MEMORY_SECONDS.labels(operation).observe(seconds)
    attributes: Attributes = {"memory.operation": operation, "memory.outcome": outcome}
    if result is not None and hasattr(result, "memory_ids"):
        attributes["memory.recalled"] = len(result.memory_ids)
    if result is not None and hasattr(result, "added"):
        attributes |= {"memory.added": result.added, "memory.updated": result.updated}
    return attributes


def _opened(kind: str, args: Sequence[Any], result: Any, outcome: str, seconds: float) -> Attributes:
    if outcome == "ok":
        CONVERSATIONS_OPENED.inc()
    template = getattr(result, "template", None)
    return {"agent": template.name, "llm.model": template.model or ""} if template else {}


def _closed(kind: str, args: Sequence[Any], result: Any, outcome: str, seconds: float) -> Attributes:
    if outcome == "ok":
        CONVERSATIONS_CLOSED.inc()
    return {}


_OBSERVERS: dict[Callable[..., Any], Callable[..., Attributes]] = {
    LlmActivities.chat: _llm,
    ToolActivities.run: _tool,
    AuditActivities.record: _audit,
    TranscriptActivities.open: _opened,
    TranscriptActivities.close: _closed,
    TranscriptActivities.write: _writes,
    **{fn: _memory for fn in (MemoryActivities.recall, MemoryActivities.store_turn, MemoryActivities.tool, MemoryActivities.admin)},
}


def activity_failed(activity_type: str, error: BaseException) -> None:
    ACTIVITY_ERRORS.labels(activity_type, type(error).__name__).inc()


# --- sandboxes (``SandboxManager(observer=…)``) --------------------------------------------------


class SandboxObserver:
    """Times sandbox starts and execs into histograms and spans; given to ``SandboxManager``.

    Runs in the manager's worker thread; ``asyncio.to_thread`` copies the activity's context, so
    the spans are children of the ``tools.run`` activity span.
    """

    @contextlib.contextmanager
    def __call__(self, what: str, **attributes: Any) -> Iterator[dict[str, Any]]:
        notes: dict[str, Any] = {}
        started = time.monotonic()
        with telemetry.tracer("daemonflow.sandbox").start_as_current_span(
            f"sandbox.{what}", attributes={k: v for k, v in attributes.items() if v is not None}
        ) as span:
            outcome = "error"
            try:
                yield notes
                outcome = str(notes.get("outcome", "ok"))
            finally:
                seconds = time.monotonic() - started
                for key, value in notes.items():
                    if value is not None:
                        span.set_attribute(f"sandbox.{key}", value)
                if what == "start":
                    SANDBOX_START.labels(str(bool(attributes.get("network"))).lower()).observe(seconds)
                else:
                    SANDBOX_EXEC.labels(outcome).observe(seconds)


# --- conversations by state ----------------------------------------------------------------------

STATES = [state for state in ConversationState if state != ConversationState.ENDED]


async def track_conversation_states(client, interval_s: float, stop: asyncio.Event) -> None:
    """Counts running conversations per ``DaemonflowState`` every ``interval_s`` (gauge).

    One visibility count per state; run by main-queue workers only (any one of them is enough,
    each reports the same figures, so dashboards take ``max``).
    """
    while not stop.is_set():
        for state in STATES:
            query = ConversationFilter(state=state, running=True).query()
            try:
                count = await client.count_workflows(query)
            except Exception as err:  # noqa: BLE001 - visibility hiccups must not stop the worker
                log.debug("counting %s conversations failed: %s", state.value, err)
                break
            CONVERSATIONS.labels(state.value).set(count.count)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


# --- endpoints -----------------------------------------------------------------------------------


def serve_metrics(settings) -> int | None:
    """Serve ``/metrics`` (default registry) on ``metrics_host:metrics_port``; the port, or None.

    A port already taken (a second worker on the same machine) costs the endpoint, not the worker.
    """
    if not settings.metrics_port:
        return None
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(settings.metrics_port, addr=settings.metrics_host)
    except OSError as err:
        log.warning("metrics endpoint not started on %s:%s (%s)", settings.metrics_host, settings.metrics_port, err)
        return None
    port = server.server_address[1]
    log.info("metrics on http://%s:%s/metrics", settings.metrics_host, port)
    return port


def temporal_runtime(settings):
    """A Temporal runtime exporting the SDK's metrics on ``metrics_host:temporal_metrics_port``.

    ``None`` (the default runtime, no endpoint) when the port is 0 or cannot be bound.
    """
    if not settings.temporal_metrics_port:
        return None
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    address = f"{settings.metrics_host}:{settings.temporal_metrics_port}"
    try:
        runtime = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(bind_address=address, durations_as_seconds=True),
                global_tags={"service": "daemonflow-worker"},
            )
        )
    except Exception as err:  # noqa: BLE001 - the SDK reports bind failures as generic errors
        log.warning("Temporal SDK metrics endpoint not started on %s (%s)", address, err)
        return None
    log.info("Temporal SDK metrics on http://%s/metrics", address)
    return runtime
