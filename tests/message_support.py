"""What the private-message tests share: the agents' fake model (each agent answers as itself, the
accept/refuse answers routed on their schema), the embeddings that route, and a ``Messages`` client."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.service import RPCError

from control.messages import Messages
from models.conversation import conversation_workflow_id
from models.private_messages import PrivateMessageInput, dm_conversation_id
from store.engine import make_engine
from store.private_messages import PrivateMessageStore
from tests.fakes.ollama import FakeOllama, Reply, by_system_prompt, content_word_embedding

DEVELOPER = "You are an expert backend developer"
ASSISTANT = "You are a helpful assistant"
ANALYST = "You are an expert data analyst"
CODING = "My FastAPI endpoint raises an exception when I run the pytest tests. How do I debug it?"
WEATHER = "Lovely weather for a picnic by the lake today."
FIX = "Run pytest with -x and read the first traceback."


def decisions(accept: bool = True, reason: str = "this is my field") -> Any:
    """A structured responder: the accept/refuse question gets ``accept``; anything else (memory
    extraction) gets no memories."""

    def respond(body: dict[str, Any]) -> str:
        properties = (body.get("format") or {}).get("properties") or {}
        if "accept" in properties:
            return json.dumps({"accept": accept, "reason": reason})
        return json.dumps({"memories": []})

    return respond


def agents_answer(fake: FakeOllama, accept: bool = True, **answers: Any) -> None:
    """``answers`` by system prompt key (``DEVELOPER``…); the developer says ``FIX`` by default."""
    fake.embedder = content_word_embedding
    fake.structured_responder = decisions(accept)
    fake.responder = by_system_prompt({DEVELOPER: FIX, **answers})


def messages_of(daemon, **settings: Any) -> Messages:
    engine = make_engine(daemon.settings.effective_database_url)
    return Messages(daemon.client, daemon.settings.model_copy(update=settings), PrivateMessageStore(engine), 30)


def person_message(messages: Messages, content: str = CODING, to: str = "developer", **fields: Any) -> PrivateMessageInput:
    return messages.request(fields.pop("sender", "alice"), to, content, **fields)


def last_user_text(body: dict[str, Any]) -> str:
    return next((m.get("content") or "" for m in reversed(body.get("messages") or []) if m.get("role") == "user"), "")


def replies(*texts: str) -> Any:
    """A responder answering its calls with ``texts`` in turn (the last one ever after)."""
    left = list(texts)

    def respond(_: dict[str, Any]) -> Reply:
        return Reply(content=left.pop(0) if len(left) > 1 else left[0])

    return respond


AGENTS = ("developer", "analyst", "moderator", "assistant")


@pytest.fixture(autouse=True)
async def dm_conversations_ended(temporal_env) -> AsyncIterator[None]:
    """``dm-<agent>`` is one workflow id per agent on the whole (shared) test server: each test
    leaves none running, or the next test's messages would be signalled to a conversation whose
    worker is gone."""
    yield
    for agent in AGENTS:
        handle = temporal_env.client.get_workflow_handle(conversation_workflow_id(dm_conversation_id(agent)))
        with contextlib.suppress(RPCError):
            await handle.terminate("test over")
