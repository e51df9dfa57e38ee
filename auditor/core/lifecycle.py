"""A finding's lifecycle across audits: new, still open, carried, resolved, re-opened; waivers
that lapse."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
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
    CARRIED = "carried"  # open, not found again, but a probe it rests on failed: still open


@dataclass(frozen=True, slots=True)
class Known:
    """What the store knows of a finding before this audit: its status and the probes its
    last evidence came from."""

    status: Status
    probes: tuple[str, ...] = ()


def transitions(
    known: Mapping[FindingKey, Known],
    current: Iterable[FindingKey],
    failed: Collection[str] = frozenset(),
) -> dict[FindingKey, Change]:
    """Compare stored findings with this audit's; every key in either gets its change.

    An open finding not found again is resolved only when none of the probes its evidence came
    from is among this run's `failed` ones: a probe that failed observed nothing, and the absence
    of an observation does not show the problem gone. Such a finding is carried (stays open with
    its last evidence). A probe this run did not ask at all (its endpoint left the inventory) does
    not hold a finding open. Keys resolved before and not found again are left out: nothing
    happened to them.
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
            unknown = any(probe in failed for probe in previous.probes)
            changes[key] = Change.CARRIED if unknown else Change.RESOLVED
    return changes


def waiver_active(expires: date | None, revoked: bool, on: date) -> bool:
    """A waiver counts until the end of its expiry day, unless it was revoked."""
    return not revoked and (expires is None or on <= expires)
