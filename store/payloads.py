"""Large texts stored once, by conversation and SHA-256, so that history carries only markers.

``externalize`` is what the model activity does to the arguments a model wrote: every string too
long for history — and every string that merely *looks* like a marker, so that no marker can ever
be forged — is stored and replaced by its marker. ``resolve`` is what a tool does before it runs:
every marker is replaced by its content, read back from this conversation's payloads and checked
against the digest and sizes the marker states (those sizes are what the policy judged).
Writes are idempotent: the same content stored twice is one row.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models.payloads import INLINE_MAX_CHARS, PayloadRef, ref_of
from store.tables import Payload


class PayloadMissing(LookupError):
    """A marker names content this conversation never stored, or content that does not match it."""


class PayloadStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put(self, conversation_id: str, text: str) -> PayloadRef:
        ref = ref_of(text)
        with Session(self._engine) as session:
            stored = session.exec(select(Payload.id).where(
                Payload.conversation_id == conversation_id, Payload.digest == ref.digest)).first()
            if stored is not None:
                return ref
            session.add(Payload(conversation_id=conversation_id, digest=ref.digest, bytes=ref.bytes,
                                chars=ref.chars, content=text.encode()))
            try:
                session.commit()
            except IntegrityError:  # stored by a concurrent attempt: the same bytes
                session.rollback()
        return ref

    def get(self, conversation_id: str, digest: str) -> str | None:
        with Session(self._engine) as session:
            row = self._row(session, conversation_id, digest)
            return row.content.decode() if row is not None else None

    def read(self, conversation_id: str, ref: PayloadRef) -> str:
        """The content behind ``ref``, verified: what the marker promised is what comes back."""
        text = self.get(conversation_id, ref.digest)
        if text is None:
            raise PayloadMissing(f"no stored content sha256={ref.digest} in conversation {conversation_id}")
        data = text.encode()
        if hashlib.sha256(data).hexdigest() != ref.digest or len(data) != ref.bytes or len(text) != ref.chars:
            raise PayloadMissing(f"stored content sha256={ref.digest} does not match its reference's sizes")
        return text

    def externalize(self, conversation_id: str, value: Any, limit: int = INLINE_MAX_CHARS
                    ) -> tuple[Any, list[PayloadRef]]:
        """``value`` with every long or marker-shaped string replaced by a marker, and the refs."""
        refs: list[PayloadRef] = []

        def walk(item: Any) -> Any:
            if isinstance(item, dict):
                return {key: walk(inner) for key, inner in item.items()}
            if isinstance(item, list):
                return [walk(inner) for inner in item]
            if isinstance(item, str) and (len(item) > limit or PayloadRef.parse(item) is not None):
                ref = self.put(conversation_id, item)
                refs.append(ref)
                return ref.marker()
            return item

        return walk(value), refs

    def resolve(self, conversation_id: str, value: Any) -> Any:
        """``value`` with every marker replaced by its verified content (one level: content that
        itself reads like a marker stays text). Raises ``PayloadMissing``."""
        if isinstance(value, dict):
            return {key: self.resolve(conversation_id, inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [self.resolve(conversation_id, inner) for inner in value]
        ref = PayloadRef.parse(value)
        return self.read(conversation_id, ref) if ref else value

    @staticmethod
    def _row(session: Session, conversation_id: str, digest: str) -> Payload | None:
        return session.exec(
            select(Payload).where(Payload.conversation_id == conversation_id, Payload.digest == digest)
        ).first()
