"""The relevance engine: which agents of a channel speak about a post, and why.

Pure and deterministic (stdlib and ``models`` only; no clock, no randomness, no I/O), so a
workflow can call it directly and replay it: the inputs that need I/O (embedding similarities)
come from the ``relevance.similarities`` activity and are recorded in history as a few rounded
floats. One concept per module:

- ``factors`` — the six factors of seed 003, each a curve over its inputs;
- ``gate`` — the relevance gate that keeps availability from outvoting relevance;
- ``score`` — the weighted score, the decision, the ranking (``score_post`` is the entry point);
- ``explain`` — the one-line explanation naming the deciding factors;
- ``mentions`` — ``@name`` mentions of members;
- ``keywords`` — word-overlap similarity, the degraded mode without embeddings;
- ``overrides`` — a channel's partial configuration merged onto the defaults;
- ``curves`` — the clamped ramp and rounding the factors share.
"""

from relevance.keywords import content_words, keyword_similarity
from relevance.mentions import find_mentions
from relevance.overrides import RelevanceConfigError, apply_overrides, parse_overrides
from relevance.score import decide, rank, score_agent, score_post

__all__ = [
    "RelevanceConfigError",
    "apply_overrides",
    "content_words",
    "decide",
    "find_mentions",
    "keyword_similarity",
    "parse_overrides",
    "rank",
    "score_agent",
    "score_post",
]
