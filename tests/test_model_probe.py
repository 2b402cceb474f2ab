"""The one probe of the model servers (``activities/llm/probe.py``): ``OLLAMA_HOST`` read as Ollama's
own clients read it (``ollama_base_url``, the one reader of it), and what a real HTTP server
speaking Ollama's API answers (the fake)."""

from __future__ import annotations

import ast
import re
import sys

import ollama  # noqa: F401 - loads ollama._client, whose host parser is the reference
import pytest

from activities.llm.chat_models import LlmProviders
from activities.llm.ollama_provider import OllamaProvider, ollama_base_url
from activities.llm.probe import is_model_server_check, model_servers, probe_model_servers, probe_server, verdict
from activities.llm.provider import PromptMessage
from config.settings import Settings
from models.agent import AgentTemplate
from models.llm import ServerProbe
from tests.fakes.ollama import FakeOllama

REFERENCE = sys.modules["ollama._client"]._parse_host
"""Ollama's own parser of OLLAMA_HOST (private, so only the test leans on it, as an oracle)."""


def test_ollama_host_is_read_as_ollamas_clients_read_it() -> None:
    documented = re.findall(r">>> _parse_host\((.*?)\)", REFERENCE.__doc__ or "")
    assert len(documented) >= 20, "the reference's documented cases are the test's table"
    hosts = [ast.literal_eval(case) for case in documented] + ["gpu-box", "http://gpu-box", "localhost:8080/", "[::1]:1"]
    for host in hosts:
        assert ollama_base_url(host) == REFERENCE(host), host
    assert ollama_base_url("  http://gpu-box:11434/  ") == "http://gpu-box:11434"


async def test_a_reachable_server_reports_version_models_and_latency(fake_ollama: FakeOllama) -> None:
    probe = await probe_server("ollama", fake_ollama.url, timeout_s=3)
    assert probe.reachable and probe.error is None
    assert probe.version == fake_ollama.version and probe.latency_ms is not None and probe.latency_ms >= 0
    assert probe.models == ["all-minilm:latest", "llama3.2:latest"]
    assert probe.has_model("llama3.2") and probe.has_model("llama3.2:latest") and not probe.has_model("nope")


async def test_an_unreachable_server_is_a_probe_that_says_why(fake_ollama: FakeOllama) -> None:
    fake_ollama.down()
    probe = await probe_server("ollama", fake_ollama.url, timeout_s=3)
    assert not probe.reachable and probe.models == [] and probe.version is None
    assert probe.error and probe.base_url == fake_ollama.url


async def test_every_reader_of_ollama_host_reads_it_the_same_way(fake_ollama: FakeOllama) -> None:
    """``OLLAMA_HOST=127.0.0.1:<port>`` (no scheme, as Ollama accepts it): the model calls, the probe
    of the settings' servers and the probe of one server all reach the same Ollama."""
    bare = fake_ollama.url.removeprefix("http://")
    settings = Settings(_env_file=None, ollama_host=bare)
    assert OllamaProvider(bare).base_url == fake_ollama.url
    [server] = model_servers(settings)
    assert (server.name, server.provider.base_url) == ("ollama", fake_ollama.url)
    assert (await probe_model_servers(settings))["chat"].reachable
    assert (await probe_server("ollama", bare)).reachable
    providers = LlmProviders(settings)
    try:
        outcome = await providers.chat_model(AgentTemplate(name="t", system_prompt="")).chat([PromptMessage("user", "hi")])
    finally:
        await providers.close()
    assert outcome.content == "echo: hi" and len(fake_ollama.chat_requests()) == 1


@pytest.mark.parametrize(
    ("overrides", "servers"),
    [
        ({}, [("ollama", ("chat", "embeddings"), ("llama3.2", "all-minilm"))]),
        ({"llm_provider": "openai"}, [("openai", ("chat", "embeddings"), ("llama3.2", "all-minilm"))]),
        ({"llm_provider": "openai", "embed_base_url": "http://127.0.0.1:8081/v1"},
         [("openai", ("chat",), ("llama3.2",)), ("openai-embeddings", ("embeddings",), ("all-minilm",))]),
        ({"llm_provider": "openai", "embed_provider": "ollama"},
         [("openai", ("chat",), ("llama3.2",)), ("ollama-embeddings", ("embeddings",), ("all-minilm",))]),
    ],
)  # fmt: skip
def test_the_model_servers_of_the_settings_are_named_by_provider(overrides, servers) -> None:
    found = model_servers(Settings(_env_file=None, **overrides))
    assert [(s.name, s.roles, s.wanted) for s in found] == servers
    assert all(is_model_server_check(s.name) for s in found)
    assert not any(is_model_server_check(name) for name in ("memory", "docker", "store", "temporal"))


def test_only_a_server_that_serves_what_it_lists_surely_lacks_a_model() -> None:
    ollama = ServerProbe(provider="ollama", base_url="http://o:11434", reachable=True, models=["llama3.2:latest"])
    assert ollama.lacks("mistral") and not ollama.lacks("llama3.2")
    vllm = ServerProbe(provider="openai", base_url="http://v/v1", reachable=True, server="vLLM", models=["qwen"])
    assert vllm.lacks("mistral") and not vllm.lacks("qwen")
    llama_cpp = ServerProbe(provider="openai", base_url="http://l/v1", reachable=True, server="llama.cpp", models=["a"])
    assert not llama_cpp.lacks("any-name-at-all")  # it answers with the one model it runs
    away = ServerProbe(provider="ollama", base_url="http://o:11434", reachable=False, error="refused")
    assert not away.lacks("mistral")  # unknown: turns wait for it

    assert verdict(ollama, ("llama3.2",)) == ("ok", "Ollama at http://o:11434, 1 model(s)")
    state, detail = verdict(ollama, ("llama3.2", "nomic-embed-text"))
    assert state == "missing" and "has no nomic-embed-text (`ollama pull nomic-embed-text`)" in detail
    assert verdict(away, ("llama3.2",)) == ("down", "Ollama at http://o:11434: refused")
    assert verdict(llama_cpp, ("smollm2",))[0] == "ok"
