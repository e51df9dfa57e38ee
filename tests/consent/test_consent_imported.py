"""Consent coverage against imported consents gives the SQL paths' counts and gaps on the same
data: the scenarios on SQLite, PostgreSQL and MariaDB, state stores on SQLite and PostgreSQL,
and a property test over integer, text and mixed keys."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from sqlalchemy import Boolean, Column, Engine, MetaData, String, Table, create_engine, insert

from auditor.consent.coverage import bind_consent, check_consent, coverage, gaps
from auditor.consent.imported import BoundImported, bind_imported, imported_coverage, imported_gaps
from auditor.consent.imports import ImportColumns, SubjectHasher, read_consents
from auditor.core.errors import InvalidInputError
from auditor.core.yamlsource import parse_yaml
from auditor.sources.datasources import DataSources
from auditor.store import StateStore
from auditor.store.schema import imported_consents
from tests.conftest import OrgDatabase
from tests.consent.test_consent import (
    CONSENTS,
    CUSTOMERS,
    EXPECTED,
    EXPECTED_GAPS,
    PURPOSE,
    START,
    VARIANTS,
    D,
    Variant,
    at,
    config_text,
    counts,
    load_consents,
    load_customers,
    model,
    refill,
    timed,
    variant_database,
    worlds,
)
from tests.helpers import consent_settings

KEY = b"a-test-subject-key-0123456789"
HASHER = SubjectHasher(KEY)
IMPORTED = {"imported": True}


def imported_config(**shared: Any) -> str:
    """The mailchimp mapping of tests.consent.test_consent, its consents replaced by `imported: true`."""
    document = yaml.safe_load(config_text(shared=shared or None))
    document["consent"]["mailchimp"]["consents"] = dict(IMPORTED)
    return yaml.safe_dump(document, sort_keys=False)


@contextmanager
def imported_for(crm_url: str, **shared: Any) -> Iterator[BoundImported]:
    found = consent_settings(parse_yaml(imported_config(**shared), "auditor.yaml"))
    with DataSources(found.data_sources, {"CRM_URL": crm_url}) as sources:
        yield bind_imported(found.consent["mailchimp"], sources)


def export(path: Path, rows: Sequence[tuple[Any, str, Any, Any]], purpose: str) -> Path:
    """Write the rows of one purpose as a consent platform's CSV export."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["subject", "granted_at", "withdrawn_at"])
        for subject, row_purpose, granted, withdrawn in rows:
            if row_purpose == purpose:
                writer.writerow(
                    [str(subject), _iso(granted), "" if withdrawn is None else _iso(withdrawn)]
                )
    return path


def _iso(value: Any) -> str:
    return str(value.isoformat())


def import_all(store: StateStore, rows: Sequence[tuple[Any, str, Any, Any]], where: Path) -> None:
    """Import the rows, one export file per purpose."""
    for purpose in sorted({row[1] for row in rows}):
        path = export(where / f"{purpose}.csv", rows, purpose)
        consents = read_consents(path, "csv", ImportColumns(), HASHER)
        store.import_consents(purpose, consents, digest="f" * 64, at=START)


