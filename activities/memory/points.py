"""How a memory becomes a Qdrant point and back — one mapping for both Qdrant backends.

The embedded engine (:mod:`activities.memory.edge_backend`, Qdrant Edge) and the Qdrant server
(:mod:`activities.memory.qdrant_backend`, qdrant-client) store the same points, so a collection
moves between them (and the one-time migration from qdrant-client local mode copies payloads
verbatim): the point id is the memory id, the vector its embedding (cosine), the payload the
record's fields plus three derived ones used by filters:

- ``scope_key`` (``"<scope>:<scope_id>"``): matched with ``MatchAny`` against the caller's
  visible scopes, so a recall's scope filter is one indexed keyword condition;
- ``created_ts`` (seconds since the epoch): list order (``order_by`` needs a range index);
- ``expires_ts`` (seconds, or null for never): recall skips expired memories.
"""

from __future__ import annotations

from typing import Any

from models.memory import MemoryRecord, MemoryScope

KEYWORD_FIELDS = ("scope_key", "scope", "scope_id", "kind")
"""Payload fields with a keyword index: what recall, list, count and forget filter on."""
FLOAT_FIELDS = ("created_ts", "expires_ts")
"""Payload fields with a range index: list order and expiry."""


def scope_key(scope: MemoryScope | str, scope_id: str) -> str:
    return f"{MemoryScope(scope).value}:{scope_id}"


def point_payload(record: MemoryRecord) -> dict[str, Any]:
    """The payload of ``record``'s point (JSON values only)."""
    data = record.model_dump(mode="json", exclude={"id"})
    data["scope_key"] = scope_key(record.scope, record.scope_id)
    data["created_ts"] = record.created_at.timestamp()
    data["expires_ts"] = record.expires_at.timestamp() if record.expires_at else None
    return data


def point_record(point_id: Any, payload: dict[str, Any] | None) -> MemoryRecord:
    """The memory a point holds (the derived fields are ignored)."""
    return MemoryRecord.model_validate({**(payload or {}), "id": str(point_id)})
