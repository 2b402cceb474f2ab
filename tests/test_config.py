"""Settings from the environment and agent templates from YAML."""

from __future__ import annotations

import pytest

from config.settings import Settings
from config.templates import InvalidAgentError, UnknownAgentError, load_all, load_template, template_names


def test_defaults_match_the_documented_contract(monkeypatch):
    for name in ("OLLAMA_HOST", "DAEMONFLOW_TASK_QUEUE", "DAEMONFLOW_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert (settings.temporal_address, settings.namespace, settings.task_queue) == ("localhost:7233", "default", "daemonflow")
    assert settings.effective_database_url == "sqlite:///var/daemonflow.db"
    assert settings.ollama_host == "http://localhost:11434"


def test_environment_is_read_with_the_prefix_and_ollama_host_without(monkeypatch):
    monkeypatch.setenv("DAEMONFLOW_TASK_QUEUE", "other")
    monkeypatch.setenv("DAEMONFLOW_DATABASE_URL", "postgresql+psycopg://u@db/x")
    monkeypatch.setenv("OLLAMA_HOST", "http://gpu-box:11434")
    settings = Settings(_env_file=None)
    assert settings.task_queue == "other"
    assert settings.effective_database_url == "postgresql+psycopg://u@db/x"
    assert settings.ollama_host == "http://gpu-box:11434"


def test_the_four_templates_load():
    templates = {t.name: t for t in load_all()}
    assert set(templates) == {"assistant", "developer", "analyst", "moderator"}
    assert templates["analyst"].context_size == 16384
    assert "run_command" in templates["developer"].tools
    assert all(t.system_prompt.strip() for t in templates.values())


def test_unknown_template_lists_the_known_ones():
    with pytest.raises(UnknownAgentError, match="known templates: analyst, assistant, developer, moderator"):
        load_template("asistant")


def test_extra_directory_adds_and_shadows_templates(tmp_path):
    (tmp_path / "assistant.yaml").write_text("system_prompt: local override\n")
    (tmp_path / "pirate.yaml").write_text("system_prompt: Arr.\ntemperature: 1.2\n")
    assert load_template("assistant", tmp_path).system_prompt == "local override"
    assert load_template("pirate", tmp_path).temperature == 1.2
    assert "pirate" in template_names(tmp_path)


def test_invalid_template_is_a_clear_error(tmp_path):
    (tmp_path / "broken.yaml").write_text("temperature: hot\n")
    with pytest.raises(InvalidAgentError, match="broken.yaml is invalid"):
        load_template("broken", tmp_path)
