"""What every request needs, built once at start and kept on ``app.state.daemonflow``.

Conversations are reached only through the ``control`` client (``conversations``); the store is
read directly for what it holds whole (messages, monitoring, analytics). Store calls are
synchronous (SQLAlchemy) and run in a thread so they never block the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine

from api.auth import KeyRing
from api.stream_hub import StreamHub
from config.settings import Settings
from control.channels import Channels
from control.conversations import Conversations
from control.messages import Messages
from control.relevance import RelevanceCalculator
from store.channels import ChannelStore
from store.relevance import RelevanceStore
from store.relevance_settings import RelevanceSettingsStore
from store.transcript import TranscriptStore

T = TypeVar("T")


@dataclass
class ApiContext:
    settings: Settings
    conversations: Conversations
    keys: KeyRing
    transcripts: TranscriptStore
    channels: Channels
    relevance: RelevanceCalculator
    messages: Messages
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the server begins to stop, so live event streams end instead of holding it up."""
    hub: StreamHub = field(default_factory=StreamHub)
    """One Workflow Stream subscription per conversation, shared by its viewers (``api/stream_hub.py``)."""

    @property
    def engine(self) -> Engine:
        """The store's engine, for read functions that take one (monitoring, analytics)."""
        return self.transcripts.engine

    @property
    def channel_store(self) -> ChannelStore:
        return ChannelStore(self.engine)

    @property
    def relevance_store(self) -> RelevanceStore:
        return RelevanceStore(self.engine)

    @property
    def relevance_settings(self) -> RelevanceSettingsStore:
        return RelevanceSettingsStore(self.engine)

    async def in_thread(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(call, *args)
