"""Consent coverage on SQLite, PostgreSQL and MariaDB: the configuration, valid, missing, withdrawn,
future-dated and wrong-purpose consents, both paths, a merge across two servers, errors, and a
property test that the merge and the pushdown always agree."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    text,
)
from sqlalchemy.types import TypeEngine

from auditor.consent.config import check_against_inventory
from auditor.consent.counting import _OutOfOrder, _pieces
from auditor.consent.coverage import bind_consent, check_consent, coverage, gaps
from auditor.consent.ranges import key_cuts
from auditor.consent.statements import BoundConsent, CoverageQuery
from auditor.core.consents import ConsentCoverage
from auditor.core.errors import InvalidInputError
from auditor.core.yamlsource import parse_yaml
from auditor.sources.datasources import DataSourceError, DataSources
from tests.conftest import OrgDatabase
from tests.helpers import consent_settings, free_port, integrations_from, minimal

D = date(2026, 11, 22)
PURPOSE = "newsletter-us"


def at(days: int, clock: time = time(12)) -> datetime:
    """An instant `days` after the audit date, UTC."""
    return datetime.combine(D + timedelta(days=days), clock, tzinfo=UTC)


LAST_SECOND = time(23, 59, 59)
MIDNIGHT = time(0)

# Customers 1-10 are shared with Mailchimp, 11 is not.
CUSTOMERS = [{"customer_id": n, "synced_to_mailchimp": n <= 10} for n in range(1, 12)]
CONSENTS = [
    (1, PURPOSE, at(-300), None),  # valid
    # 2: no consent at all                                              missing
    (3, PURPOSE, at(-300), at(-10)),  # withdrawn before D                      withdrawn
    (3, PURPOSE, at(2), None),  # ... and granted again, after D: does not count
    (4, PURPOSE, at(5), None),  # a future-dated grant                        missing
    (5, "analytics", at(-300), None),  # another purpose                      missing
    (6, PURPOSE, at(-300), at(3)),  # withdrawn after D: valid on D
    (7, PURPOSE, at(-700), at(-400)),  # withdrawn, then granted again: valid
    (7, PURPOSE, at(-390), None),
    (8, PURPOSE, at(0, LAST_SECOND), None),  # granted in D's last second: valid
    (9, PURPOSE, at(1, MIDNIGHT), None),  # granted at the first instant after D  missing
    (10, PURPOSE, at(-300), at(0, MIDNIGHT)),  # withdrawn at D's first instant  withdrawn
    (11, PURPOSE, at(-300), at(-1)),  # not shared: not counted
]
EXPECTED = (10, 6, 2)  # shared, missing, withdrawn
EXPECTED_GAPS = ["2", "3", "4", "5", "9", "10"]  # numeric order: 9 before 10


def consent_mapping(
    consents_source: str = "crm",
    shared: dict[str, Any] | None = None,
    consents: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The mailchimp consent mapping over the `customers` and `consents` tables, keys overridden."""
    return {
        "purpose": PURPOSE,
        "shared": {
            "source": "crm",
            "table": "customers",
            "key": "customer_id",
            "filter": {"synced_to_mailchimp": True},
            **(shared or {}),
        },
        "consents": {
            "source": consents_source,
            "table": "consents",
            "subject": "customer_id",
            "purpose": "purpose",
            "granted_at": "granted_at",
            "withdrawn_at": "withdrawn_at",
            **(consents or {}),
        },
    }


def config_text(
    consents_source: str = "crm",
    shared: dict[str, Any] | None = None,
    consents: dict[str, Any] | None = None,
) -> str:
    evidence = {"notice_version": "notice_version", "method": "method", **(consents or {})}
    document = {
        "data_sources": {"crm": {"url_env": "CRM_URL"}, "ledger": {"url_env": "LEDGER_URL"}},
        "consent": {"mailchimp": consent_mapping(consents_source, shared, evidence)},
    }
    return yaml.safe_dump(document, sort_keys=False)


@contextmanager
def consent_for(
    crm_url: str, ledger_url: str | None = None, **overrides: Any
) -> Iterator[BoundConsent]:
    """The mailchimp mapping bound to its sources (consents in `ledger_url` if given)."""
    text = config_text("ledger" if ledger_url else "crm", **overrides)
    found = consent_settings(parse_yaml(text, "auditor.yaml"))
    environ = {"CRM_URL": crm_url, "LEDGER_URL": ledger_url or crm_url}
    with DataSources(found.data_sources, environ) as sources:
        yield bind_consent(found.consent["mailchimp"], sources)


def customers_table(
    metadata: MetaData, key: TypeEngine[Any] | None = None, *, unique: bool = True
) -> Table:
    """The shared table; its key the primary key when `unique`, else indexed."""
    return Table(
        "customers",
        metadata,
        Column(
            "customer_id",
            key or Integer(),
            primary_key=unique,
            index=not unique,
            autoincrement=False,
        ),
        Column("synced_to_mailchimp", Boolean, nullable=False),
    )


