"""Word-overlap similarity: the degraded mode when no embedding model answers.

Each text becomes the set of its content words (lower-cased, accents kept, English and French
function words dropped, a plural ``s`` folded), and two texts are compared by the cosine of their
binary word vectors, ``|A ∩ B| / sqrt(|A|·|B|)``: the same scale as an embedding cosine (0
unrelated, 1 the same words), so the factors' curves still make sense. It knows nothing of
synonyms; explanations say when it was used.
"""

from __future__ import annotations

import math
import re

_WORD = re.compile(r"[^\W_]+")

STOP_WORDS = frozenset(
    """a about after all also am an and any are as at be been but by can could did do does for from
    had has have he her his how i if in into is it its just me more my no not of on or our out she
    so than that the their them then there these they this those to too up us was we were what when
    where which who why will with would you your
    au aux avec ce ces cet cette dans de des du elle en est et il ils je la le les leur lui ma mais
    me mes mon ne nous on ou par pas pour qu que qui sa se ses son sur ta te tes ton tu un une vos
    votre vous""".split()
)


def content_words(text: str) -> frozenset[str]:
    words = set()
    for word in _WORD.findall(text.casefold()):
        if len(word) < 2 or word in STOP_WORDS:
            continue
        words.add(word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word)
    return frozenset(words)


def keyword_similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / math.sqrt(len(a) * len(b))
