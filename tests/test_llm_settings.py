"""Provider settings from the environment, and the model fields of agent templates."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from activities.llm.chat_models import LlmProviders, embedding_provider
from config.settings import Settings
from config.templates import InvalidAgentError, load_template
from models.agent import AgentTemplate


def test_provider_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("DAEMONFLOW_LLM_PROVIDER", "openai")
    monkeypatch.setenv("DAEMONFLOW_OPENAI_BASE_URL", "http://gpu-box:8000/v1")
    monkeypatch.setenv("DAEMONFLOW_OPENAI_API_KEY", "sk-from-the-environment-123")
    monkeypatch.setenv("DAEMONFLOW_EMBED_BASE_URL", "http://gpu-box:8001/v1")
    monkeypatch.setenv("DAEMONFLOW_MAX_TOKENS", "300")
    monkeypatch.setenv("DAEMONFLOW_OLLAMA_TIMEOUT_S", "42")  # the old name still works
    settings = Settings(_env_file=None)
    assert (settings.llm_provider, settings.openai_base_url, settings.max_tokens) == ("openai", "http://gpu-box:8000/v1", 300)
    assert settings.openai_api_key.get_secret_value() == "sk-from-the-environment-123"
    assert "sk-from-the-environment-123" not in repr(settings) and settings.llm_timeout_s == 42
    embed = embedding_provider(settings)
    assert (embed.kind, embed.base_url) == ("openai", "http://gpu-box:8001/v1")
    monkeypatch.setenv("DAEMONFLOW_LLM_TIMEOUT_S", "7")
    assert Settings(_env_file=None).llm_timeout_s == 7


def test_defaults_stay_on_ollama(monkeypatch):
    for name in ("DAEMONFLOW_LLM_PROVIDER", "DAEMONFLOW_EMBED_PROVIDER", "DAEMONFLOW_MAX_TOKENS", "OLLAMA_HOST"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    model = LlmProviders(settings).chat_model(load_template("assistant"))
    assert (model.provider.kind, model.provider.base_url, model.name) == ("ollama", "http://localhost:11434", "llama3.2")
    assert (model.options.max_tokens, model.options.context_size, model.options.temperature) == (2048, 8192, 0.7)
    assert embedding_provider(settings).kind == "ollama"


@pytest.mark.parametrize(
    ("fields", "wrong"),
    [
        ({"base_url": "http://user:secret@gpu-box:8000/v1"}, "base_url"),
        ({"base_url": "gpu-box:8000"}, "base_url"),
        ({"api_key_env": "DAEMONFLOW_DATABASE_URL"}, "api_key_env"),
        ({"provider": "ollama", "api_key_env": "GPU_BOX_API_KEY"}, "not to Ollama"),
        ({"provider": "anthropic"}, "provider"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_template_model_fields_are_checked(fields, wrong):
    with pytest.raises(ValidationError, match=wrong):
        AgentTemplate(name="x", system_prompt="hi", **fields)


def test_a_template_file_naming_its_server(tmp_path):
    (tmp_path / "coder.yaml").write_text(
        "model: qwen\nprovider: openai\nbase_url: http://gpu-box:8000/v1\napi_key_env: GPU_BOX_API_KEY\n"
        "max_tokens: 1024\nsystem_prompt: You write code.\n"
    )
    template = load_template("coder", tmp_path)
    assert (template.provider, template.base_url, template.api_key_env, template.max_tokens) == (
        "openai", "http://gpu-box:8000/v1", "GPU_BOX_API_KEY", 1024)
    (tmp_path / "bad.yaml").write_text("provider: openai\nbase_url: ftp://x\nsystem_prompt: x\n")
    with pytest.raises(InvalidAgentError, match="base_url"):
        load_template("bad", tmp_path)
