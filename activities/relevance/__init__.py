"""The relevance engine's side effects: similarities by embeddings (``similarities.py``, with its
bounded cache ``cache.py`` and the texts a request names ``texts.py``) and the records of its
decisions (``records.py``). The scoring itself is pure and lives in the ``relevance`` package."""

from activities.relevance.cache import EmbeddingCache
from activities.relevance.records import RelevanceRecordActivities
from activities.relevance.similarities import RelevanceActivities, TextEmbedder

__all__ = ["EmbeddingCache", "RelevanceActivities", "RelevanceRecordActivities", "TextEmbedder"]