def consents_table(
    metadata: MetaData,
    key: TypeEngine[Any] | None = None,
    when: TypeEngine[Any] | None = None,
    *,
    nullable: bool = False,
) -> Table:
    """The consents table, its subject column indexed."""
    when = when or DateTime(timezone=True)
    return Table(
        "consents",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("customer_id", key or Integer(), nullable=nullable, index=True),
        Column("purpose", String(40), nullable=False),
        Column("granted_at", when, nullable=False),
        Column("withdrawn_at", when),
        Column("notice_version", String(10)),
        Column("method", String(20)),
    )


def load_customers(engine: Engine, rows: Sequence[dict[str, Any]], **types: Any) -> None:
    metadata = MetaData()
    table = customers_table(metadata, **types)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), list(rows))


def load_consents(engine: Engine, rows: Sequence[tuple[Any, str, Any, Any]], **types: Any) -> None:
    metadata = MetaData()
    table = consents_table(metadata, **types)
    metadata.create_all(engine)
    values = [
        {
            "customer_id": subject,
            "purpose": purpose,
            "granted_at": granted,
            "withdrawn_at": withdrawn,
            "notice_version": "v2",
            "method": "web-form",
        }
        for subject, purpose, granted, withdrawn in rows
    ]
    with engine.begin() as connection:
        connection.execute(insert(table), values)


def counts(result: ConsentCoverage) -> tuple[int, int, int]:
    return result.shared, result.missing, result.withdrawn


def both_paths(bound: BoundConsent) -> dict[str, tuple[int, int, int]]:
    return {
        "pushdown": counts(coverage(bound, D, merge=None)),
        "merge": counts(coverage(bound, D, merge=True, chunk_size=3)),
    }


class TestConfig:
    def test_the_documented_example_loads(self) -> None:
        """The YAML of the module docstring gives the settings it describes."""
        from auditor.consent import config as consent_config

        example = consent_config.__doc__.split("```yaml\n")[1].split("```")[0]  # type: ignore[union-attr]

        found = consent_settings(parse_yaml(example, "auditor.yaml"))

        mapping = found.consent["mailchimp"]
        assert ("crm", None, "CRM_DATABASE_URL", True) == (
            found.data_sources["crm"].name,
            found.data_sources["crm"].url,
            found.data_sources["crm"].url_env,
            found.data_sources["crm"].read_only,
        )
        assert "newsletter-us" == mapping.purpose
        assert ("customers", "customer_id") == (mapping.shared.selection.table, mapping.shared.key)
        assert [("synced_to_mailchimp", (True,), False)] == [
            (t.column, t.values, t.or_null) for t in mapping.shared.selection.filter
        ]
        assert {
            "subject": "customer_id",
            "purpose": "purpose",
            "granted_at": "granted_at",
            "withdrawn_at": "withdrawn_at",
        } == mapping.consents.columns()
        assert mapping.same_source

    def test_a_schema_qualified_table_and_list_filters(self) -> None:
        """`sales.customers` splits into schema and table; a list is IN, a null in it IS NULL."""
        text = config_text(shared={"table": "sales.customers", "filter": {"tier": ["a", None]}})

        mapping = consent_settings(parse_yaml(text, "auditor.yaml")).consent["mailchimp"]

        chosen = mapping.shared.selection
        assert ("sales", "customers", "sales.customers") == (
            chosen.schema,
            chosen.table,
            chosen.display_name,
        )
        assert [("tier", ("a",), True)] == [(t.column, t.values, t.or_null) for t in chosen.filter]

    def test_every_problem_is_named_with_its_key_path_and_line(self) -> None:
        """Bad entries are all reported, each naming `consent.<id>.<part>.<key>` and its line."""
        text = textwrap.dedent(
            """\
            data_sources:
              crm: {url: "sqlite:///crm.db", url_env: CRM_URL}
              ok: {url_env: OK_URL, timeout: 3}
            consent:
              mailchimp:
                purpose: newsletter-us
                shared: {source: nowhere, table: customers, key: customer_id}
                consents:
                  source: ok
                  table: consents
                  subject: customer_id
                  purpose: purpose
                  granted_at: granted_at
              Bad_Id:
                purpose: x
                shared: {source: ok, table: customers, key: id, filter: {flag: {a: 1}}}
                consents: {source: ok, table: c, subject: s, purpose: p, granted_at: g,
                           withdrawn_at: null}
            """
        )

        with pytest.raises(InvalidInputError) as raised:
            consent_settings(parse_yaml(text, "auditor.yaml"))

        assert [
            "auditor.yaml:2: data_sources.crm: set exactly one of url and url_env",
            (
                "auditor.yaml:3: data_sources.ok.timeout: unknown key"
                " (known keys here: url, url_env, read_only)"
            ),
            "auditor.yaml:8: consent.mailchimp.consents.withdrawn_at: required key is missing",
            (
                "auditor.yaml:16: consent.Bad_Id.shared.filter: filter on 'flag': expected a "
                "string, number, boolean, date or null, or a list of them"
            ),
        ] == [str(issue) for issue in raised.value.issues]

    def test_an_unknown_data_source_is_named(self) -> None:
        """A table in a data source that is not configured names the ones that are."""
        text = config_text(shared={"source": "crmx"})

        with pytest.raises(InvalidInputError) as raised:
            consent_settings(parse_yaml(text, "auditor.yaml"))

        assert [
            (
                "auditor.yaml:10: consent.mailchimp.shared.source: no data source named 'crmx' "
                "under data_sources (data sources: crm, ledger)"
            )
        ] == [str(issue) for issue in raised.value.issues]

    def test_mappings_are_checked_against_the_inventory(self) -> None:
        """A mapping needs an integration of that id in the inventory relying on consent."""
        text = config_text()
        mappings = consent_settings(parse_yaml(text, "auditor.yaml")).consent
        relies = minimal("mailchimp", transfer={"consent_purpose": "newsletter"})

        fine = check_against_inventory(
            mappings, integrations_from(yaml.safe_dump({"integrations": [relies]}))
        )
        unknown = check_against_inventory(mappings, [])
        not_consent = check_against_inventory(
            mappings, integrations_from(yaml.safe_dump({"integrations": [minimal("mailchimp")]}))
        )

        assert [] == fine
        assert ["no integration 'mailchimp' in the inventory"] == [i.message for i in unknown]
        assert "does not rely on consent" in not_consent[0].message


