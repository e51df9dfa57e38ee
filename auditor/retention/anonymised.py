"""What an anonymised column holds, recognised exactly, and what anonymising a row writes; pure.

A keyed hash is written as `hmac:` followed by the 64 lower-case hex digits of HMAC-SHA256 over
the value's text (`policy.HASH_PREFIX`, `policy.HASH_LENGTH`); a column too short for that is
refused when the policy is bound, so a hash is never cut. Only that exact form counts as already
hashed: `hmac:` with anything else after it (upper-case digits, one digit short, a trailing space)
is a live value and is hashed. Each column is judged on its own: a column already holding its
replacement keeps it (a hash is never hashed again, which would break "equal values give equal
hashes"), the others are replaced, and a row is anonymised only when every configured column holds
its replacement.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

from auditor.retention.policy import HASH_DIGITS, HASH_PREFIX, Replacement

_KEYED_HASH = re.compile(re.escape(HASH_PREFIX) + f"[0-9a-f]{{{HASH_DIGITS}}}")


def is_keyed_hash(value: object) -> bool:
    """Whether `value` is exactly a keyed hash as enforcement writes it."""
    return isinstance(value, str) and _KEYED_HASH.fullmatch(value) is not None


def keyed_hash(value: object, secret: bytes) -> str | None:
    """The keyed hash of a value's text (bytes read as UTF-8); NULL stays NULL."""
    if value is None:
        return None
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
    digest = hmac.new(secret, text.encode("utf-8", "surrogateescape"), hashlib.sha256)
    return HASH_PREFIX + digest.hexdigest()


def holds_replacement(replacement: Replacement, current: object, fixed: object = None) -> bool:
    """Whether a column's value is already its replacement: NULL for `null`, the fixed value
    (`fixed`, converted to the column's type) for `value`, NULL or an exact keyed hash for `hash`."""
    if replacement.kind == "null":
        return current is None
    if replacement.kind == "value":
        return current is not None and type(current) is type(fixed) and current == fixed
    return current is None or is_keyed_hash(current)


def replaced(
    replacement: Replacement, current: object, secret: bytes | None, fixed: object = None
) -> object:
    """What the column holds after anonymising: its current value when that already is its
    replacement, else the replacement (NULL, `fixed`, or the keyed hash of the current value).

    Raises:
        ValueError: a value must be hashed and there is no secret.
    """
    if holds_replacement(replacement, current, fixed):
        return current
    if replacement.kind == "null":
        return None
    if replacement.kind == "value":
        return fixed
    if secret is None:
        raise ValueError("a keyed hash needs a secret")
    return keyed_hash(current, secret)


def anonymised_row(
    replacements: Sequence[Replacement],
    row: Mapping[str, object],
    secret: bytes | None,
    fixed: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The configured columns of `row` after anonymising, column by column (see `replaced`)."""
    values = fixed or {}
    return {
        r.column: replaced(r, row.get(r.column), secret, values.get(r.column)) for r in replacements
    }


def is_anonymised(
    replacements: Sequence[Replacement],
    row: Mapping[str, object],
    fixed: Mapping[str, object] | None = None,
) -> bool:
    """Whether every configured column of `row` holds its replacement."""
    values = fixed or {}
    return all(holds_replacement(r, row.get(r.column), values.get(r.column)) for r in replacements)