@pytest.fixture(name="state")
def _state(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.close()


class TestScenarios:
    def test_valid_missing_withdrawn_future_and_wrong_purpose_as_sql_counts_them(
        self, org_database: OrgDatabase, state: StateStore, tmp_path: Path
    ) -> None:
        """The scenarios of the SQL tests (none, withdrawn, re-granted after D, future-dated,
        another purpose, D's last second and first instant): the same counts and gaps."""
        load_customers(org_database.engine, CUSTOMERS)
        load_consents(org_database.engine, CONSENTS)
        import_all(state, CONSENTS, tmp_path)
        text = config_text()
        found = consent_settings(parse_yaml(text, "auditor.yaml"))

        with imported_for(org_database.url) as bound:
            result = imported_coverage(bound, D, state, HASHER, batch_size=3)
            listed = list(imported_gaps(bound, D, state, HASHER, batch_size=2))
            gone = list(imported_gaps(bound, D, state, HASHER, withdrawn_only=True))
        with DataSources(found.data_sources, {"CRM_URL": org_database.url}) as sources:
            sql = bind_consent(found.consent["mailchimp"], sources)
            sql_counts, sql_gaps = counts(coverage(sql, D)), list(gaps(sql, D))

        assert (EXPECTED, "imported") == (counts(result), result.path)
        assert (EXPECTED, EXPECTED_GAPS) == (sql_counts, sql_gaps)
        assert EXPECTED_GAPS == listed
        assert ["3", "10"] == gone
        assert (D, "mailchimp", PURPOSE) == (result.as_of, result.integration, result.purpose)

    def test_text_keys_match_only_identical_text(
        self, org_database: OrgDatabase, state: StateStore, tmp_path: Path
    ) -> None:
        """`ABC`, `abc `, `zoë` and `Zoe` cover neither `abc` nor `Zoë`, whatever the
        database's collation; the hashes of identical text match."""
        keys = ["abc", "Zoë", "key 1", "plain"]
        load_customers(
            org_database.engine,
            [{"customer_id": key, "synced_to_mailchimp": True} for key in keys],
            key=String(20),
        )
        rows: list[tuple[Any, str, Any, Any]] = [
            (subject, PURPOSE, at(-5), None) for subject in ("ABC", "abc ", "zoë", "Zoe", "key 1")
        ]
        rows.append(("plain", PURPOSE, at(-5), at(-1)))
        import_all(state, rows, tmp_path)

        with imported_for(org_database.url) as bound:
            result = imported_coverage(bound, D, state, HASHER)
            listed = list(imported_gaps(bound, D, state, HASHER))

        assert ((4, 3, 1), ["Zoë", "abc", "plain"]) == (counts(result), listed)

    def test_a_subject_shared_twice_counts_once(
        self, org_database: OrgDatabase, state: StateStore, tmp_path: Path
    ) -> None:
        """A sync log listing subjects several times (and a null key) counts distinct ones."""
        metadata = MetaData()
        log = Table(
            "sync_log",
            metadata,
            Column("customer_id", String(10), nullable=True),
            Column("synced_to_mailchimp", Boolean),
        )
        metadata.create_all(org_database.engine)
        with org_database.engine.begin() as connection:
            connection.execute(
                insert(log),
                [
                    {"customer_id": key, "synced_to_mailchimp": True}
                    for key in ("1", "1", "2", "2", "3", "10", "9", None)
                ],
            )
        import_all(state, CONSENTS, tmp_path)

        with imported_for(org_database.url, table="sync_log") as bound:
            result = imported_coverage(bound, D, state, HASHER, batch_size=2)
            listed = list(imported_gaps(bound, D, state, HASHER, batch_size=2))

        # Text keys sort by code point: "10" before "2".
        assert ((5, 4, 2), ["10", "2", "3", "9"]) == (counts(result), listed)

    def test_a_state_store_on_postgresql_gives_the_same_counts(
        self, state_url: str, tmp_path: Path
    ) -> None:
        """The imported consents looked up in a PostgreSQL state store, as in SQLite."""
        crm = f"sqlite:///{tmp_path / 'crm.db'}"
        engine = create_engine(crm)
        load_customers(engine, CUSTOMERS)
        engine.dispose()
        store = StateStore.open(state_url)
        try:
            import_all(store, CONSENTS, tmp_path)
            with imported_for(crm) as bound:
                result = imported_coverage(bound, D, store, HASHER, batch_size=4)
                listed = list(imported_gaps(bound, D, store, HASHER))
        finally:
            store.close()

        assert (EXPECTED, EXPECTED_GAPS) == (counts(result), listed)

    def test_another_subject_key_matches_nothing(self, state: StateStore, tmp_path: Path) -> None:
        """Hashed with another secret, no shared subject finds its consent: all are missing."""
        crm = f"sqlite:///{tmp_path / 'crm.db'}"
        engine = create_engine(crm)
        load_customers(engine, CUSTOMERS)
        engine.dispose()
        import_all(state, CONSENTS, tmp_path)

        with imported_for(crm) as bound:
            result = imported_coverage(bound, D, state, SubjectHasher(b"another-key-0123456789"))

        assert (10, 10, 0) == counts(result)

    def test_only_the_shared_table_is_checked_against_the_schema(self, tmp_path: Path) -> None:
        """A misconfigured key column is an issue naming `consent.mailchimp.shared.key`; an
        imported mapping is refused by the table binder and the table binder's by this one."""
        crm = f"sqlite:///{tmp_path / 'crm.db'}"
        engine = create_engine(crm)
        load_customers(engine, CUSTOMERS)
        engine.dispose()
        bad = consent_settings(parse_yaml(imported_config(key="cust_id"), "auditor.yaml")).consent
        good = consent_settings(parse_yaml(config_text(), "auditor.yaml")).consent

        with DataSources({"crm": _crm_settings()}, {"CRM_URL": crm}) as sources:
            issues = check_consent(bad, sources)
            with pytest.raises(InvalidInputError):
                bind_imported(bad["mailchimp"], sources)
            with pytest.raises(TypeError):
                bind_consent(bad["mailchimp"], sources)
            with pytest.raises(ValueError, match="not imported"):
                bind_imported(good["mailchimp"], sources)

        assert [
            (
                "auditor.yaml:12: consent.mailchimp.shared.key: column 'cust_id' not in table "
                "customers (columns: customer_id, synced_to_mailchimp)"
            )
        ] == [str(issue) for issue in issues]

    def test_imported_true_allows_no_table_keys(self) -> None:
        """`imported: true` with a table key is an error naming it; without, a table needs its
        columns, each missing one named."""
        document = parse_yaml(imported_config(), "auditor.yaml").data
        document["consent"]["mailchimp"]["consents"] = {"imported": True, "table": "consents"}

        with pytest.raises(InvalidInputError) as mixed:
            consent_settings(parse_yaml(yaml.safe_dump(document), "auditor.yaml"))
        document["consent"]["mailchimp"]["consents"] = {"source": "crm", "table": "consents"}
        with pytest.raises(InvalidInputError) as bare:
            consent_settings(parse_yaml(yaml.safe_dump(document), "auditor.yaml"))

        assert ["consent.mailchimp.consents.table: not used with imported: true"] == [
            f"{issue.field}: {issue.message}" for issue in mixed.value.issues
        ]
        assert [
            "consent.mailchimp.consents.subject",
            "consent.mailchimp.consents.purpose",
            "consent.mailchimp.consents.granted_at",
            "consent.mailchimp.consents.withdrawn_at",
        ] == [issue.field for issue in bare.value.issues]


def _crm_settings() -> Any:
    return consent_settings(parse_yaml(config_text(), "auditor.yaml")).data_sources["crm"]


# --- the property: imported matching agrees with the SQL pushdown --------------------------------


@dataclass
class World:
    engine: Engine
    sources: DataSources
    sql: Any
    imported: BoundImported
    customers: Table
    consents: Table
    store: StateStore
    files: Path


@pytest.fixture(name="imported_worlds", scope="module")
def _imported_worlds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, World]]:
    """Per key variant: a SQLite organisation database, a SQLite state store, both mappings."""
    made: dict[str, World] = {}
    for variant in VARIANTS:
        where = tmp_path_factory.mktemp(f"imported-{variant.name}")
        url, engine, customers, consents = variant_database(where, variant)
        sql_settings = consent_settings(parse_yaml(config_text(), "auditor.yaml"))
        imported_settings = consent_settings(parse_yaml(imported_config(), "auditor.yaml"))
        sources = DataSources(sql_settings.data_sources, {"CRM_URL": url})
        made[variant.name] = World(
            engine,
            sources,
            bind_consent(sql_settings.consent["mailchimp"], sources),
            bind_imported(imported_settings.consent["mailchimp"], sources),
            customers,
            consents,
            StateStore.open(f"sqlite:///{where / 'state.db'}"),
            where,
        )
    yield made
    for world in made.values():
        world.sources.close()
        world.store.close()
        world.engine.dispose()


