"""The one probe of a model server (``activities/model_probe.py``): ``OLLAMA_HOST`` read as Ollama's
own clients read it, and what a real HTTP server speaking Ollama's API answers (the fake)."""

from __future__ import annotations

import ast
import re
import sys

import ollama  # noqa: F401 - loads ollama._client, whose host parser is the reference

from activities.model_probe import ollama_base_url, probe_ollama
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
    probe = await probe_ollama(ollama_base_url(fake_ollama.url), 3)
    assert probe.reachable and probe.error is None
    assert probe.version == fake_ollama.version and probe.latency_ms is not None and probe.latency_ms >= 0
    assert probe.models == ["all-minilm:latest", "llama3.2:latest"]
    assert probe.has_model("llama3.2") and probe.has_model("llama3.2:latest") and not probe.has_model("nope")


async def test_an_unreachable_server_is_a_probe_that_says_why(fake_ollama: FakeOllama) -> None:
    fake_ollama.down()
    probe = await probe_ollama(ollama_base_url(fake_ollama.url), 3)
    assert not probe.reachable and probe.models == [] and probe.version is None
    assert probe.error and probe.base_url == fake_ollama.url
