"""Fides (fideslang) vocabulary read into the inventory's: data categories, uses, subjects, roles,
transfer bases, retention periods and countries."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from auditor.core.durations import Duration, parse_duration
from auditor.core.iso3166 import country_code

# fideslang 3's default taxonomy (and fideslang 1's names where they differ) by prefix -> the
# inventory's vocabulary; the longest matching prefix wins. A `user` category matched by no
# prefix (`user` itself, `user.sensor`, `user.childrens`, a custom one) is still personal data:
# it becomes `unclassified`, never nothing.
_CATEGORIES = {
    "user.contact": "contact",
    "user.name": "identity",
    "user.unique_id": "identity",
    "user.government_id": "identity",
    "user.authorization": "identity",
    "user.authorization.biometric": "special",
    "user.account": "identity",
    "user.demographic": "identity",
    # Art. 9 data filed under demographics in fideslang 3.
    "user.demographic.political_opinion": "special",
    "user.demographic.race_ethnicity": "special",
    "user.demographic.religious_belief": "special",
    "user.demographic.sexual_orientation": "special",
    "user.behavior": "behavioural",
    "user.device": "device",
    "user.location": "location",
    "user.financial": "financial",
    "user.payment": "payment",
    "user.health_and_medical": "health",
    "user.health_and_medical.genetic": "special",
    "user.biometric": "special",
    "user.criminal_history": "criminal",
    "user.workplace": "employment",
    "user.job_title": "employment",
    "user.content": "communications",
    "user.social": "communications",
    # fideslang 1 names, still found in old exports.
    "user.genetic": "special",
    "user.race_ethnicity": "special",
    "user.religious_belief": "special",
    "user.sexual_orientation": "special",
    "user.political_opinion": "special",
    "user.credentials": "identity",
    "user.gender": "identity",
    "user.date_of_birth": "identity",
}
# fideslang 1 spelled every user category under one of these; the rest of the key is the name.
_FIDESLANG1_PREFIX = re.compile(r"^user\.(?:provided|derived)\.(?:identifiable|nonidentifiable)\.")
_NOT_PERSONAL = ("system",)
"""Top-level categories that describe the system, not people; every other one is personal."""

# Data uses by prefix -> an inventory category (the longest matching prefix wins).
_USES = {
    "marketing.communications": "email-marketing",
    "analytics": "analytics",
    "essential.service.payment_processing": "payment",
    "essential.service.operations.support": "support",
    "functional.service.operations.support": "support",
}
_HR_USES = ("employment",)
"""Data uses whose data is about staff: HR data, which US certifications must cover explicitly."""
_HR_SUBJECTS = frozenset({"employee", "job_applicant", "trainee", "consultant"})

ROLES = {"controller": "controller", "processor": "processor", "sub-processor": "processor"}
"""fideslang's `responsibility` titles (case aside) -> the inventory's role."""


def longest(value: str, table: dict[str, str]) -> str | None:
    """The table's value for the longest key that is `value` or a dotted prefix of it."""
    matches = [key for key in table if value == key or value.startswith(key + ".")]
    return table[max(matches, key=len)] if matches else None


def is_personal(key: str) -> bool:
    """Whether a fideslang data category is about people (everything but `system...`)."""
    return not any(key == top or key.startswith(top + ".") for top in _NOT_PERSONAL)


def data_category(key: str) -> str | None:
    """The inventory's category for a personal fideslang category, or None when none fits."""
    return longest(_FIDESLANG1_PREFIX.sub("user.", key), _CATEGORIES)


def inventory_category(uses: Iterable[str]) -> str | None:
    """The inventory category the data uses agree on, or None when they name none or several."""
    kinds = {longest(use, _USES) for use in uses} - {None}
    return kinds.pop() if len(kinds) == 1 else None


def hr_data(uses: Iterable[str], subjects: Iterable[str]) -> list[str]:
    """The uses and subjects that say the data is about staff (employment), sorted."""
    found = {u for u in uses if longest(u, {use: use for use in _HR_USES})}
    return sorted(found | (set(subjects) & _HR_SUBJECTS))


@dataclass(frozen=True, slots=True)
class TransferBasis:
    """What one `legal_basis_for_transfers` value means here: a safeguard, or a thing to do."""

    safeguard: str | None = None
    todo: str | None = None


