"""``workers/local_model.py``: when ``daemonflow dev`` runs the tiny local model, and how.

The decisions run against the fake Ollama (up or down) and an empty cache directory; starting the
real servers is in the ``real_model`` group (it needs ``make local-model``).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from activities.llm.probe import probe_server
from config.settings import Settings
from workers.local_model import (
    CHAT_ALIAS,
    EMBED_DIMENSION,
    LlamaServer,
    LocalModel,
    LocalModelError,
    LocalModelServers,
    dev_model,
)

NOWHERE = "http://127.0.0.1:9"


def dev_settings(tmp_path: Path, **overrides) -> Settings:
    return Settings(_env_file=None, var_dir=tmp_path / "var", local_model_dir=tmp_path / "empty-cache", **overrides)


async def decide(settings: Settings) -> tuple[Settings, list[str]]:
    said: list[str] = []
    async with dev_model(settings, said.append) as chosen:
        return chosen, said


async def test_an_answering_ollama_is_used_as_before(tmp_path, fake_ollama):
    settings = dev_settings(tmp_path, ollama_host=fake_ollama.url)
    assert await decide(settings) == (settings, [])


@pytest.mark.parametrize("overrides", [{"local_model": "off"}, {"llm_provider": "openai"}])
async def test_off_or_a_configured_server_never_starts_it(tmp_path, overrides):
    settings = dev_settings(tmp_path, ollama_host=NOWHERE, **overrides)
    assert await decide(settings) == (settings, [])


async def test_without_ollama_and_without_the_model_it_says_how_to_get_one(tmp_path):
    settings = dev_settings(tmp_path, ollama_host=NOWHERE)
    chosen, said = await decide(settings)
    assert chosen == settings
    assert said[0] == f"no Ollama at {NOWHERE}"
    assert "`make local-model`" in said[1] and str(tmp_path / "empty-cache") in said[1]


def test_settings_for_the_local_servers(tmp_path, local_model_stub):
    servers = LocalModelServers(
        LlamaServer(local_model_stub, "chat", tmp_path / "c.log", port=18080),
        LlamaServer(local_model_stub, "embeddings", tmp_path / "e.log", port=18081),
    )
    chosen = servers.settings_for(dev_settings(tmp_path, max_tokens=4096))
    assert (chosen.llm_provider, chosen.openai_base_url) == ("openai", "http://127.0.0.1:18080/v1")
    assert (chosen.embed_provider, chosen.embed_base_url) == ("openai", "http://127.0.0.1:18081/v1")
    assert chosen.model == CHAT_ALIAS and chosen.max_tokens == 512
    assert chosen.memory_collection == f"memories_smollm2_{EMBED_DIMENSION}"  # 576-d vectors get their own
    mine = servers.settings_for(dev_settings(tmp_path, memory_collection="team"))
    assert mine.memory_collection == "team"


@pytest.fixture
def local_model_stub(tmp_path) -> LocalModel:
    return LocalModel(server=tmp_path / "llama-server", model=tmp_path / "model.gguf")


# --------------------------------------------------------------------------- with the real servers


@pytest.mark.real_model
async def test_without_ollama_dev_runs_the_local_model_and_stops_it(tmp_path, local_model, monkeypatch):
    monkeypatch.setenv("DAEMONFLOW_LOCAL_MODEL_DIR", str(local_model.server.parent.parent))
    settings = Settings(_env_file=None, var_dir=tmp_path / "var", ollama_host=NOWHERE)
    said: list[str] = []
    async with dev_model(settings, said.append) as chosen:
        probe = await probe_server("openai", chosen.openai_base_url)
        assert probe.reachable and probe.models == [CHAT_ALIAS]
        assert (await probe_server("openai", chosen.embed_base_url)).reachable
    assert any("tiny local model" in line for line in said)
    assert (tmp_path / "var" / "llama-server-chat.log").is_file()
    with pytest.raises(httpx.ConnectError):
        httpx.get(chosen.openai_base_url + "/models")


@pytest.mark.real_model
async def test_a_server_that_cannot_start_says_why(tmp_path, local_model):
    broken = LocalModel(server=local_model.server, model=tmp_path / "missing.gguf")
    server = LlamaServer(broken, "chat", tmp_path / "chat.log")
    with pytest.raises(LocalModelError, match="exited at start") as err:
        await server.start()
    assert "missing.gguf" in str(err.value)
