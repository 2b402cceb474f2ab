"""The model servers as a ``daemonflow api`` process sees them, over real HTTP, when the chat model
is not on Ollama: ``GET /health`` names the servers by provider (no Ollama reported down when none
is used), and ``POST /conversations`` checks a model on the agent template's own server — refused
where the server surely lacks it (Ollama, vLLM), accepted on a llama-server (it answers any name).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.ollama import FakeOllama
from tests.fakes.openai_compatible import FakeOpenAI
from tests.fixtures.api import api_env, free_port, launch, role_keys, stop, wait_for_http
from tests.fixtures.temporal import daemon_settings

NO_OLLAMA = "http://127.0.0.1:9"
PROBLEM = "application/problem+json"


def templates(directory: Path, vllm: FakeOpenAI, ollama: FakeOllama) -> Path:
    """Agents on three servers: the settings' llama-server, a vLLM, an Ollama of their own."""
    directory.mkdir()
    (directory / "on-vllm.yaml").write_text(f"provider: openai\nbase_url: {vllm.url}\nsystem_prompt: hi\n")
    (directory / "on-ollama.yaml").write_text(f"provider: ollama\nbase_url: {ollama.url}\nsystem_prompt: hi\n")
    return directory


@pytest.fixture
async def openai_api(temporal_address, fake_openai, fake_ollama, tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    """A ``daemonflow api`` whose chat server is ``fake_openai`` (a llama-server), with nothing at
    ``OLLAMA_HOST``; the agents ``on-vllm`` and ``on-ollama`` name servers of their own."""
    vllm = FakeOpenAI(models=["qwen2.5"])
    vllm.owned_by = "vllm"
    with vllm:
        settings = daemon_settings(tmp_path, temporal_address, NO_OLLAMA)
        keys, port = role_keys(), free_port()
        env = {
            **api_env(settings, keys, port),
            "DAEMONFLOW_LLM_PROVIDER": "openai",
            "DAEMONFLOW_OPENAI_BASE_URL": fake_openai.url,
            "DAEMONFLOW_MODEL": "smollm2",
            "DAEMONFLOW_EMBED_MODEL": "smollm2-embed",
            "DAEMONFLOW_AGENTS_DIR": str(templates(tmp_path / "agents", vllm, fake_ollama)),
        }
        process = launch(env, tmp_path / "api.log")
        try:
            await wait_for_http(f"http://127.0.0.1:{port}", process, tmp_path / "api.log")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                         headers={"Authorization": f"Bearer {keys['operator']}"}) as http:  # fmt: skip
                yield http
        finally:
            stop(process)


async def test_health_names_the_model_servers_by_provider_and_reports_no_ollama(openai_api, fake_openai):
    report = (await openai_api.get("/health")).json()
    assert list(report["model_servers"]) == ["openai"], report
    server = report["model_servers"]["openai"]
    assert server["ok"] is True and server["detail"].startswith(f"llama.cpp at {fake_openai.url}"), server
    assert "ollama" not in report
    assert report["status"] == "degraded" and report["workers"]["ok"] is False  # no worker in this test

    fake_openai.down()
    down = (await openai_api.get("/health")).json()
    assert down["model_servers"]["openai"]["ok"] is False and fake_openai.url in down["model_servers"]["openai"]["detail"]


async def test_a_model_is_checked_on_the_agent_templates_own_server(openai_api, fake_openai, fake_ollama):
    async def start(agent: str, model: str) -> httpx.Response:
        return await openai_api.post("/conversations", json={
            "conversation_id": f"model-check-{uuid.uuid4().hex[:8]}", "agent": agent, "model": model})  # fmt: skip

    on_vllm = await start("on-vllm", "no-such-model")
    assert on_vllm.status_code == 422 and on_vllm.headers["content-type"].startswith(PROBLEM), on_vllm.text
    assert on_vllm.json()["type"].endswith("unknown-model")
    assert "vLLM at" in on_vllm.json()["detail"] and "'no-such-model'" in on_vllm.json()["detail"]
    assert "qwen2.5" in on_vllm.json()["detail"]  # what it does serve

    on_ollama = await start("on-ollama", "no-such-model")
    assert on_ollama.status_code == 422, on_ollama.text
    assert f"Ollama at {fake_ollama.url}" in on_ollama.json()["detail"]
    assert "`ollama pull no-such-model`" in on_ollama.json()["detail"]
    assert (await start("on-ollama", "llama3.2")).status_code == 201  # its own Ollama has it

    # The settings' llama-server answers any model name with the model it runs: not refused.
    assert (await start("assistant", "whatever-name")).status_code == 201
    asked = {r.path for r in fake_openai.requests}
    assert "/v1/models" in asked and asked <= {"/v1/models", "/props", "/version"}  # probed, never chatted with