_BASES = {
    "sccs": TransferBasis(safeguard="scc"),
    "scc": TransferBasis(safeguard="scc"),
    "standard contractual clauses": TransferBasis(safeguard="scc"),
    "bcrs": TransferBasis(safeguard="bcr"),
    "bcr": TransferBasis(safeguard="bcr"),
    "binding corporate rules": TransferBasis(safeguard="bcr"),
    "adequacy decision": TransferBasis(
        todo="an adequacy decision covers a place on a date, so the audit needs the places: "
        "list them under hosting (and support); for the US, record the DPF certification under "
        "transfer.certifications"
    ),
    "supplementary measures": TransferBasis(
        todo="supplementary measures are no transfer tool by themselves: record the SCCs or "
        "BCRs they supplement under transfer.safeguards"
    ),
    "consent": TransferBasis(
        todo="the transfer relies on consent (Art. 49(1)(a)): set transfer.consent_purpose to "
        "the consent purpose recorded for the people whose data goes there"
    ),
    "data privacy framework": TransferBasis(
        todo="DPF: record the certification under transfer.certifications "
        "(framework: dpf, since: its date)"
    ),
    "other": TransferBasis(
        todo="'Other' says nothing the audit can check: record the safeguard (scc, bcr) or "
        "the consent purpose, or the places count as unsafeguarded"
    ),
}
_BASIS_ALIASES = {
    "explicit consent": "consent",
    "adequacy": "adequacy decision",
    "dpf": "data privacy framework",
    "eu-us data privacy framework": "data privacy framework",
}


def transfer_basis(value: str) -> TransferBasis:
    """What a `legal_basis_for_transfers` value records (matched with case and spaces aside)."""
    key = " ".join(value.lower().split())
    basis = _BASES.get(_BASIS_ALIASES.get(key, key))
    if basis is not None:
        return basis
    return TransferBasis(
        todo=f"transfer basis {value!r} is not one the audit knows: record the safeguard "
        "(scc, bcr) or the consent purpose"
    )


def address_country(address: str) -> str | None:
    """The country a postal address ends with (its last line or comma-separated part), if known."""
    parts = [part.strip(" .") for part in re.split(r"[,\n;]", address) if part.strip(" .")]
    if not parts:
        return None
    last = parts[-1]
    if len(last) == 2:
        # Two letters end a US address too ("San Francisco, CA" is California, not Canada).
        return None
    return country_code(last)


_UNITS = {"day": "D", "week": "W", "month": "M", "year": "Y"}
_AMOUNT = r"(\d{1,4})"
_UNIT = r"(day|week|month|year)s?"
_SINGLE = re.compile(rf"^{_AMOUNT}\s*{_UNIT}\b\s*(.*)$", re.IGNORECASE)
_RANGE = re.compile(rf"^{_AMOUNT}\s*(?:-|–|to)\s*{_AMOUNT}\s*{_UNIT}\b\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Retention:
    """A free-text retention period read as a duration, with what the reading assumed."""

    duration: Duration | None
    assumptions: list[str] = field(default_factory=list)


def retention(text: str) -> Retention:
    """Read a fideslang `retention_period` ("P2Y", "2 years", "3-5 years", "30 days after ...").

    A range gives its shorter end (backups must not outlive it, so the shorter is the safe
    reading); words after the period (what it is counted from) are kept as an assumption.
    """
    value = " ".join(text.split())
    try:
        return Retention(parse_duration(value.upper()))
    except ValueError:
        pass
    matched = _RANGE.match(value)
    if matched:
        low, high, unit, rest = matched.groups()
        low_duration = _duration(low, unit)
        if low_duration is None or int(high) < int(low):
            return Retention(None)
        notes = [f"{value!r} is a range: its shorter end, {low_duration}, was used"]
        return Retention(low_duration, notes + _counted_from(rest))
    matched = _SINGLE.match(value)
    if matched:
        amount, unit, rest = matched.groups()
        duration = _duration(amount, unit)
        return Retention(duration, _counted_from(rest) if duration else [])
    return Retention(None)


def _duration(amount: str, unit: str) -> Duration | None:
    try:
        return parse_duration(f"P{int(amount)}{_UNITS[unit.lower()]}")
    except ValueError:
        return None  # zero, or past the longest duration accepted


def _counted_from(rest: str) -> list[str]:
    rest = rest.strip(" .;,")
    return [f"the period is counted from {rest!r}: confirm the retention"] if rest else []
