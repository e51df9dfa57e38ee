"""Recognising anonymised values exactly, and anonymising column by column: properties of the pure
functions, the SQL condition agreeing with them on SQLite, PostgreSQL and MariaDB, and records
partly anonymised before enforcement."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, String, Table, delete, insert, select, update

from auditor.retention import Replacement, enforce_policy, is_anonymised, is_keyed_hash, plan_policy
from auditor.retention.anonymised import anonymised_row, keyed_hash, replaced
from auditor.retention.tables import exact_text, keyed_hash_condition
from auditor.store import StateStore
from tests.conftest import OrgDatabase
from tests.retention.test_retention import (
    ELIGIBLE,
    SECRET,
    _crm,  # noqa: F401  (the `crm` fixture)
    bound_policy,
    clock,
    hashed,
    rows_of,
)

REPLACEMENTS = (
    Replacement("email", "hash"),
    Replacement("name", "null"),
    Replacement("phone", "value", "redacted"),
)
FIXED = {"phone": "redacted"}
HEX = "0123456789abcdef"

# Text as a database column holds it: no NUL (PostgreSQL refuses it), no lone surrogates.
texts = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=80)
digests = st.text(st.sampled_from(HEX), min_size=64, max_size=64)


@st.composite
def near_hashes(draw: st.DrawFn) -> str:
    """Values that look like a keyed hash and are not one: each a small change of a real one."""
    real = "hmac:" + draw(digests)
    index = draw(st.integers(0, len(real) - 1))
    change = draw(
        st.sampled_from(["upper", "drop", "add", "space", "newline", "replace", "prefix"])
    )
    if change == "upper":
        return real[:5] + real[5:].upper() if real[5:] != real[5:].upper() else "HMAC:" + real[5:]
    if change == "drop":
        return real[:index] + real[index + 1 :]
    if change == "add":
        return real[:index] + draw(st.sampled_from(HEX)) + real[index:]
    if change == "space":
        return real + " "
    if change == "newline":
        return real + "\n"
    if change == "prefix":
        return draw(st.sampled_from(["hmac;", "Hmac:", "hmac ", "hmac-"])) + real[5:]
    return real[: max(index, 5)] + draw(st.sampled_from("gxGZ:-")) + real[max(index, 5) + 1 :]


class TestRecognition:
    @given(value=texts)
    def test_a_keyed_hash_is_always_recognised(self, value: str) -> None:
        assert is_keyed_hash(keyed_hash(value, SECRET))

    @given(value=near_hashes())
    def test_anything_but_the_exact_form_is_a_live_value(self, value: str) -> None:
        """Upper case, a digit more or less, a trailing space or newline, another prefix."""
        assert not is_keyed_hash(value)

    @given(value=texts)
    def test_arbitrary_text_is_recognised_only_in_the_exact_form(self, value: str) -> None:
        exact = value.startswith("hmac:") and len(value) == 69 and set(value[5:]) <= set(HEX)
        assert exact == is_keyed_hash(value)

    @given(value=texts | near_hashes())
    def test_a_hash_column_keeps_its_hash_and_hashes_anything_else(self, value: str) -> None:
        hash_column = Replacement("email", "hash")
        once = replaced(hash_column, value, SECRET)
        twice = replaced(hash_column, once, SECRET)

        assert is_keyed_hash(once) and once == twice
        assert keyed_hash(value, SECRET) == once  # a near-hash is a live value, hashed


class TestPerColumnUpdate:
    rows = st.fixed_dictionaries(
        {
            "email": st.none() | texts | near_hashes() | texts.map(lambda t: hashed(t)),
            "name": st.none() | texts,
            "phone": st.none() | texts | st.just("redacted"),
        }
    )

    @given(row=rows)
    def test_anonymising_is_idempotent_and_leaves_every_column_replaced(
        self, row: dict[str, Any]
    ) -> None:
        once = anonymised_row(REPLACEMENTS, row, SECRET, FIXED)

        assert is_anonymised(REPLACEMENTS, once, FIXED)
        assert once == anonymised_row(REPLACEMENTS, once, SECRET, FIXED)

    @given(row=rows)
    def test_a_column_already_replaced_is_left_as_it_is(self, row: dict[str, Any]) -> None:
        after = anonymised_row(REPLACEMENTS, row, SECRET, FIXED)

        if row["email"] is None or is_keyed_hash(row["email"]):
            assert row["email"] == after["email"]
        assert is_anonymised(REPLACEMENTS, row, FIXED) == (after == row)

    @given(value=texts, first=rows, second=rows)
    def test_equal_values_give_equal_hashes_whichever_was_hashed_first(
        self, value: str, first: dict[str, Any], second: dict[str, Any]
    ) -> None:
        """A record whose e-mail was hashed by an earlier run and one hashed now end equal."""
        earlier = anonymised_row(REPLACEMENTS, {**first, "email": value}, SECRET, FIXED)
        later = anonymised_row(REPLACEMENTS, {**second, "email": earlier["email"]}, SECRET, FIXED)
        fresh = anonymised_row(REPLACEMENTS, {**second, "email": value}, SECRET, FIXED)

        assert later["email"] == fresh["email"] == hashed(value)

    @given(row=rows)
    def test_a_row_is_anonymised_only_when_every_column_is(self, row: dict[str, Any]) -> None:
        expected = (
            (row["email"] is None or is_keyed_hash(row["email"]))
            and row["name"] is None
            and row["phone"] == "redacted"
        )
        assert expected == is_anonymised(REPLACEMENTS, row, FIXED)


def test_the_sql_condition_agrees_with_the_recognition(org_database: OrgDatabase) -> None:
    """On every engine (MariaDB's collations compare case-insensitively and pad spaces), the SQL
    finds exactly the values `is_keyed_hash` recognises, and `exact_text` exactly equal text."""
    metadata = MetaData()
    values = Table(
        "vals",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("v", String(120), nullable=False),
    )
    metadata.create_all(org_database.engine)
    candidates = st.lists(texts | near_hashes() | texts.map(hashed), min_size=1, max_size=12)

    @settings(
        max_examples=25 if org_database.kind == "sqlite" else 8,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(found=candidates, target=texts | st.just("redacted"))
    def check(found: list[str], target: str) -> None:
        with org_database.engine.begin() as connection:
            connection.execute(delete(values))
            connection.execute(insert(values), [{"id": n, "v": v} for n, v in enumerate(found)])
            hashes = set(
                connection.execute(select(values.c.id).where(keyed_hash_condition(values.c.v)))
                .scalars()
                .all()
            )
            equal = set(
                connection.execute(select(values.c.id).where(exact_text(values.c.v, target)))
                .scalars()
                .all()
            )

        assert {n for n, v in enumerate(found) if is_keyed_hash(v)} == hashes
        assert {n for n, v in enumerate(found) if v == target} == equal

    check()


def test_a_partly_anonymised_record_is_finished_without_hashing_its_hash_again(
    crm: OrgDatabase, store: StateStore
) -> None:
    """Records an earlier run (or a person) partly anonymised: an e-mail already holding its exact
    hash keeps it while the other columns are replaced; a value merely starting with `hmac:` is
    hashed; a fixed value differing only in case is replaced; a fully anonymised record is not
    counted or touched."""
    near = {
        4: "hmac:" + hashed("person4@example.org")[5:].upper(),
        11: hashed("person11@example.org")[:-1] + " ",
    }
    table = Table("contacts", MetaData(), autoload_with=crm.engine)
    with crm.engine.begin() as connection:

        def set_row(ident: int, **values: Any) -> None:
            connection.execute(update(table).where(table.c.id == ident).values(**values))

        set_row(1, email=hashed("person1@example.org"))
        set_row(2, email=hashed("shared@example.org"))  # 7 holds the same address, live
        set_row(4, email=near[4])
        set_row(5, email=hashed("person5@example.org"), name=None, phone="redacted")
        set_row(9, email=hashed("person9@example.org"), name=None, phone="REDACTED")
        set_row(11, email=near[11])
    before = rows_of(crm)
    replacements = {"email": {"hash": True}, "name": None, "phone": {"value": "redacted"}}
    with bound_policy(crm.url, action="anonymise", anonymise=replacements) as bound:
        plan = plan_policy(bound, clock())
        done = enforce_policy(bound, clock, store, secret=SECRET)
    after = rows_of(crm)

    processed = ELIGIBLE - {5}
    assert (len(processed), len(processed)) == (plan.eligible, done.processed)
    assert before[5] == after[5]
    expected_email = {
        1: hashed("person1@example.org"),
        2: hashed("shared@example.org"),
        7: hashed("shared@example.org"),
        4: hashed(near[4]),
        9: hashed("person9@example.org"),
        11: hashed(near[11]),
    }
    for ident in processed:
        assert (expected_email[ident], None, "redacted") == after[ident][1:4], ident
    assert after[2][1] == after[7][1]


@pytest.mark.parametrize("value", ["hmac:", "hmac:" + "0" * 63, "hmac:" + "0" * 65])
def test_a_wrong_length_is_not_a_hash(value: str) -> None:
    assert not is_keyed_hash(value)