def as_exported(variant: Variant, consents: list[Any]) -> list[tuple[Any, str, Any, Any]]:
    """The drawn consents as an export lists them: each (subject, purpose, grant) once, no
    empty subject key, no withdrawal before its grant (the import refuses those rows)."""
    seen: set[tuple[str, str, int]] = set()
    kept = []
    for subject, purpose, start, gone in consents:
        identity = (str(subject), purpose, start)
        if str(subject) == "" or identity in seen or (gone is not None and gone < start):
            continue
        seen.add(identity)
        kept.append((subject, purpose, start, gone))
    return kept


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_imported_matching_and_the_pushdown_always_agree(
    variant: Variant, imported_worlds: dict[str, World]
) -> None:
    """For any shared subjects and exported consents (integer, text and mixed keys, repeated
    subjects, grants and withdrawals around D's midnight), matching the imported hashes gives
    the counts and gaps of the SQL anti-join on the same consents, and of the definition."""
    world = imported_worlds[variant.name]

    @settings(max_examples=30, deadline=None)
    @given(data=worlds(variant))
    def check(data: tuple[list[Any], list[Any]]) -> None:
        shared, drawn = data
        consents = as_exported(variant, drawn)
        rows = timed(consents)
        refill(world.engine, world.customers, world.consents, shared, rows)
        with world.store.engine.begin() as connection:
            connection.execute(imported_consents.delete())
        import_all(world.store, rows, world.files)
        expected, missing, withdrawn = model(variant, shared, consents)

        imported = counts(imported_coverage(world.imported, D, world.store, HASHER, batch_size=3))
        pushdown = counts(coverage(world.sql, D))
        listed = list(imported_gaps(world.imported, D, world.store, HASHER, batch_size=4))
        gone = list(imported_gaps(world.imported, D, world.store, HASHER, withdrawn_only=True))

        # The same keys; in the shared key's own order (integers numerically), where the SQL
        # paths compare integer keys with text subjects as text, and so sort them as text.
        in_order = (lambda keys: sorted(keys, key=int)) if variant.name != "text" else sorted
        assert (expected, expected) == (imported, pushdown)
        assert (in_order(missing), missing) == (listed, list(gaps(world.sql, D)))
        assert in_order(withdrawn) == gone

    check()
