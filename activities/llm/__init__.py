"""Model calls, whichever server runs the model.

- ``chat.py`` — the ``llm.chat`` activity (one step of a turn);
- ``chat_models.py`` — :class:`LlmProviders`: "the chat model of this template" for any activity,
  and the embedding server;
- ``provider.py`` — what every provider does (chat, structured output, embeddings, probe);
- ``ollama_provider.py`` (Ollama's native API), ``openai_provider.py`` (any OpenAI-compatible
  server) and ``openai_messages.py`` (its wire format of messages and tool calls);
- ``errors.py`` — the failures every provider raises, retryable or not;
- ``probe.py`` — what dev and health show about the configured servers.
"""

from activities.llm.chat import LlmActivities
from activities.llm.chat_models import ChatModel, LlmProviders

__all__ = ["ChatModel", "LlmActivities", "LlmProviders"]
