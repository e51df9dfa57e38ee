"""The consent records the state store keeps: imported consents (keyed hashes, never subject keys)
and the coverage each consent check measured."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

Path = Literal["pushdown", "merge", "imported"]
"""How coverage was counted: one statement in the database, a merge of two streams, or imported
consents looked up by keyed hash in the state store (`auditor.consent.imported`)."""


@dataclass(frozen=True, slots=True)
class ConsentCoverage:
    """How many subjects shared with one integration lack a valid consent on `as_of`."""

    integration: str
    purpose: str
    as_of: date
    shared: int
    missing: int  # no valid consent (the withdrawn included)
    withdrawn: int  # of the missing: their latest consent was withdrawn, and they are still shared
    path: Path
    duration_seconds: float

    @property
    def covered(self) -> int:
        """Shared subjects with a valid consent."""
        return self.shared - self.missing


@dataclass(frozen=True, slots=True)
class ImportedConsent:
    """One consent of an export: the keyed hash of its subject, when granted and withdrawn."""

    subject_hash: str
    granted_at: datetime
    withdrawn_at: datetime | None
    line: int
