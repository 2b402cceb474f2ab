"""Agent templates: who an agent is (model, personality, prompt, tools), loaded from YAML."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

LlmProviderName = Literal["ollama", "openai"]
"""``ollama``: Ollama's native API; ``openai``: any OpenAI-compatible server (llama.cpp's
``llama-server``, vLLM, LM Studio, Ollama's own ``/v1``)."""


class AgentTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    model: str | None = None
    """Chat model; ``None`` means the ``DAEMONFLOW_MODEL`` setting."""
    provider: LlmProviderName | None = None
    """Which API serves ``model``; ``None`` means the worker's ``DAEMONFLOW_LLM_PROVIDER``."""
    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s@]+$")
    """The server of this agent (``http://gpu-box:8000/v1`` for vLLM, ``http://gpu-box:11434`` for
    Ollama); ``None`` means the provider's URL setting. No credentials in it: the template travels in
    workflow history (hence no ``@``)."""
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]*(KEY|TOKEN)$")
    """Name of the environment variable holding this server's API key (read by the worker, never
    carried in history); ``None`` means ``DAEMONFLOW_OPENAI_API_KEY``. OpenAI-compatible servers
    only. The name must end in ``KEY`` or ``TOKEN``, so a template cannot send some other variable
    of the worker's environment (a database URL…) to its server."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Most tokens one model call may generate (Ollama ``num_predict``, OpenAI ``max_tokens``);
    ``None`` means the ``DAEMONFLOW_MAX_TOKENS`` setting."""
    context_size: int = Field(default=8192, ge=512)
    """Tokens; sent to Ollama as ``num_ctx`` and used to bound the transcript window (an
    OpenAI-compatible server's context is set when the server starts)."""
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    personality: str = ""
    tools: list[str] = Field(default_factory=list)
    system_prompt: str
    memory: bool = True
    """Whether memories are recalled and extracted for this agent."""
    max_steps_per_turn: int | None = Field(default=None, ge=1, le=100)
    """Most model steps a turn of this agent may take. It only ever lowers a conversation's own
    ``max_steps_per_turn`` (8): the turn stops at the smaller of the two. Written in the template's
    YAML, or lowered by an optimisation hint when the conversation opens (``store/agent_hints.py``)."""
    expertise: list[str] = Field(default_factory=list)
    """What the agent is for, as short topics (``pytest tests, test failures``) or example messages
    (``this is rude``): in a channel the relevance engine compares each post with every entry (and
    with ``description``) by embeddings, and the closest one is its expertise match."""

    @model_validator(mode="after")
    def _key_only_for_openai(self) -> AgentTemplate:
        if self.api_key_env and self.provider == "ollama":
            raise ValueError("api_key_env applies to OpenAI-compatible servers (provider: openai), not to Ollama")
        return self
