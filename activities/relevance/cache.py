"""A bounded in-process cache of embeddings, by (model, text digest).

Agents' expertise entries are the same on every post, and a post is embedded once when it arrives
and then again each time it is a recent message for a later post: with the cache, a post after the
first costs one ``/api/embed`` call with one text (``bench/relevance.py`` measures it). Keys are
the model and the SHA-256 of the text, so a changed expertise entry or another model is simply
another key; the least recently used entries go first once ``max_entries`` is reached. Vectors
are kept as ``array('d')`` (8 bytes a float; 384-dimensional all-minilm: 3 KiB an entry, 12 MiB
at the default 4096). One worker's event loop owns it; nothing is shared between processes.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import NamedTuple


class Vector(NamedTuple):
    values: array
    norm: float


def vector(values: Sequence[float]) -> Vector:
    return Vector(array("d", values), math.sqrt(math.fsum(v * v for v in values)))


def cosine(a: Vector, b: Vector) -> float:
    """Cosine similarity; 0 when either vector is zero (a text of punctuation only)."""
    if not a.norm or not b.norm or len(a.values) != len(b.values):
        return 0.0
    return math.fsum(x * y for x, y in zip(a.values, b.values)) / (a.norm * b.norm)


def _key(model: str, text: str) -> tuple[str, str]:
    return model, hashlib.sha256(text.encode()).hexdigest()


class EmbeddingCache:
    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max(0, max_entries)
        self._entries: OrderedDict[tuple[str, str], Vector] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(self, model: str, texts: Iterable[str]) -> dict[str, Vector]:
        found = {}
        for text in texts:
            key = _key(model, text)
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                found[text] = hit
        return found

    def put_many(self, model: str, items: Iterable[tuple[str, Vector]]) -> None:
        if not self.max_entries:
            return
        for text, value in items:
            key = _key(model, text)
            self._entries[key] = value
            self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
