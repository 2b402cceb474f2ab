"""Agent templates: who an agent is (model, personality, prompt, tools), loaded from YAML."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AgentTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    model: str | None = None
    """Ollama model; ``None`` means the ``DAEMONFLOW_MODEL`` setting."""
    context_size: int = Field(default=8192, ge=512)
    """Tokens; sent to Ollama as ``num_ctx`` and used to bound the transcript window."""
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
