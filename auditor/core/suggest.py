"""Suggestions for a mistyped name: "did you mean 'hosting'?" for a key, a value or a region."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.6
"""How alike (difflib's ratio) a known name must be to be suggested: typos, not guesses."""


def closest(word: str, known: Iterable[str], cutoff: float = CUTOFF) -> str | None:
    """The known name most like `word` (compared case-insensitively), or None if none is close."""
    by_lower: dict[str, str] = {}
    for name in known:
        by_lower.setdefault(name.lower(), name)
    if word.lower() in by_lower:
        return by_lower[word.lower()]
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=cutoff)
    return by_lower[found[0]] if found else None


def did_you_mean(word: str, known: Iterable[str], cutoff: float = CUTOFF) -> str:
    """` (did you mean 'x'?)` for the closest known name, or the empty string."""
    match = closest(word, known, cutoff)
    return "" if match is None or match == word else f" (did you mean {match!r}?)"