class TestCoverage:
    def test_valid_missing_withdrawn_future_and_wrong_purpose(
        self, org_database: OrgDatabase
    ) -> None:
        """Both paths count 10 shared, 6 missing (none, withdrawn twice, future-dated, another
        purpose, granted just after D), 2 withdrawn; D's last second and first instant count."""
        load_customers(org_database.engine, CUSTOMERS)
        load_consents(org_database.engine, CONSENTS)

        with consent_for(org_database.url) as bound:
            result = coverage(bound, D)
            forced = coverage(bound, D, merge=True, chunk_size=2)

        assert (EXPECTED, "pushdown") == (counts(result), result.path)
        assert (EXPECTED, "merge") == (counts(forced), forced.path)
        assert ("mailchimp", PURPOSE, D, 4) == (
            result.integration,
            result.purpose,
            result.as_of,
            result.covered,
        )
        assert result.duration_seconds > 0

    def test_gaps_stream_the_affected_keys_in_key_order(self, org_database: OrgDatabase) -> None:
        """`gaps` yields the missing subjects' keys (9 before 10), or only the withdrawn ones."""
        load_customers(org_database.engine, CUSTOMERS)
        load_consents(org_database.engine, CONSENTS)

        with consent_for(org_database.url) as bound:
            listed = {
                (merge, only): list(gaps(bound, D, merge=merge, withdrawn_only=only, chunk_size=2))
                for merge in (None, True)
                for only in (False, True)
            }

        assert {
            (None, False): EXPECTED_GAPS,
            (True, False): EXPECTED_GAPS,
            (None, True): ["3", "10"],
            (True, True): ["3", "10"],
        } == listed

    def test_a_merge_left_early_frees_its_connections_for_the_next(
        self, org_database: OrgDatabase
    ) -> None:
        """Closing a merged `gaps` after its first key, with both streams unread, gives both
        connections back in a state fit for the next count (on PostgreSQL, the query cancelled)."""
        load_customers(org_database.engine, CUSTOMERS)
        load_consents(org_database.engine, CONSENTS)

        with consent_for(org_database.url) as bound:
            with closing(gaps(bound, D, merge=True, chunk_size=1)) as keys:
                first = next(keys)
            idle = bound.shared.source.engine.pool.checkedout()  # type: ignore[attr-defined]
            again = coverage(bound, D, merge=True, chunk_size=1)

        assert (EXPECTED_GAPS[0], 0, EXPECTED) == (first, idle, counts(again))

    def test_date_columns_count_whole_days(self, org_database: OrgDatabase) -> None:
        """With DATE columns, granted on D counts, granted on D+1 does not, withdrawn on D ends."""
        as_dates = [
            (subject, purpose, granted.date(), withdrawn and withdrawn.date())
            for subject, purpose, granted, withdrawn in CONSENTS
        ]
        load_customers(org_database.engine, CUSTOMERS)
        load_consents(org_database.engine, as_dates, when=Date())

        with consent_for(org_database.url) as bound:
            assert {"pushdown": EXPECTED, "merge": EXPECTED} == both_paths(bound)

    def test_text_keys_differ_by_case_accents_and_trailing_space(
        self, org_database: OrgDatabase
    ) -> None:
        """A consent of `ABC`, `abc ` or `zoë` covers neither `abc` nor `Zoë`, on every database
        whatever its collation (MariaDB's default ignores case and trailing spaces)."""
        keys = ["abc", "Zoë", "key 1", "plain"]
        load_customers(
            org_database.engine,
            [{"customer_id": key, "synced_to_mailchimp": True} for key in keys],
            key=String(20),
        )
        rows = [
            (subject, PURPOSE, at(-5), None) for subject in ("ABC", "abc ", "zoë", "Zoe", "key 1")
        ]
        rows.append(("plain", PURPOSE, at(-5), at(-1)))
        load_consents(org_database.engine, rows, key=String(20))

        with consent_for(org_database.url) as bound:
            found = both_paths(bound)
            listed = list(gaps(bound, D)), list(gaps(bound, D, merge=True))

        assert {"pushdown": (4, 3, 1), "merge": (4, 3, 1)} == found
        assert (["Zoë", "abc", "plain"], ["Zoë", "abc", "plain"]) == listed

    def test_key_columns_of_different_collations_compare_exactly(
        self, org_database: OrgDatabase
    ) -> None:
        """Key columns of two collations (PostgreSQL "C" against the default, MariaDB
        unicode_ci against general_ci, SQLite NOCASE against BINARY) neither fail as an
        illegal mix nor match `ABC` to `abc`."""
        collation = {"sqlite": "NOCASE", "postgresql": "C", "mariadb": "utf8mb4_unicode_ci"}
        load_customers(
            org_database.engine,
            [{"customer_id": key, "synced_to_mailchimp": True} for key in ("abc", "Zoë", "plain")],
            key=String(20, collation=collation[org_database.kind]),
        )
        rows = [
            ("ABC", PURPOSE, at(-5), None),
            ("Zoë", PURPOSE, at(-5), None),
            ("plain", PURPOSE, at(-5), at(-1)),
        ]
        load_consents(org_database.engine, rows, key=String(20))

        with consent_for(org_database.url) as bound:
            found = both_paths(bound)
            listed = list(gaps(bound, D)), list(gaps(bound, D, merge=True))

        assert {"pushdown": (3, 2, 1), "merge": (3, 2, 1)} == found
        assert (["abc", "plain"], ["abc", "plain"]) == listed

    def test_a_subject_shared_twice_counts_once(self, org_database: OrgDatabase) -> None:
        """A shared table without a unique key (a sync log) counts distinct subjects."""
        metadata = MetaData()
        log = Table(
            "sync_log",
            metadata,
            Column("customer_id", Integer, nullable=True),
            Column("synced_to_mailchimp", Boolean),
        )
        metadata.create_all(org_database.engine)
        with org_database.engine.begin() as connection:
            connection.execute(
                insert(log),
                [{"customer_id": n, "synced_to_mailchimp": True} for n in (1, 1, 2, 2, 3, 10, 9)]
                + [{"customer_id": None, "synced_to_mailchimp": True}],
            )
        load_consents(org_database.engine, CONSENTS)

        with consent_for(org_database.url, shared={"table": "sync_log"}) as bound:
            found = both_paths(bound)
            listed = list(gaps(bound, D)), list(gaps(bound, D, merge=True))

        assert {"pushdown": (5, 4, 2), "merge": (5, 4, 2)} == found
        assert (["2", "3", "9", "10"], ["2", "3", "9", "10"]) == listed

    def test_consents_kept_in_the_shared_table_itself(self, org_database: OrgDatabase) -> None:
        """Shared subjects and consents may be one table (consent columns on `customers`)."""
        metadata = MetaData()
        table = Table(
            "customers",
            metadata,
            Column("customer_id", Integer, primary_key=True, autoincrement=False),
            Column("synced_to_mailchimp", Boolean, nullable=False),
            Column("purpose", String(40)),
            Column("granted_at", DateTime(timezone=True)),
            Column("withdrawn_at", DateTime(timezone=True)),
        )
        metadata.create_all(org_database.engine)
        rows = [
            (1, PURPOSE, at(-3), None),
            (2, PURPOSE, at(-3), at(-1)),
            (3, None, None, None),
            (4, PURPOSE, at(3), None),
        ]
        with org_database.engine.begin() as connection:
            connection.execute(
                insert(table),
                [
                    {
                        "customer_id": key,
                        "synced_to_mailchimp": True,
                        "purpose": purpose,
                        "granted_at": granted,
                        "withdrawn_at": withdrawn,
                    }
                    for key, purpose, granted, withdrawn in rows
                ],
            )
        same = {"table": "customers", "notice_version": None, "method": None}

        with consent_for(org_database.url, consents=same) as bound:
            assert {"pushdown": (4, 3, 1), "merge": (4, 3, 1)} == both_paths(bound)

    def test_offsets_are_compared_as_instants(self, org_database: OrgDatabase) -> None:
        """A grant at 23:30 at UTC-2 on D is after D in UTC; one at 00:30 at UTC+2 on D+1 is on
        D (PostgreSQL timestamptz; SQLite text with offsets; MariaDB, whose DATETIME holds no
        offset, gets the same instants written in UTC)."""
        minus_two, plus_two = timezone_offset(-2), timezone_offset(2)
        rows = [
            (1, PURPOSE, datetime.combine(D, time(23, 30), tzinfo=minus_two), None),
            (
                2,
                PURPOSE,
                datetime.combine(D + timedelta(days=1), time(0, 30), tzinfo=plus_two),
                None,
            ),
        ]
        load_customers(
            org_database.engine,
            [{"customer_id": n, "synced_to_mailchimp": True} for n in (1, 2)],
        )
        when: TypeEngine[Any] = String(40) if org_database.kind == "sqlite" else DateTime(True)
        if org_database.kind == "sqlite":
            rows = [(s, p, g.isoformat(), w) for s, p, g, w in rows]
        elif org_database.kind == "mariadb":
            when = DateTime()
            rows = [(s, p, g.astimezone(UTC).replace(tzinfo=None), w) for s, p, g, w in rows]
        load_consents(org_database.engine, rows, when=when)

        with consent_for(org_database.url) as bound:
            assert {"pushdown": (2, 1, 0), "merge": (2, 1, 0)} == both_paths(bound)
            assert ["1"] == list(gaps(bound, D))


