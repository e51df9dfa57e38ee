"""The evidence chain: any edit, deletion, insertion or reordering is found and named."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, update

from auditor.core.chain import EvidenceRecord, canonical, link, verify
from auditor.store import evidence as store_evidence
from auditor.store.schema import evidence as evidence_table
from auditor.store.schema import metadata

KEY = b"k" * 32
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def chain(n: int, key: bytes | None = KEY) -> list[EvidenceRecord]:
    records: list[EvidenceRecord] = []
    for index in range(n):
        previous = records[-1] if records else None
        at = T0 + timedelta(minutes=index)
        records.append(link(previous, "audit-run", {"run": index, "findings": index * 2}, at, key))
    return records


class TestVerify:
    def test_an_intact_chain_verifies(self) -> None:
        """An untouched chain verifies, with or without the key, and reports its head."""
        records = chain(5)

        result = verify(records, KEY)

        assert (True, 5, records[-1].hash) == (result.ok, result.records, result.head)
        assert verify(records).ok

    def test_an_edited_record_is_named(self) -> None:
        """Changing one record's content breaks its own hash."""
        records = chain(5)
        records[2] = dataclasses.replace(records[2], content=canonical({"run": 2, "findings": 0}))

        result = verify(records, KEY)

        assert (False, 3) == (result.ok, result.first_bad)
        assert "edited" in (result.problem or "")

    def test_a_rehashed_edit_without_the_key_is_caught_by_the_mac(self) -> None:
        """Someone with database access can recompute hashes, but not the HMACs."""
        records = chain(4)
        forged = chain(4, key=b"wrong key, wrong key, wrong key!")
        tampered = [*records[:1], *forged[1:]]
        tampered[1] = dataclasses.replace(tampered[1], prev_hash=records[0].hash)
        rebuilt = [tampered[0]]
        for record in tampered[1:]:
            rebuilt.append(link(rebuilt[-1], record.kind, record.data(), record.at, b"x" * 32))

        result = verify(rebuilt, KEY)

        assert (False, 2) == (result.ok, result.first_bad)
        assert "HMAC" in (result.problem or "")

    def test_deleted_inserted_and_reordered_records(self) -> None:
        """A gap, an extra record and a swap are each found at the first record affected."""
        records = chain(6)
        deleted = records[:2] + records[3:]
        inserted = [*records[:3], link(records[2], "audit-run", {"run": 99}, T0, KEY), *records[3:]]
        swapped = [records[0], records[2], records[1], *records[3:]]

        assert 3 == verify(deleted, KEY).first_bad
        assert 5 == verify(inserted, KEY).first_bad
        assert 2 == verify(swapped, KEY).first_bad

    def test_a_truncated_tail_is_caught_against_an_anchored_head(self) -> None:
        """Dropping the newest records leaves a valid chain, but not the head anchored earlier."""
        records = chain(5)

        assert verify(records[:3], KEY).ok
        assert not verify(records[:3], KEY, expect_head=records[4].hash).ok
        assert verify(records, KEY, expect_head=records[4].hash).ok

    @given(st.integers(1, 12), st.data())
    def test_any_single_content_change_is_found(self, size: int, data: st.DataObject) -> None:
        """Whichever record is changed, verification fails exactly there."""
        records = chain(size)
        index = data.draw(st.integers(0, size - 1))
        value = data.draw(st.integers(1000, 2000))
        records[index] = dataclasses.replace(records[index], content=canonical({"run": value}))

        assert index + 1 == verify(records, KEY).first_bad


def test_naive_times_are_refused() -> None:
    """Evidence times are UTC-aware; a naive one is an error, not a silent local time."""
    with pytest.raises(ValueError, match="timezone-aware"):
        link(None, "x", {}, datetime(2026, 1, 1), KEY)  # noqa: DTZ001


class TestStoredChain:
    @pytest.fixture(name="connection_url", params=["sqlite", "postgresql"])
    def _connection_url(self, request: pytest.FixtureRequest, tmp_path: object) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path}/evidence.db"  # type: ignore[str-bytes-safe]
        url: str = request.getfixturevalue("postgres_schema_url")
        return url

    def test_appends_chain_and_tampering_in_the_database_is_found(
        self, connection_url: str
    ) -> None:
        """Records appended through the store verify; an UPDATE behind its back does not."""
        engine = create_engine(connection_url.replace("postgresql://", "postgresql+psycopg://", 1))
        metadata.create_all(engine)
        try:
            with engine.begin() as connection:
                for index in range(3):
                    store_evidence.append(connection, "waiver", {"finding": index}, T0, KEY)
            with engine.connect() as connection:
                assert verify(store_evidence.records(connection, batch=2), KEY).ok
            with engine.begin() as connection:
                connection.execute(
                    update(evidence_table)
                    .where(evidence_table.c.seq == 2)
                    .values(content='{"finding":7}')
                )
            with engine.connect() as connection:
                result = verify(store_evidence.records(connection), KEY)
        finally:
            engine.dispose()

        assert (False, 2) == (result.ok, result.first_bad)
