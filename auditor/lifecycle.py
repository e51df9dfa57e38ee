"""A finding's lifecycle across audits: new, still open, resolved, re-opened; waivers that lapse."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

FindingKey = tuple[str, str, str, str]
"""(rule, integration, facet, place): the identity of a finding across audits."""


class Status(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Change(StrEnum):
    """What one audit did to one finding."""

    NEW = "new"
    STILL_OPEN = "still-open"
    RESOLVED = "resolved"
    REOPENED = "reopened"


@dataclass(frozen=True, slots=True)
class Known:
    """What the store knows of a finding before this audit."""

    status: Status


def transitions(
    known: Mapping[FindingKey, Known], current: Iterable[FindingKey]
) -> dict[FindingKey, Change]:
    """Compare stored findings with this audit's; every key in either gets its change.

    Keys resolved before and not found again are left out: nothing happened to them.
    """
    now = set(current)
    changes: dict[FindingKey, Change] = {}
    for key in now:
        previous = known.get(key)
        if previous is None:
            changes[key] = Change.NEW
        elif previous.status is Status.RESOLVED:
            changes[key] = Change.REOPENED
        else:
            changes[key] = Change.STILL_OPEN
    for key, previous in known.items():
        if key not in now and previous.status is Status.OPEN:
            changes[key] = Change.RESOLVED
    return changes


def waiver_active(expires: date | None, revoked: bool, on: date) -> bool:
    """A waiver counts until the end of its expiry day, unless it was revoked."""
    return not revoked and (expires is None or on <= expires)
