"""The texts a similarity request names: the post and recent messages (from the store or inline)
and each agent's expertise entries (from the request or the agent's template).

Texts are cut to ``EMBED_CHARS`` before they are compared: embedding models read a few hundred
tokens at most (all-minilm: 256 word pieces), so a longer text only costs transfer. A template
that no longer exists gives an agent no entries (its expertise match is 0) rather than failing
the post; a recent message missing from the store is left out. Templates are read again after
``TEMPLATE_TTL_S``: parsing 50 YAML files took ~30 ms of every post of a 50-agent channel.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from config.templates import InvalidAgentError, UnknownAgentError, load_template
from models.relevance_scoring import AgentProfile, SimilarityRequest, TextRef
from store.transcript import TranscriptStore

log = logging.getLogger(__name__)

EMBED_CHARS = 2000
TEMPLATE_TTL_S = 60.0


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


class TemplateExpertise:
    """Agents' expertise and description from their templates, kept ``TEMPLATE_TTL_S`` seconds."""

    def __init__(self, agents_dir: Path | None, ttl_s: float = TEMPLATE_TTL_S) -> None:
        self._agents_dir = agents_dir
        self._ttl_s = ttl_s
        self._known: dict[str, tuple[float, list[str], str]] = {}

    def of(self, agent: str) -> tuple[list[str], str]:
        now = time.monotonic()
        known = self._known.get(agent)
        if known is not None and now - known[0] < self._ttl_s:
            return known[1], known[2]
        try:
            template = load_template(agent, self._agents_dir)
            expertise, description = template.expertise, template.description
        except (UnknownAgentError, InvalidAgentError) as err:  # said once per TTL, not on every post
            log.warning("relevance: no expertise for agent %r: %s", agent, err)
            expertise, description = [], ""
        self._known[agent] = (now, expertise, description)
        return expertise, description

    def entries(self, profile: AgentProfile) -> list[str]:
        """The profile's entries and description (its own, else its template's), cleaned."""
        expertise, description = profile.expertise, profile.description
        if expertise is None or description is None:
            from_template = self.of(profile.agent)
            expertise = from_template[0] if expertise is None else expertise
            description = from_template[1] if description is None else description
        texts = [_clean(entry) for entry in [*expertise, description]]
        return list(dict.fromkeys(t for t in texts if t))


def resolve(request: SimilarityRequest, store: TranscriptStore, templates: TemplateExpertise) -> RequestTexts:
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
        entries={profile.agent: templates.entries(profile) for profile in request.agents},
    )