def timezone_offset(hours: int) -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=hours))


@pytest.mark.postgres
@pytest.mark.mariadb
@pytest.mark.postgres
class TestKeyRanges:
    """On PostgreSQL the pushdown cuts the shared keys into ranges that its parallel workers
    count side by side, where the ranges can be read in key order."""

    def cuts(self, bound: BoundConsent, workers: int) -> list[Any]:
        with bound.shared.source.connect() as connection:
            connection.exec_driver_sql(f"SET LOCAL max_parallel_workers_per_gather = {workers}")
            return key_cuts(connection, bound.shared, bound.consents, bound.kind)

    def test_analysed_indexed_keys_are_cut_into_a_range_per_process(
        self, postgres_schema_url: str
    ) -> None:
        """With both key columns indexed and analysed, and two workers, the 11 keys are cut
        into three ranges of about a third of the rows each; the counts are the same."""
        engine = create_engine(postgres_schema_url)
        load_customers(engine, CUSTOMERS)
        load_consents(engine, CONSENTS)
        analyse(engine)

        with consent_for(postgres_schema_url) as bound:
            cuts = self.cuts(bound, workers=2)
            found = both_paths(bound)
        engine.dispose()

        low, high = cuts
        sizes = [
            sum(1 for row in CUSTOMERS if row["customer_id"] < low),
            sum(1 for row in CUSTOMERS if low <= row["customer_id"] < high),
            sum(1 for row in CUSTOMERS if high <= row["customer_id"]),
        ]
        assert all(3 <= size <= 5 for size in sizes), (cuts, sizes)
        assert {"pushdown": EXPECTED, "merge": EXPECTED} == found

    def test_no_ranges_without_statistics_workers_or_an_index(
        self, postgres_schema_url: str
    ) -> None:
        """No cuts before the tables are analysed, without parallel workers, or when the
        consents' subject leads no index (each range would read the whole table); the
        counts are the same."""
        engine = create_engine(postgres_schema_url)
        load_customers(engine, CUSTOMERS)
        load_consents(engine, CONSENTS)

        with consent_for(postgres_schema_url) as bound:
            unanalysed = self.cuts(bound, workers=2)
            analyse(engine)
            no_workers = self.cuts(bound, workers=0)
            with engine.begin() as connection:
                connection.execute(text("DROP INDEX ix_consents_customer_id"))
            unindexed = self.cuts(bound, workers=2)
            found = both_paths(bound)
        engine.dispose()

        assert ([], [], []) == (unanalysed, no_workers, unindexed)
        assert {"pushdown": EXPECTED, "merge": EXPECTED} == found

    def test_text_keys_of_a_declared_collation_are_cut_in_its_order(
        self, postgres_schema_url: str
    ) -> None:
        """Text keys of one declared collation ("C", where `B` sorts before `a`) are cut in
        that collation's order, and counted as the definition says."""
        keys = [f"{letter}{n}" for letter in "aBcD" for n in range(5)]
        engine = create_engine(postgres_schema_url)
        load_customers(
            engine,
            [{"customer_id": key, "synced_to_mailchimp": True} for key in keys],
            key=String(10, collation="C"),
        )
        rows = [(key, PURPOSE, at(-5), None if n % 2 else at(-1)) for n, key in enumerate(keys)]
        load_consents(engine, rows, key=String(10, collation="C"))
        analyse(engine)

        with consent_for(postgres_schema_url) as bound:
            cuts = self.cuts(bound, workers=2)
            found = both_paths(bound)
        engine.dispose()

        assert (2, sorted(cuts)) == (len(cuts), cuts)  # Python sorts by code point, as "C"
        assert {"pushdown": (20, 10, 10), "merge": (20, 10, 10)} == found

    @pytest.mark.parametrize(
        ("key", "subject", "cut"),
        [
            (Integer(), BigInteger(), True),
            (String(10), String(10), True),
            (String(10, collation="C"), String(10), False),
            (CHAR(10), String(10), False),
            (Integer(), String(10), False),
        ],
        ids=["integers", "text", "two-collations", "char", "integer-and-text"],
    )
    def test_only_keys_compared_as_they_are_are_cut(
        self, postgres_schema_url: str, key: TypeEngine[Any], subject: TypeEngine[Any], cut: bool
    ) -> None:
        """Integers, and text of one collation, are cut into ranges; not keys compared as
        canonical text (two collations, integers against text), nor a CHAR key, which text
        compares without its trailing spaces."""
        engine = create_engine(postgres_schema_url)
        load_customers(engine, [{"customer_id": 1, "synced_to_mailchimp": True}], key=key)
        load_consents(engine, [(1, PURPOSE, at(-5), None)], key=subject)
        engine.dispose()

        with consent_for(postgres_schema_url) as bound:
            assert cut == CoverageQuery(bound, D).splittable


