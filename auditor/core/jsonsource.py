"""JSON from users' files read strictly: an object holding a key twice is refused, not merged."""

from __future__ import annotations

import json
from typing import Any


class DuplicateKeyError(ValueError):
    """A JSON object holds the same key twice; `key` names it."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"key {key!r} appears twice in one object: the later value would silently replace "
            "the earlier"
        )


def unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An `object_pairs_hook` that builds the object, refusing a key it has seen.

    Raises:
        DuplicateKeyError: a key appears twice.
    """
    built: dict[str, Any] = {}
    for key, value in pairs:
        if key in built:
            raise DuplicateKeyError(key)
        built[key] = value
    return built


DECODER = json.JSONDecoder(object_pairs_hook=unique_object)
"""A decoder that refuses duplicate keys (its `raw_decode` reads one value from a position)."""


def problem(exc: ValueError | RecursionError) -> str:
    """What a failed decode says, for a message: never Python's advice, never the text read.

    A JSONDecodeError names what is malformed; a ValueError from the decoder otherwise is a
    duplicate key or a number past Python's 4,300-digit limit; RecursionError is deep nesting.
    """
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    return str(exc).split(";")[0]


def loads(text: str) -> Any:
    """Parse a JSON document, refusing duplicate keys.

    Raises:
        json.JSONDecodeError: not JSON.
        DuplicateKeyError: an object holds a key twice.
        ValueError: a number has more digits than Python converts (4,300).
        RecursionError: it nests too deeply to read.
    """
    return DECODER.decode(text)
