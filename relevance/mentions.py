"""``@name`` mentions of channel members in a message's text.

A mention is ``@`` at the start of the text or after a character that is not part of a word or
an address (so ``me@analyst.org`` mentions nobody), followed by a member's name, compared without
regard to case, and not followed by another name character (``@analysts`` is not ``@analyst``).
Sentence punctuation right after the name is fine (``@analyst, look``; ``ask @analyst.``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_MENTION = re.compile(r"(?<![\w@.])@([\w][\w.-]*)")


def find_mentions(text: str, members: Iterable[str]) -> list[str]:
    """The members mentioned in ``text``, each once, in order of first mention, spelled as in
    ``members``."""
    by_key = {member.casefold(): member for member in members}
    found: list[str] = []
    for match in _MENTION.finditer(text):
        candidate = match.group(1).casefold()
        while candidate and candidate not in by_key and candidate[-1] in ".-":
            candidate = candidate[:-1]
        member = by_key.get(candidate)
        if member is not None and member not in found:
            found.append(member)
    return found