def analyse(engine: Engine) -> None:
    """Gather the planner's statistics of the two tables (PostgreSQL)."""
    with engine.connect() as connection:
        connection.execute(text("ANALYZE customers, consents"))
        connection.commit()


class TestAcrossDatabases:
    def test_subjects_in_mariadb_and_consents_in_postgresql_are_merged(
        self, mariadb_database_url: str, postgres_schema_url: str
    ) -> None:
        """Customers in MariaDB, consents in PostgreSQL: the merge path gives the same counts
        and gaps as one database would."""
        crm, ledger = create_engine(mariadb_database_url), create_engine(postgres_schema_url)
        load_customers(crm, CUSTOMERS)
        load_consents(ledger, CONSENTS)

        with consent_for(mariadb_database_url, postgres_schema_url) as bound:
            result = coverage(bound, D, chunk_size=2)
            listed = list(gaps(bound, D, chunk_size=2))
            with pytest.raises(ValueError, match="one data source"):
                coverage(bound, D, merge=False)

        assert (EXPECTED, "merge") == (counts(result), result.path)
        assert EXPECTED_GAPS == listed
        crm.dispose()
        ledger.dispose()

    def test_integer_keys_against_text_subjects_compare_as_text(
        self, mariadb_database_url: str, postgres_schema_url: str
    ) -> None:
        """INT customer ids against VARCHAR subjects: 9 and 10 merge in one order on both
        servers, `10` matches 10, `09` does not match 9, `ABC` does not match `abc`."""
        crm, ledger = create_engine(mariadb_database_url), create_engine(postgres_schema_url)
        load_customers(
            crm, [{"customer_id": n, "synced_to_mailchimp": True} for n in (9, 10, 99, 100)]
        )
        rows = [(s, PURPOSE, at(-1), None) for s in ("10", "09", "100", "1000", "abc")]
        load_consents(ledger, rows, key=String(10))

        with consent_for(mariadb_database_url, postgres_schema_url) as bound:
            result = coverage(bound, D, chunk_size=1)
            listed = list(gaps(bound, D, chunk_size=1))

        assert ((4, 2, 0), "text") == (counts(result), bound.kind)
        assert ["9", "99"] == listed
        crm.dispose()
        ledger.dispose()


