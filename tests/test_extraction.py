"""Memory extraction through "the chat model of a template", on both providers (fake servers over
real HTTP): the schema it is given, and the slack it grants a small model's answer."""

from __future__ import annotations

import json

import pytest

from activities.llm.chat_models import LlmProviders
from activities.memory.extraction import (
    MAX_TOKENS,
    REQUESTED_MAX,
    TEXT_CHARS,
    ExtractionError,
    extract,
    extraction_schema,
)
from config.settings import Settings
from models.agent import AgentTemplate
from store.tables import Message

TURN = [Message(conversation_id="c", seq=1, role="user", content="my deployment target is a Raspberry Pi 5")]
PI = "The user's deployment target is a Raspberry Pi 5."


def template(**fields) -> AgentTemplate:
    return AgentTemplate(name="assistant", system_prompt="", **fields)


@pytest.fixture
def ollama_model(fake_ollama):
    providers = LlmProviders(Settings(_env_file=None, ollama_host=fake_ollama.url))
    return providers.chat_model(template())


async def test_the_model_is_asked_for_a_bounded_list_at_temperature_zero(fake_openai):
    fake_openai.script_structured(json.dumps({"memories": [{"text": PI, "kind": "semantic", "importance": 0.9}]}))
    providers = LlmProviders(Settings(_env_file=None))
    model = providers.chat_model(template(provider="openai", base_url=fake_openai.url, model="smollm2", max_tokens=256))
    found = await extract(model, TURN)
    await providers.close()
    assert [(m.text, m.importance) for m in found] == [(PI, 0.9)]
    sent = fake_openai.structured_requests()[0]
    assert sent["response_format"]["json_schema"]["schema"] == extraction_schema()
    assert extraction_schema()["properties"]["memories"]["maxItems"] == REQUESTED_MAX
    assert extraction_schema()["$defs"]["ExtractedMemory"]["properties"]["text"]["maxLength"] == TEXT_CHARS
    assert (sent["temperature"], sent["max_tokens"]) == (0.0, MAX_TOKENS)  # its own cap, not the replies' 256
    assert "my deployment target is a Raspberry Pi 5" in sent["messages"][1]["content"]


async def test_repeated_memories_are_kept_once_and_importance_is_clamped(fake_ollama, ollama_model):
    """What SmolLM2-135M answered on llama.cpp: one fact over and over, importance 1000."""
    item = {"text": PI, "kind": "semantic", "importance": 1000}
    fake_ollama.script_structured(json.dumps({"memories": [item, item, {**item, "text": PI.upper()}, {**item, "importance": -3}]}))
    found = await extract(ollama_model, TURN)
    assert [(m.text, m.importance) for m in found] == [(PI, 1.0)]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ('{"memories": [{"text": "The user', "not JSON"),
        ('{"memories": [{"kind": "semantic"}]}', "Field required at memories.0.text"),
        ('{"memories": "none"}', "does not fit the memory schema"),
    ],
)
async def test_an_answer_that_still_does_not_fit_says_why(fake_ollama, ollama_model, answer, reason):
    fake_ollama.script_structured(answer)
    with pytest.raises(ExtractionError, match=reason):
        await extract(ollama_model, TURN)
