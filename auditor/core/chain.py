"""The evidence chain: each record hashes its content and the previous record's hash; pure.

A record's hash covers its sequence number, time, kind, canonical content and the previous hash,
so editing, deleting, inserting or reordering any record breaks every hash after it. Whoever can
write the database can recompute plain hashes, so with a key configured each record also carries
an HMAC of its hash: without the key the chain cannot be rewritten unnoticed. Truncating the tail
is visible only against a head anchored elsewhere (`gdpr-auditor evidence head`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from auditor.core.wording import with_article

GENESIS = "0" * 64
"""The previous hash of the first record."""


def _default(value: object) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("evidence times must be timezone-aware")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} into evidence")


def canonical(content: Mapping[str, Any]) -> str:
    """The one text form of a content mapping: sorted keys, no spaces, UTC times."""
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """One link of the chain as stored."""

    seq: int
    at: datetime
    kind: str
    content: str  # canonical JSON
    hash: str
    prev_hash: str
    mac: str | None = None

    def data(self) -> dict[str, Any]:
        """The content as a mapping.

        Raises:
            ValueError: the stored content is not a JSON object (a tampered record), naming it.
        """
        try:
            loaded = json.loads(self.content)
        except (TypeError, ValueError):
            loaded = None
        if not isinstance(loaded, dict):
            raise ValueError(  # noqa: TRY004 (a bad stored value, not a caller mistake)
                f"evidence record {self.seq}: its content is not a JSON object"
            )
        return loaded


_TEXT_FIELDS = ("kind", "content", "hash", "prev_hash")


def malformed(record: EvidenceRecord) -> str | None:
    """What is wrong with the types of a stored record's fields (a row tampered with outside the
    store, in a database that does not enforce column types), or None."""
    if not isinstance(record.seq, int) or isinstance(record.seq, bool):
        return f"its sequence number is {with_article(type(record.seq).__name__)}, not an integer"
    if not isinstance(record.at, datetime) or record.at.tzinfo is None:
        return f"its time is {with_article(type(record.at).__name__)}, not a timezone-aware time"
    for name in _TEXT_FIELDS:
        value = getattr(record, name)
        if not isinstance(value, str):
            return f"its {name} is {with_article(type(value).__name__)}, not text"
    if record.mac is not None and not isinstance(record.mac, str):
        return f"its mac is {with_article(type(record.mac).__name__)}, not text"
    return None


def record_hash(prev_hash: str, seq: int, at: datetime, kind: str, content: str) -> str:
    """The hash of one record over everything it says and the hash before it."""
    stamp = _default(at)
    material = "\n".join((prev_hash, str(seq), stamp, kind, content))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def record_mac(key: bytes, digest: str) -> str:
    return hmac.new(key, digest.encode("ascii"), hashlib.sha256).hexdigest()


def link(
    previous: EvidenceRecord | None,
    kind: str,
    content: Mapping[str, Any],
    at: datetime,
    key: bytes | None,
) -> EvidenceRecord:
    """Make the record that follows `previous` (None: the first record)."""
    seq = 1 if previous is None else previous.seq + 1
    prev_hash = GENESIS if previous is None else previous.hash
    text = canonical(content)
    digest = record_hash(prev_hash, seq, at, kind, text)
    return EvidenceRecord(
        seq, at, kind, text, digest, prev_hash, record_mac(key, digest) if key else None
    )


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of checking a chain: how far it holds, and the first record that does not."""

    ok: bool
    records: int
    head: str
    first_bad: int | None = None
    problem: str | None = None


def verify(
    records: Iterable[EvidenceRecord], key: bytes | None = None, expect_head: str | None = None
) -> Verification:
    """Recompute the chain in sequence order; name the first record edited, missing or out of place.

    With a key every record's HMAC must match; with `expect_head` that hash must be in the chain
    (a head anchored earlier), which catches a truncated tail.
    """
    previous_hash, expected_seq, count, head_seen = GENESIS, 1, 0, expect_head is None
    for record in records:
        count += 1
        wrong = malformed(record)
        if wrong is not None:
            seq = record.seq if isinstance(record.seq, int) else expected_seq
            problem = f"record {seq} was tampered with: {wrong}"
            return Verification(False, count - 1, previous_hash, seq, problem)
        if record.seq != expected_seq:
            what = "missing" if record.seq > expected_seq else "repeated or out of order"
            problem = f"record {expected_seq} is {what} (found record {record.seq} in its place)"
            return Verification(False, count - 1, previous_hash, expected_seq, problem)
        if record.prev_hash != previous_hash:
            problem = f"record {record.seq} does not follow record {record.seq - 1}: a record was removed, inserted or replaced"
            return Verification(False, count - 1, previous_hash, record.seq, problem)
        digest = record_hash(record.prev_hash, record.seq, record.at, record.kind, record.content)
        if digest != record.hash:
            problem = f"record {record.seq} was edited: its content does not match its hash"
            return Verification(False, count - 1, previous_hash, record.seq, problem)
        if key is not None and (
            record.mac is None or not hmac.compare_digest(record.mac, record_mac(key, digest))
        ):
            problem = f"record {record.seq} has no valid HMAC: written or rewritten without the key"
            return Verification(False, count - 1, previous_hash, record.seq, problem)
        head_seen = head_seen or record.hash == expect_head
        previous_hash, expected_seq = record.hash, expected_seq + 1
    if not head_seen:
        problem = f"the anchored head {expect_head} is not in the chain: records were removed from its end or rewritten"
        return Verification(False, count, previous_hash, None, problem)
    return Verification(True, count, previous_hash)
