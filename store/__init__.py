"""The records store: conversations, their full messages and model usage, in SQLite or PostgreSQL.

``make_engine(settings.effective_database_url)`` once per process, then ``TranscriptStore(engine)``.
"""

from store.engine import make_engine, normalize_database_url
from store.tables import ROLES, Conversation, Message, ModelUsage
from store.transcript import TranscriptStore

__all__ = [
    "ROLES",
    "Conversation",
    "Message",
    "ModelUsage",
    "TranscriptStore",
    "make_engine",
    "normalize_database_url",
]