class TestErrors:
    def test_a_misconfigured_table_and_column_are_issues_naming_the_setting(
        self, org_database: OrgDatabase
    ) -> None:
        """An unknown column of the shared table and an unknown consents table are reported
        together, by key path and line, before anything is counted."""
        load_customers(org_database.engine, CUSTOMERS)
        load_consents(org_database.engine, CONSENTS)
        text = config_text(shared={"key": "cust_id"}, consents={"table": "consent"})
        found = consent_settings(parse_yaml(text, "auditor.yaml"))

        with DataSources(found.data_sources, {"CRM_URL": org_database.url}) as sources:
            issues = check_consent(found.consent, sources)
            with pytest.raises(InvalidInputError):
                bind_consent(found.consent["mailchimp"], sources)

        assert [
            (
                "auditor.yaml:12: consent.mailchimp.shared.key: column 'cust_id' not in table "
                "customers (columns: customer_id, synced_to_mailchimp)"
            ),
            (
                "auditor.yaml:17: consent.mailchimp.consents.table: table 'consent' not found in "
                "data source 'crm' (tables: consents, customers)"
            ),
        ] == [str(issue) for issue in issues]

    def test_a_data_source_that_is_down_is_a_data_source_error(self, tmp_path: Path) -> None:
        """Consents on a server that does not answer: a DataSourceError naming that source, no
        password, from the schema check and from binding."""
        crm = f"sqlite:///{tmp_path / 'crm.db'}"
        engine = create_engine(crm)
        load_customers(engine, CUSTOMERS)
        engine.dispose()
        ledger = f"postgresql://auditor:hunter2@127.0.0.1:{free_port()}/ledger"
        text = config_text("ledger")
        found = consent_settings(parse_yaml(text, "auditor.yaml"))
        environ = {"CRM_URL": crm, "LEDGER_URL": ledger}

        with DataSources(found.data_sources, environ, connect_timeout=3) as sources:
            with pytest.raises(DataSourceError) as raised:
                check_consent(found.consent, sources)
            with pytest.raises(DataSourceError):
                bind_consent(found.consent["mailchimp"], sources)

        assert "ledger" == raised.value.source
        assert "hunter2" not in str(raised.value)
        assert "cannot connect to postgresql+psycopg://auditor:***@127.0.0.1" in str(raised.value)

    def test_streams_out_of_order_stop_the_merge(self) -> None:
        """Keys that arrive unsorted (databases disagreeing on order) stop the merge instead of
        miscounting, naming which side."""
        shared = iter([[1, 3, 2]])
        consents = iter([([1], [1])])
        unsorted_consents = iter([([2, 1], [1, 1])])

        with pytest.raises(_OutOfOrder) as left:
            list(_pieces(shared, iter([([1], [1])])))
        with pytest.raises(_OutOfOrder) as right:
            list(_pieces(iter([[1, 2, 3]]), unsorted_consents))

        assert ("shared", "consent") == (left.value.side, right.value.side)
        assert [([1], [1])] == list(_pieces(iter([[1]]), consents))

    def test_an_abandoned_gaps_iterator_gives_its_connections_back(self, tmp_path: Path) -> None:
        """Closing `gaps` after one key returns both connections to their pools."""
        url = f"sqlite:///{tmp_path / 'crm.db'}"
        engine = create_engine(url)
        load_customers(engine, CUSTOMERS)
        load_consents(engine, CONSENTS)

        with consent_for(url) as bound:
            with closing(gaps(bound, D, merge=True, chunk_size=1)) as keys:
                first = next(keys)
                busy = bound.shared.source.engine.pool.checkedout()  # type: ignore[attr-defined]
            idle = bound.shared.source.engine.pool.checkedout()  # type: ignore[attr-defined]

        engine.dispose()
        assert ("2", 2, 0) == (first, busy, idle)


