"""Small pieces of English that messages build from names: "a" or "an" before a name; days."""

from __future__ import annotations

import functools
from datetime import date

_SILENT_H = ("hour", "honest", "honour", "heir")
"""Words whose `h` is silent: they take "an"."""

_VOWEL_LETTERS_SOUNDING_CONSONANT = ("uni", "use", "usa", "usu", "uti", "eu", "one", "once", "ubi")
"""Word starts written with a vowel but said with a consonant ("a unique", "a European")."""

_LETTER_NAMES_WITH_A_VOWEL = frozenset("AEFHILMNORSX")
"""Letters whose spoken names start with a vowel sound: "an SCC", "an HTTP", "an MX record"."""


def article(word: str) -> str:
    """Return "a" or "an" for the word or name that follows it: "an" before a vowel sound.

    Initialisms are read letter by letter ("an AWS region", "a URL"); other words by their
    spelling, with the usual exceptions ("a unique", "a European", "an hour").
    """
    text = word.strip().lstrip("'\"`(")
    if not text:
        return "a"
    first = text.split()[0]
    letters = "".join(c for c in first if c.isalnum())
    if len(letters) > 1 and letters.isupper() and letters[0].isalpha():
        return "an" if letters[0] in _LETTER_NAMES_WITH_A_VOWEL else "a"
    if first[0].isdigit():
        return "an" if first.startswith(("8", "11", "18")) else "a"
    lowered = first.lower()
    if lowered.startswith(_SILENT_H):
        return "an"
    if lowered.startswith(_VOWEL_LETTERS_SOUNDING_CONSONANT):
        return "a"
    return "an" if lowered[0] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    """The phrase after its article: `with_article("Amazon CloudFront edge")` is
    "an Amazon CloudFront edge"."""
    return f"{article(phrase)} {phrase}"


@functools.lru_cache(maxsize=64)
def iso_day(day: date) -> str:
    """The day in ISO 8601, one string per day: the findings of a large audit name it often."""
    return day.isoformat()
