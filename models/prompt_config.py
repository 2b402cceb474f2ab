"""What every model call of a conversation sends besides its messages, named by its digest.

The template (system prompt, model, options) and the tool definitions are the same for every call
of a conversation: 2 KB for ``assistant``, 8 KB for ``developer``. Carried inline, they went into
workflow history with every ``llm.chat`` call (three calls in a turn with two tool steps: 24 KB).
Now the workflow sends the JSON text once per run and afterwards only its SHA-256; ``llm.chat``
stores the text as a payload of the conversation and keeps it in a bounded in-process cache.
The text, not the models, is what crosses: its digest is then the digest of exactly those bytes,
whichever code version computes it. Pure: the workflow builds it.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from models.agent import AgentTemplate
from models.payloads import digest_of


class PromptConfig(BaseModel):
    template: AgentTemplate
    tools: list[dict] = Field(default_factory=list)
    """Ollama tool definitions offered to the model."""

    def text(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def parse(cls, text: str) -> PromptConfig:
        return cls.model_validate_json(text)


def prompt_ref(text: str) -> str:
    """The name a prompt config's text is stored under (its SHA-256, as every payload's)."""
    return digest_of(text)