# --- the property: both paths agree with each other and with a model ----------------------------


@dataclass(frozen=True)
class Variant:
    """Key column types of the shared table and of the consents, and whether keys repeat."""

    name: str
    shared_key: Any
    subject_key: Any
    unique: bool
    shared_keys: st.SearchStrategy[Any]
    subjects: st.SearchStrategy[Any]

    def same(self, key: Any, subject: Any) -> bool:
        return str(key) == str(subject) if self.name == "mixed" else key == subject

    def order(self, keys: set[Any]) -> list[str]:
        ordered = sorted(keys) if self.name != "mixed" else sorted(keys, key=str)
        return [str(key) for key in ordered]


INTEGERS = st.integers(min_value=-3, max_value=120)
TEXTS = st.text(alphabet="aAb 9é", max_size=3)
VARIANTS = [
    Variant("integer", Integer(), Integer(), True, INTEGERS, INTEGERS),
    Variant("text", String(10), String(10), False, TEXTS, TEXTS),
    Variant(
        "mixed",
        Integer(),
        String(10),
        True,
        INTEGERS,
        st.one_of(INTEGERS.map(str), INTEGERS.map(lambda n: f"0{n}"), st.just("9 ")),
    ),
]
MINUTE = timedelta(minutes=1)
START = datetime.combine(D, time(), tzinfo=UTC)  # D's first instant; D+1 starts 1440 minutes on


@st.composite
def worlds(draw: st.DrawFn, variant: Variant, nulls: bool = False) -> tuple[list[Any], list[Any]]:
    """Shared rows (key, synced) and consents (subject, purpose, start, gone); with `nulls`,
    NULL subjects, and NULL keys where the shared key is not unique."""
    shared_keys = variant.shared_keys
    subjects = variant.subjects
    if nulls:
        subjects = st.one_of(subjects, st.none())
        shared_keys = shared_keys if variant.unique else st.one_of(shared_keys, st.none())
    shared = draw(
        st.lists(
            st.tuples(shared_keys, st.booleans()),
            max_size=25,
            unique_by=(lambda row: row[0]) if variant.unique else None,
        )
    )
    # Minutes from D's first instant: D+1 starts at 1440; the instants around both midnights
    # are drawn often, since that is where an off-by-one would hide.
    edges = st.sampled_from([-1, 0, 1, 1439, 1440, 1441])
    minutes = st.one_of(edges, st.integers(min_value=-2 * 1440, max_value=3 * 1440))
    consents = draw(
        st.lists(
            st.tuples(
                st.one_of(subjects, st.sampled_from([key for key, _ in shared] or [0])),
                st.sampled_from([PURPOSE, PURPOSE, "other"]),
                minutes,
                st.one_of(st.none(), minutes),
            ),
            max_size=40,
        )
    )
    return shared, consents


def model(
    variant: Variant, shared: list[Any], consents: list[Any]
) -> tuple[tuple[int, int, int], list[str], list[str]]:
    """The definition, in Python: valid = right purpose, granted before D+1 starts, not
    withdrawn before D+1 starts; withdrawn = missing, with a grant before D+1 withdrawn then."""
    keys = {key for key, synced in shared if synced and key is not None}
    missing, withdrawn = set(), set()
    for key in keys:
        granted = [
            gone
            for subject, purpose, start, gone in consents
            if subject is not None
            and variant.same(key, subject)
            and purpose == PURPOSE
            and start < 1440
        ]
        if not any(gone is None or gone >= 1440 for gone in granted):
            missing.add(key)
            if granted:
                withdrawn.add(key)
    return (
        (len(keys), len(missing), len(withdrawn)),
        variant.order(missing),
        variant.order(withdrawn),
    )


def timed(consents: list[Any]) -> list[tuple[Any, str, datetime, datetime | None]]:
    """Drawn consents (subject, purpose, start, gone, in minutes from START) with their times."""
    return [
        (subject, purpose, START + start * MINUTE, None if gone is None else START + gone * MINUTE)
        for subject, purpose, start, gone in consents
    ]


def refill(
    engine: Engine,
    customers: Table,
    consents: Table,
    shared: list[Any],
    rows: Sequence[tuple[Any, str, datetime, datetime | None]],
) -> None:
    """Replace the rows of the two tables: shared subjects as (key, synced), consents as
    (subject, purpose, granted_at, withdrawn_at)."""
    with engine.begin() as connection:
        connection.execute(customers.delete())
        connection.execute(consents.delete())
        if shared:
            connection.execute(
                insert(customers),
                [{"customer_id": k, "synced_to_mailchimp": s} for k, s in shared],
            )
        if rows:
            connection.execute(
                insert(consents),
                [
                    {"customer_id": s, "purpose": p, "granted_at": g, "withdrawn_at": w}
                    for s, p, g, w in rows
                ],
            )


