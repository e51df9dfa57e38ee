"""Fides' free-text and taxonomy values read into the inventory's vocabulary."""

from __future__ import annotations

import pytest

from auditor.discovery import fides_vocabulary as vocab


@pytest.mark.parametrize(
    ("text", "duration", "assumptions"),
    [
        ("P2Y", "P2Y", 0),
        ("p18m", "P18M", 0),
        ("2 years", "P2Y", 0),
        ("1 Year", "P1Y", 0),
        ("30 days", "P30D", 0),
        ("6 weeks", "P6W", 0),
        ("3-5 years", "P3Y", 1),
        ("3 to 5 years", "P3Y", 1),
        ("90 days after the account is closed", "P90D", 1),
        ("3-5 years after the contract ends", "P3Y", 2),
        ("Until the ticket is closed", None, 0),
        ("Indefinitely", None, 0),
        ("0 days", None, 0),
        ("5-3 years", None, 0),
        ("9999 years", None, 0),
    ],
)
def test_retention_periods_are_read_as_durations_with_what_was_assumed(
    text: str, duration: str | None, assumptions: int
) -> None:
    reading = vocab.retention(text)

    assert duration == (str(reading.duration) if reading.duration else None)
    assert assumptions == len(reading.assumptions)


@pytest.mark.parametrize(
    ("address", "country"),
    [
        ("500 Market Street, San Francisco, CA 94105, United States", "US"),
        ("1 Harbour Road\nDublin 2\nIreland", "IE"),
        ("Friedrichstrasse 10, 10117 Berlin, Germany.", "DE"),
        ("200 Pine Street, Toronto, ON M5H 1A1, CAN", "CA"),
        ("Tverskaya 1, 125009 Moscow, Russia", "RU"),
        ("500 Market Street, San Francisco, CA", None),  # California, not Canada
        ("35925 Test Lane, Test Town, TX 24924", None),
        ("", None),
    ],
)
def test_the_country_of_a_legal_address_is_read_from_its_last_part(
    address: str, country: str | None
) -> None:
    assert country == vocab.address_country(address)


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("user.contact.email", "contact"),
        ("user.demographic.gender", "identity"),
        ("user.demographic.religious_belief", "special"),
        ("user.authorization.biometric", "special"),
        ("user.health_and_medical.genetic", "special"),
        ("user.health_and_medical.record_id", "health"),
        ("user.provided.identifiable.contact.email", "contact"),  # fideslang 1
        ("user.derived.identifiable.location", "location"),
        ("user", None),
        ("user.childrens", None),
        ("user.telemetry", None),
    ],
)
def test_taxonomy_categories_map_by_longest_prefix(category: str, expected: str | None) -> None:
    assert vocab.is_personal(category)
    assert expected == vocab.data_category(category)


def test_only_system_categories_are_not_personal() -> None:
    assert not vocab.is_personal("system")
    assert not vocab.is_personal("system.operations")
    assert vocab.is_personal("systematic.custom")
    assert vocab.is_personal("account.contact.email")  # fideslang 1's business contacts


@pytest.mark.parametrize(
    ("value", "safeguard", "todo"),
    [
        ("SCCs", "scc", False),
        ("Standard  Contractual Clauses", "scc", False),
        ("BCRs", "bcr", False),
        ("Adequacy Decision", None, True),
        ("Supplementary Measures", None, True),
        ("Consent", None, True),
        ("Explicit consent", None, True),
        ("DPF", None, True),
        ("Other", None, True),
        ("Derogation for contract performance", None, True),
    ],
)
def test_transfer_bases_give_a_safeguard_or_a_todo(
    value: str, safeguard: str | None, todo: bool
) -> None:
    basis = vocab.transfer_basis(value)

    assert (safeguard, todo) == (basis.safeguard, basis.todo is not None)
