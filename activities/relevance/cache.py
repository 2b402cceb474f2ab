"""A bounded in-process cache of embeddings, by (model, text digest), and the cosines over them.

Agents' expertise entries are the same on every post, and a post is embedded once when it arrives
and then again each time it is a recent message for a later post: with the cache, a post after the
first costs one ``/api/embed`` call with one text (``bench/relevance.py`` measures it). Keys are
the model and the SHA-256 of the text, so a changed expertise entry or another model is simply
another key; the least recently used entries go first once ``max_entries`` is reached.

Vectors are kept L2-normalised as numpy ``float64`` arrays (8 bytes a float; 384-dimensional
all-minilm: 3 KiB an entry, 12 MiB at the default 4096), so a post's cosines against every entry
of every agent are one matrix product: 50 agents × 7 entries take well under a millisecond, where
the same sums in Python took ~40 ms of the worker's event loop. One worker's event loop owns the
cache; nothing is shared between processes.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def unit(values: Sequence[float]) -> np.ndarray:
    """``values`` scaled to length 1; a zero vector (a text of punctuation only) stays zero."""
    array = np.asarray(values, dtype=np.float64)
    norm = float(np.linalg.norm(array))
    return array / norm if norm else array


def cosines(to: np.ndarray | None, texts: Sequence[str], vectors: Mapping[str, np.ndarray]) -> dict[str, float]:
    """The cosine of each of ``texts`` with ``to`` (0 for all when ``to`` is missing)."""
    if to is None or not texts:
        return {text: 0.0 for text in texts}
    values = np.stack([vectors[text] for text in texts]) @ to
    return {text: float(value) for text, value in zip(texts, values, strict=True)}


def _key(model: str, text: str) -> tuple[str, str]:
    return model, hashlib.sha256(text.encode()).hexdigest()


class EmbeddingCache:
    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max(0, max_entries)
        self._entries: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(self, model: str, texts: Iterable[str]) -> dict[str, np.ndarray]:
        found = {}
        for text in texts:
            key = _key(model, text)
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                found[text] = hit
        return found

    def put_many(self, model: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        if not self.max_entries:
            return
        for text, value in items:
            key = _key(model, text)
            self._entries[key] = value
            self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