def variant_database(directory: Path, variant: Variant) -> tuple[str, Engine, Table, Table]:
    """A SQLite file in `directory` with the shared and consent tables of the key variant: its
    URL, an engine, the two tables."""
    url = f"sqlite:///{directory / 'org.db'}"
    engine = create_engine(url)
    customers, consents = variant_tables(engine, variant)
    return url, engine, customers, consents


def variant_tables(
    engine: Engine, variant: Variant, *, nullable: bool = False
) -> tuple[Table, Table]:
    """The shared and consent tables of the key variant, created in `engine`'s database (with
    `nullable`, the consents' subject column takes NULL)."""
    metadata = MetaData()
    customers = customers_table(metadata, variant.shared_key, unique=variant.unique)
    consents = consents_table(metadata, key=variant.subject_key, nullable=nullable)
    metadata.create_all(engine)
    return customers, consents


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_merge_and_pushdown_always_agree(variant: Variant, org_database: OrgDatabase) -> None:
    """For any shared subjects and consents (integer, text and mixed keys; repeated subjects;
    NULL keys and subjects; grants and withdrawals around D's midnight), the pushdown and the
    merge give the counts and gaps of the definition, on SQLite, PostgreSQL and MariaDB (whose
    default collation would match `a` to `A` and `a ` to `a`). On PostgreSQL the tables are
    analysed, so that the pushdown divides the keys into ranges where it can. The one-pass
    statement (the pushdown's on PostgreSQL) gives the same counts on every database, and
    wherever the keys are integers, cut into key ranges at any points."""
    customers, consents = variant_tables(org_database.engine, variant, nullable=True)
    found = consent_settings(parse_yaml(config_text(), "auditor.yaml"))

    @settings(max_examples=60 if org_database.kind == "sqlite" else 30, deadline=None)
    @given(data=worlds(variant, nulls=True), more=st.data())
    def check(data: tuple[list[Any], list[Any]], more: st.DataObject) -> None:
        shared, drawn = data
        refill(org_database.engine, customers, consents, shared, timed(drawn))
        if org_database.kind == "postgresql":
            analyse(org_database.engine)
        expected, missing, withdrawn = model(variant, shared, drawn)

        pushdown = counts(coverage(bound, D))
        merged = counts(coverage(bound, D, merge=True, chunk_size=4))
        gaps_pushdown = list(gaps(bound, D, chunk_size=3))
        gaps_merged = list(gaps(bound, D, merge=True, chunk_size=5))
        gone_merged = list(gaps(bound, D, merge=True, withdrawn_only=True, chunk_size=2))

        assert (expected, expected) == (pushdown, merged)
        assert (missing, missing) == (gaps_pushdown, gaps_merged)
        assert withdrawn == gone_merged
        # The one-pass statement on every database (the pushdown's on PostgreSQL), and wherever
        # the keys are integers, cut into key ranges at any points.
        query = CoverageQuery(bound, D)
        statements = [query.one_pass()]
        if variant.name == "integer":
            # Cuts on the keys themselves too, where an off-by-one would count a key twice.
            keys = [key for key, _ in shared if key is not None]
            cut = st.one_of(INTEGERS, st.sampled_from(keys)) if keys else INTEGERS
            statements.append(
                query.one_pass(more.draw(st.lists(cut, max_size=4, unique=True).map(sorted)))
            )
        with bound.shared.source.connect() as connection:
            for statement in statements:
                assert expected == tuple(int(n) for n in connection.execute(statement).one())

    with DataSources(found.data_sources, {"CRM_URL": org_database.url}) as sources:
        bound = bind_consent(found.consent["mailchimp"], sources)
        check()


@pytest.mark.parametrize(
    "shared",
    [["", " "], [" ", ""], ["abc", "ABC"], ["ABC", "abc"]],
    ids=["blank", "space", "lower", "upper"],
)
def test_keys_one_collation_takes_for_equal_are_each_asked_for(
    shared: list[str], org_database: OrgDatabase
) -> None:
    """Shared keys equal under the column's collation (`''` and `' '` under PAD SPACE, `abc`
    and `ABC` ignoring case) but not as keys, with a consent for the first only: the second is
    missing, in either order. MariaDB's subquery cache, which keys a correlated subquery's
    answer by the outer value under its collation, answered the second with the first's."""
    variant = next(v for v in VARIANTS if v.name == "text")
    customers, consents = variant_tables(org_database.engine, variant, nullable=True)
    found = consent_settings(parse_yaml(config_text(), "auditor.yaml"))
    rows, drawn = [(key, True) for key in shared], [(shared[0], PURPOSE, -1, None)]
    refill(org_database.engine, customers, consents, rows, timed(drawn))

    with DataSources(found.data_sources, {"CRM_URL": org_database.url}) as sources:
        bound = bind_consent(found.consent["mailchimp"], sources)
        got = counts(coverage(bound, D)), counts(coverage(bound, D, merge=True))
        listed = list(gaps(bound, D)), list(gaps(bound, D, merge=True))

    assert ((2, 1, 0), (2, 1, 0)) == got
    assert ([shared[1]], [shared[1]]) == listed
