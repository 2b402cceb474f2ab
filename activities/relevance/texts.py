"""The texts a similarity request names: the post and recent messages (from the store or inline)
and each agent's expertise entries (from the request or the agent's template).

Texts are cut to ``EMBED_CHARS`` before they are compared: embedding models read a few hundred
tokens at most (all-minilm: 256 word pieces), so a longer text only costs transfer. A template
that no longer exists gives an agent no entries (its expertise match is 0) rather than failing
the post; a recent message missing from the store is left out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from config.templates import InvalidAgentError, UnknownAgentError, load_template
from models.relevance_scoring import AgentProfile, SimilarityRequest, TextRef
from store.transcript import TranscriptStore

log = logging.getLogger(__name__)

EMBED_CHARS = 2000


class MissingPost(LookupError):
    """The post the request names is not in the store."""


@dataclass
class RequestTexts:
    post: str
    recent: dict[str, str] = field(default_factory=dict)
    """By message id; only messages found and not blank."""
    entries: dict[str, list[str]] = field(default_factory=dict)
    """By agent: its expertise entries and description, not blank, de-duplicated, in order."""

    def all(self) -> list[str]:
        """Every distinct text, post first: what to embed."""
        texts = [self.post, *self.recent.values(), *(e for entries in self.entries.values() for e in entries)]
        return list(dict.fromkeys(t for t in texts if t))


def _clean(text: str | None) -> str:
    return (text or "").strip()[:EMBED_CHARS]


def _text(ref: TextRef, store: TranscriptStore) -> str | None:
    if ref.text is not None:
        return _clean(ref.text)
    assert ref.conversation_id is not None and ref.seq is not None  # TextRef's validator
    message = store.get(ref.conversation_id, ref.seq)
    return _clean(message.content) if message is not None else None


def _entries(profile: AgentProfile, agents_dir: Path | None) -> list[str]:
    expertise, description = profile.expertise, profile.description
    if expertise is None or description is None:
        try:
            template = load_template(profile.agent, agents_dir)
        except (UnknownAgentError, InvalidAgentError) as err:
            log.warning("relevance: no expertise for agent %r: %s", profile.agent, err)
            template = None
        if template is not None:
            expertise = template.expertise if expertise is None else expertise
            description = template.description if description is None else description
    texts = [_clean(entry) for entry in [*(expertise or []), description or ""]]
    return list(dict.fromkeys(t for t in texts if t))


def resolve(request: SimilarityRequest, store: TranscriptStore, agents_dir: Path | None) -> RequestTexts:
    """Blocking (store and template reads): run it in a thread."""
    post = _text(request.post, store)
    if post is None:
        raise MissingPost(
            f"the post {request.post.conversation_id}#{request.post.seq} is not in the store: write it before scoring it"
        )
    recent = {message_id: _text(ref, store) for message_id, ref in request.recent.items()}
    return RequestTexts(
        post=post,
        recent={message_id: text for message_id, text in recent.items() if text},
        entries={profile.agent: _entries(profile, agents_dir) for profile in request.agents},
    )
