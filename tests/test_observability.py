"""Traces, metrics and logs of real turns with a tool call, on the real dev server and Docker.

Traces are captured in memory from the same interceptors production uses (``workers.client
.connect`` + ``build_worker``); metrics are scraped over HTTP from a ``daemonflow worker`` process
and parsed with prometheus-client's parser; logs are that process's JSON lines.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from models.conversation import ConversationInput, SendMessage, conversation_workflow_id
from tests.fakes.ollama import Reply, ToolCall
from tests.fixtures.temporal import daemon_settings
from tests.test_conversation import wait_for
from workers import logs, telemetry
from workers.client import connect
from workers.main import build_worker
from workflows.conversation import ConversationWorkflow

pytestmark = pytest.mark.usefixtures("docker_client")

SECRET_MESSAGE = "please run the marker command zebra-7731"
COMMAND = "echo output-quokka-4410"
ALLOW = [{"id": "allow-echo", "decision": "allow", "tools": ["run_command"], "command": ["echo *"]}]


@pytest.fixture
def spans():
    """Daemonflow's spans go to memory for the test (the global provider is left alone)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use_tracer_provider(provider)
    yield exporter
    telemetry.use_tracer_provider(None)
    provider.shutdown()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def chain(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """Names from ``span`` up to its root, following parent ids (a missing parent ends it)."""
    names = [span.name]
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def in_trace(exporter: InMemorySpanExporter, trace_id: int) -> tuple[list[ReadableSpan], dict[int, ReadableSpan]]:
    finished = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
    return finished, {s.context.span_id: s for s in finished}


def named(finished: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name == name]


def assert_no_content(finished: list[ReadableSpan], *secrets: str) -> None:
    for span in finished:
        for key, value in (span.attributes or {}).items():
            for secret in secrets:
                assert secret not in str(value), f"{span.name} attribute {key} leaks {secret!r}"


def script_turn(fake_ollama, command: str = COMMAND) -> None:
    fake_ollama.script(Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": command})]), Reply(content="done"))


async def test_a_turn_is_one_trace_from_the_request_down_to_the_sandbox(
    temporal_env, temporal_address, fake_ollama, tmp_path, spans
):
    settings = daemon_settings(tmp_path, temporal_address, fake_ollama.url)
    client = await connect(settings)  # the traced client the API and the CLI use
    tracer = telemetry.tracer("test")
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JsonFormatter())
    daemonflow_logger = logging.getLogger("daemonflow")
    level = daemonflow_logger.level
    daemonflow_logger.setLevel(logging.INFO)
    daemonflow_logger.addHandler(handler)
    conversation_id = f"trace-{uuid.uuid4().hex[:8]}"
    try:
        async with build_worker(client, settings):
            script_turn(fake_ollama)
            with tracer.start_as_current_span("POST /conversations") as first_request:
                handle = await client.start_workflow(
                    ConversationWorkflow.run,
                    ConversationInput(conversation_id=conversation_id, agent="developer", policy=ALLOW),
                    id=conversation_workflow_id(conversation_id),
                    task_queue=settings.task_queue,
                )
                first = await handle.execute_update(ConversationWorkflow.send_message, SendMessage(content=SECRET_MESSAGE))
            script_turn(fake_ollama, "echo again")
            with tracer.start_as_current_span("POST /conversations/{id}/messages") as second_request:
                second = await handle.execute_update(ConversationWorkflow.send_message, SendMessage(content="and again"))
    finally:
        daemonflow_logger.removeHandler(handler)
        daemonflow_logger.setLevel(level)
    assert [c.success for c in first.tool_calls + second.tool_calls] == [True, True]

    # Turn 1: the request is the root of everything down to the command in the container.
    finished, by_id = in_trace(spans, first_request.get_span_context().trace_id)
    [execute] = named(finished, "sandbox.exec")
    path = chain(execute, by_id)
    assert path[0] == "sandbox.exec" and path[1] == "RunActivity:tools.run" and path[-1] == "POST /conversations"
    assert "StartActivity:tools.run" in path  # the conversation's own activity (no child workflow)
    assert execute.attributes["sandbox.exit_code"] == 0 and execute.attributes["sandbox.outcome"] == "ok"
    [start] = named(finished, "sandbox.start")
    assert chain(start, by_id)[-1] == "POST /conversations" and start.attributes["created"] is True

    [tool] = named(finished, "RunActivity:tools.run")
    assert tool.attributes["tool.name"] == "run_command" and tool.attributes["tool.exit_code"] == 0
    assert tool.attributes["daemonflow.conversation_id"] == conversation_id
    llm = named(finished, "RunActivity:llm.chat")
    assert len(llm) == 2 and all(chain(s, by_id)[-1] == "POST /conversations" for s in llm)
    assert all(s.attributes["llm.model"] == settings.model for s in llm)
    assert sum(s.attributes["llm.prompt_tokens"] for s in llm) == first.usage.prompt_tokens
    assert sum(s.attributes["llm.completion_tokens"] for s in llm) == first.usage.completion_tokens
    # The audit row went with the tool message, written by the next model call before it read the window.
    [audited] = [s for s in llm if s.attributes.get("store.actions")]
    assert list(audited.attributes["approval.decision"]) == ["allow"]
    assert list(audited.attributes["approval.source"]) == ["rule"]
    assert llm[0].attributes["memory.recalled"] == 0  # recall happens in the turn's first model call
    for span in named(finished, "RunActivity:memory.store"):
        assert span.attributes["memory.operation"] == "store"
    assert_no_content(finished, SECRET_MESSAGE, "zebra", "quokka")

    # Turn 2 arrived as an update on a running workflow: its activities hang under *its* request.
    finished, by_id = in_trace(spans, second_request.get_span_context().trace_id)
    [execute] = named(finished, "sandbox.exec")
    assert chain(execute, by_id)[-1] == "POST /conversations/{id}/messages"
    assert len(named(finished, "RunActivity:llm.chat")) == 2
    assert not named(finished, "sandbox.start")  # the container of turn 1 is reused

    # The sandbox's own log line carries the ids and the trace of the request.
    records = [json.loads(line) for line in captured.getvalue().splitlines()]
    [created] = [r for r in records if r["message"].startswith("created sandbox")]
    assert created["conversation_id"] == conversation_id and created["activity"] == "tools.run"
    assert created["workflow_id"] == f"conversation-{conversation_id}"
    assert created["trace_id"] == format(first_request.get_span_context().trace_id, "032x")


async def test_an_api_request_trace_continues_into_the_workflow(
    temporal_env, temporal_address, fake_ollama, tmp_path, spans
):
    app_module = pytest.importorskip("api.app")
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    from api.auth import KeyRing

    settings = daemon_settings(tmp_path, temporal_address, fake_ollama.url)
    client = await connect(settings)
    app = app_module.create_app(settings, client, KeyRing.parse("ops:admin:test-key-1234567890"))
    FastAPIInstrumentor.instrument_app(app, tracer_provider=telemetry.tracer_provider())
    script_turn(fake_ollama)
    async with build_worker(client, settings):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            response = await http.post(
                "/conversations",
                json={"agent": "developer", "policy": ALLOW, "message": SECRET_MESSAGE},
                headers={"Authorization": "Bearer test-key-1234567890"},
                timeout=120,
            )
    assert response.status_code == 201, response.text
    servers = [s for s in spans.get_finished_spans() if s.name == "POST /conversations" and s.parent is None]
    assert len(servers) == 1
    finished, by_id = in_trace(spans, servers[0].context.trace_id)
    [execute] = named(finished, "sandbox.exec")
    assert chain(execute, by_id)[-1] == "POST /conversations"
    assert named(finished, "RunActivity:llm.chat")
    assert_no_content(finished, SECRET_MESSAGE, "quokka")


def daemonflow_worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    """``daemonflow worker`` exactly as an operator starts it."""
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker", *args],
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def scrape(port: int) -> dict[str, list]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def sample(families: dict[str, list], name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` (``…_total``, ``…_count``) whose labels match."""
    return sum(
        s.value
        for samples in families.values()
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_worker_metrics_and_json_logs_after_a_turn(temporal_env, temporal_address, fake_ollama, tmp_path):
    settings = daemon_settings(tmp_path, temporal_address, fake_ollama.url)
    app_port, sdk_port = free_port(), free_port()
    env = {
        "DAEMONFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
        "DAEMONFLOW_TASK_QUEUE": settings.task_queue,
        "DAEMONFLOW_DATABASE_URL": settings.effective_database_url,
        "DAEMONFLOW_VAR_DIR": str(settings.var_dir),
        "OLLAMA_HOST": settings.ollama_host,
        "DAEMONFLOW_METRICS_PORT": str(app_port),
        "DAEMONFLOW_TEMPORAL_METRICS_PORT": str(sdk_port),
        "DAEMONFLOW_CONVERSATION_METRICS_INTERVAL_S": "0.5",
        "DAEMONFLOW_LOG_FORMAT": "json",
        "DAEMONFLOW_SCHEDULES": "off",
    }
    log = tmp_path / "worker.log"
    worker = daemonflow_worker(env, log)
    try:
        script_turn(fake_ollama)
        conversation_id = f"metrics-{uuid.uuid4().hex[:8]}"
        handle = await temporal_env.client.start_workflow(
            ConversationWorkflow.run,
            ConversationInput(conversation_id=conversation_id, agent="developer", policy=ALLOW),
            id=conversation_workflow_id(conversation_id),
            task_queue=settings.task_queue,
        )
        result = await handle.execute_update(ConversationWorkflow.send_message, SendMessage(content=SECRET_MESSAGE))
        assert result.tool_calls[0].success

        async def idle_counted():
            families = scrape(app_port)
            return families if sample(families, "daemonflow_conversations", state="idle") >= 1 else None

        app = await wait_for(idle_counted, timeout=30)
        assert sample(app, "daemonflow_llm_requests_total", model="llama3.2", outcome="ok") >= 2
        assert sample(app, "daemonflow_llm_tokens_total", model="llama3.2", kind="completion") == result.usage.completion_tokens
        assert sample(app, "daemonflow_tool_executions_total", tool="run_command", outcome="success") == 1
        assert sample(app, "daemonflow_tool_decisions_total", decision="allow", source="rule") == 1
        assert sample(app, "daemonflow_sandbox_start_seconds_count", network="false") == 1
        assert sample(app, "daemonflow_sandbox_exec_seconds_count", outcome="ok") == 1
        assert sample(app, "daemonflow_conversations_opened_total") == 1

        sdk = scrape(sdk_port)
        assert sample(sdk, "temporal_activity_execution_latency_count", activity_type="tools.run") == 1
        steps = [sample(sdk, f"temporal_{kind}_execution_latency_count", activity_type="llm.chat")
                 for kind in ("activity", "local_activity")]  # a quick model's later steps are local
        assert sum(steps) >= 2, steps
    finally:
        worker.terminate()
        worker.wait(30)

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines, log.read_text()[-2000:]
    [created] = [r for r in lines if r["message"].startswith("created sandbox")]
    assert created["conversation_id"] == conversation_id and created["activity"] == "tools.run"
    assert all(SECRET_MESSAGE not in json.dumps(r) for r in lines)
