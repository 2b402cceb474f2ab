"""``daemonflow api`` and ``daemonflow dev`` as a user runs them: real processes, real ports."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from api.auth import KeyRing
from tests.fakes.ollama import FakeOllama
from tests.fixtures.temporal import SESSION_QUEUE_PREFIX
from tests.fixtures.api import REPO, clean_env, free_port
from tests.test_dev_stack import dev_stack, listens


def daemonflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO, env={**clean_env(), **(env or {})}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_api_refuses_to_run_open() -> None:
    result = daemonflow("api", env={"DAEMONFLOW_API_PORT": str(free_port())})
    assert result.returncode == 2, result
    assert "no API keys configured" in result.stderr and "DAEMONFLOW_API_KEYS" in result.stderr
    assert "name:role:key" in result.stderr and "Traceback" not in result.stderr


def test_malformed_keys_are_named_without_echoing_secrets() -> None:
    secret = "short-secret"
    result = daemonflow("api", env={"DAEMONFLOW_API_KEYS": f"ops:admin:{uuid.uuid4().hex},dev:root:{secret}"})
    assert result.returncode == 2
    assert "entry 2 ('dev')" in result.stderr and "role 'root'" in result.stderr
    assert secret not in result.stderr


def test_new_key_prints_a_usable_entry_and_its_hashed_form() -> None:
    result = daemonflow("api", "--new-key", "ops:approver")
    assert result.returncode == 0, result.stderr
    plain, _, hashed = result.stdout.strip().partition("\n# the same entry without the secret (give the client the key above):\n")
    name, role, key = plain.split(":", 2)
    assert (name, role) == ("ops", "approver") and len(key) >= 40
    assert hashed == f"ops:approver:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    for entry in (plain, hashed):
        principal = KeyRing.parse(entry).authenticate(key)
        assert principal is not None and principal.name == "ops" and principal.role == "approver"
    assert KeyRing.parse(hashed).authenticate(key + "x") is None


async def test_dev_serves_the_api_with_a_generated_admin_key(
    temporal_env: WorkflowEnvironment, fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    api_port = free_port()
    env = {
        "DAEMONFLOW_VAR_DIR": str(tmp_path / "var"),
        "DAEMONFLOW_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "DAEMONFLOW_TASK_QUEUE": f"{SESSION_QUEUE_PREFIX}{uuid.uuid4().hex[:10]}",
        "OLLAMA_HOST": fake_ollama.url,
        "DAEMONFLOW_API_PORT": str(api_port),
    }
    async with dev_stack(env, tmp_path) as stack:
        url = f"http://127.0.0.1:{api_port}"
        assert f"API          {url}" in stack.output and f"admin page   {url}/ui/" in stack.output
        match = re.search(r"API key      (\S+)   \(admin, generated for this run", stack.output)
        assert match, stack.output
        key = match.group(1)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            assert (await http.get("/health")).status_code == 401
            health = await http.get("/health", headers={"Authorization": f"Bearer {key}"})
            assert health.status_code == 200 and health.json()["temporal"]["ok"], health.text
            created = await http.post("/conversations", json={"message": "hi over http"},
                                      headers={"Authorization": f"Bearer {key}"})  # fmt: skip
            assert created.status_code == 201 and created.json()["turn"]["reply"] == "echo: hi over http"
            # An open event stream must not hold up Ctrl-C.
            async with http.stream("GET", f"/conversations/{created.json()['conversation_id']}/events",
                                   headers={"Authorization": f"Bearer {key}"}) as events:  # fmt: skip
                assert events.status_code == 200
                assert await stack.interrupt() == 0, stack.output
        assert not listens(api_port), "the API outlived daemonflow dev"
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert not leaked, f"the generated key was written to {leaked}"


async def test_dev_runs_without_the_api_when_its_port_is_taken(
    temporal_env: WorkflowEnvironment, fake_ollama: FakeOllama, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = {
            "DAEMONFLOW_VAR_DIR": str(tmp_path / "var"),
            "DAEMONFLOW_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
            "DAEMONFLOW_TASK_QUEUE": f"{SESSION_QUEUE_PREFIX}{uuid.uuid4().hex[:10]}",
            "OLLAMA_HOST": fake_ollama.url,
            "DAEMONFLOW_API_PORT": str(port),
        }
        async with dev_stack(env, tmp_path) as stack:
            assert f"API: cannot listen on 127.0.0.1:{port}" in stack.output
            assert "DAEMONFLOW_API_PORT" in stack.output
            assert await stack.interrupt() == 0, stack.output
