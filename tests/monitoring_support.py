"""Helpers shared by the monitoring, cache-cleanup and schedule tests.

``schedule_worker`` runs only what the schedules need (their four workflows and activities) on a
fresh task queue with the test's own settings, so a test can configure budgets, a webhook or
thresholds without building a whole conversation worker.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from config.settings import Settings
from models.monitoring import MonitoringInput, MonitoringResult
from store.engine import make_engine
from tests.fixtures.temporal import daemon_settings
from workers import schedules
from workflows.monitoring import MonitoringWorkflow


def schedule_settings(tmp_path: Path, temporal_address: str, ollama_url: str, **overrides: Any) -> Settings:
    """A test's settings: own task queue, SQLite file, var dir, and schedule ids prefixed to be unique."""
    settings = daemon_settings(tmp_path, temporal_address, ollama_url, **overrides)
    return settings.model_copy(update={"schedule_id_prefix": f"{settings.task_queue}-", "schedules": "off"})


def env_of(settings: Settings) -> dict[str, str]:
    """Environment for a ``daemonflow`` subprocess that must reach the test's stack and store."""
    return {
        "DAEMONFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
        "DAEMONFLOW_TASK_QUEUE": settings.task_queue,
        "DAEMONFLOW_DATABASE_URL": settings.effective_database_url,
        "DAEMONFLOW_VAR_DIR": str(settings.var_dir),
        "DAEMONFLOW_SCHEDULE_ID_PREFIX": settings.schedule_id_prefix,
        "OLLAMA_HOST": settings.ollama_host,
    }


@contextlib.asynccontextmanager
async def schedule_worker(client: Client, settings: Settings, docker_client: Any | None = None) -> AsyncIterator[Worker]:
    engine = make_engine(settings.effective_database_url)
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=schedules.WORKFLOWS,
        activities=schedules.activities(settings, engine, docker_client),
    )
    async with worker:
        yield worker


async def monitoring_round(client: Client, settings: Settings, window_minutes: int = 60) -> MonitoringResult:
    """One monitoring run, as the schedule starts it, on ``settings``' task queue; its result."""
    return await client.execute_workflow(
        MonitoringWorkflow.run,
        MonitoringInput(window_minutes=window_minutes),
        id=f"{settings.schedule_id_prefix}monitoring-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
        execution_timeout=timedelta(minutes=2),
    )


def run_id() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


class Webhook:
    """A real HTTP endpoint that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def events(self, key: str) -> list[str]:
        return [r["event"] for r in self.received if r["alert"]["key"] == key]


@contextlib.contextmanager
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook._thread.start()
    try:
        yield hook
    finally:
        hook._server.shutdown()
        hook._server.server_close()
