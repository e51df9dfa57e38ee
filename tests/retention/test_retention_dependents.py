"""A retention policy's dependents: errors naming file, line, policy and key when reading and
binding them; deletion with the records on SQLite, shared rows kept while anything points at
them; and, on PostgreSQL, a record put on hold while its batch runs keeps its dependents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, event

from auditor.core.errors import InvalidInputError
from auditor.core.yamlsource import parse_yaml
from auditor.retention import bind_policy, enforce_policy, parse_retention, plan_policy
from auditor.sources.datasources import DataSources
from auditor.store import StateStore
from tests.retention.crm_harness import ELIGIBLE, HELD, NOW, OVERDUE, World, comparable, parsed
from tests.retention.test_retention import SECRET, evidence_of, source_settings

POLICY = """\
policies:
  - id: people
    source: crm
    table: people
    key: id
    timestamp: seen_at
    keep_for: P2Y
    action: delete
    max_share: 1.0
    batch_size: 3
    legal_hold: {table: gdpr_legal_holds, key: record_id}
    dependents:
      - table: person_emails
        key: person_id
        filter: {kind: personal}
        shared:
          table: addresses
          key: address_id
          column: address_id
          referenced_by:
            - {table: sent_mail, key: address_id, filter: {archived: 0}}
"""


def clock() -> Any:
    return NOW


def schema(metadata: MetaData) -> None:
    Table("people", metadata, Column("id", Integer, primary_key=True, autoincrement=False),
          Column("name", String(80)), Column("seen_at", DateTime))  # fmt: skip
    Table("person_emails", metadata, Column("row_id", Integer, primary_key=True),
          Column("person_id", Integer, index=True), Column("kind", String(20)),
          Column("address_id", Integer, index=True))  # fmt: skip
    Table("addresses", metadata, Column("address_id", Integer, primary_key=True,
          autoincrement=False), Column("address", String(120)))  # fmt: skip
    Table("sent_mail", metadata, Column("mail_id", Integer, primary_key=True),
          Column("address_id", Integer), Column("archived", Integer, nullable=False))  # fmt: skip


def issues_of(text: str) -> list[str]:
    found, issues = parse_retention(parse_yaml(text, "retention.yaml"))
    assert not found
    return [str(issue) for issue in issues]


class TestReading:
    def test_dependents_are_read_with_their_shared_rows_and_references(self) -> None:
        policy = parsed(POLICY)
        dependent = policy.dependents[0]

        assert ("person_emails", "person_id") == (dependent.selection.table, dependent.key)
        assert dependent.shared is not None
        assert ("addresses", "address_id", "address_id") == (
            dependent.shared.selection.table,
            dependent.shared.key,
            dependent.shared.column,
        )
        assert ["sent_mail"] == [r.selection.table for r in dependent.shared.referenced_by]
        assert 13 == dependent.selection.ref.lines[""]

    def test_a_report_policy_with_dependents_is_an_error_naming_the_line(self) -> None:
        text = POLICY.replace("action: delete", "action: report")

        assert [
            (
                "retention.yaml:2: policy 'people': dependents go with records that are deleted or "
                "anonymised: not with action report"
            )
        ] == issues_of(text)

    @pytest.mark.parametrize(
        ("old", "new", "expected"),
        [
            ("column: address_id", "colum: address_id",
             ("retention.yaml:19: policy 'people': dependents[0].shared.colum: unknown key "
              "(did you mean 'column'?)")),
            ("        key: person_id\n", "",
             "retention.yaml:13: policy 'people': dependents[0].key: required key is missing"),
            ("{kind: personal}", "{kind: []}",
             ("retention.yaml:15: policy 'people': dependents[0].filter: filter on 'kind': an "
             "empty list matches no row")),
        ],
    )  # fmt: skip
    def test_a_bad_dependent_is_an_error_naming_its_key_and_line(
        self, old: str, new: str, expected: str
    ) -> None:
        assert expected in issues_of(POLICY.replace(old, new))


@pytest.fixture(name="people_db")
def _people_db(tmp_path: Any) -> Iterator[tuple[str, MetaData]]:
    url = f"sqlite:///{tmp_path / 'org.db'}"
    metadata = MetaData()
    schema(metadata)
    engine = create_engine(url)
    metadata.create_all(engine)
    yield url, metadata
    engine.dispose()


class TestBinding:
    @pytest.mark.parametrize(
        ("old", "new", "expected"),
        [
            ("table: person_emails", "table: emails",
             "retention.yaml:13: policy 'people': dependents[0].table: table 'emails' not found"),
            ("table: person_emails", "table: people",
             ("retention.yaml:13: policy 'people': dependents[0].table: table 'people' is used "
             "twice here")),
            ("table: addresses", "table: person_emails",
             ("retention.yaml:17: policy 'people': dependents[0].shared.table: table "
             "'person_emails' is used twice here")),
            ("{table: sent_mail, key: address_id, filter: {archived: 0}}",
              "{table: addresses, key: address_id}",
             ("retention.yaml:21: policy 'people': dependents[0].shared.referenced_by[0].table: "
             "table 'addresses' is used twice here")),
            ("column: address_id", "column: kind",
             ("retention.yaml:19: policy 'people': dependents[0].shared.column: column 'kind' of "
             "'person_emails' is VARCHAR(20) and the shared key 'address_id' is INTEGER")),
            ("key: person_id", "key: owner",
             ("retention.yaml:14: policy 'people': dependents[0].key: column 'owner' not in table "
             "person_emails")),
        ],
    )  # fmt: skip
    def test_a_dependent_that_does_not_fit_the_schema_is_named(
        self, people_db: tuple[str, MetaData], old: str, new: str, expected: str
    ) -> None:
        url, metadata = people_db
        engine = create_engine(url)
        World(metadata, parsed(POLICY)).holds_table(metadata).create(engine)
        engine.dispose()
        policy = parsed(POLICY.replace(old, new))

        with DataSources(source_settings(url)) as sources, pytest.raises(InvalidInputError) as e:
            bind_policy(policy, sources)

        assert any(str(issue).startswith(expected) for issue in e.value.issues), e.value.issues


def _enforced(url: str, metadata: MetaData, store: StateStore, hook: Any = None) -> Any:
    world = World(metadata, parsed(POLICY))
    engine = create_engine(url)
    world.holds_table(metadata).create(engine)
    with engine.begin() as connection:
        world.seed(connection)
        before = world.snapshot(connection)
    with DataSources(source_settings(url)) as sources:
        bound = bind_policy(world.policy, sources)
        plan = plan_policy(bound, NOW)
        if hook is not None:
            event.listen(bound.source.engine, "after_cursor_execute", hook)
        done = enforce_policy(bound, clock, store, secret=SECRET)
    with engine.connect() as connection:
        after = world.snapshot(connection)
    engine.dispose()
    return world, before, plan, done, after


def test_dependents_and_unshared_rows_go_with_their_records_on_sqlite(
    people_db: tuple[str, MetaData], tmp_path: Any
) -> None:
    """Exactly the eligible records' own e-mail rows go, and the addresses nothing else points
    at; a decoy row of another kind, an address shared with a recent record and one an archived
    mail points at stay."""
    url, metadata = people_db
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        world, before, plan, done, after = _enforced(url, metadata, store)
        records = [r.data() for r in evidence_of(store) if r.kind == "retention-batch"]
    finally:
        store.close()

    eligible = sorted(ELIGIBLE)
    per_batch = world.deleted_per_batch(before, [eligible[:3], eligible[3:6], eligible[6:]])
    assert (len(OVERDUE), len(HELD), {"person_emails": 11}) == (
        plan.overdue,
        plan.held,
        dict(plan.dependents),
    )
    assert (len(ELIGIBLE), "done") == (done.processed, done.outcome)
    assert world.expected(before, ELIGIBLE) == comparable(world, after, ELIGIBLE)
    assert per_batch == [r["dependents"] for r in records]
    assert {"person_emails": 11, "addresses": 8} == {
        name: sum(batch[name] for batch in per_batch) for name in per_batch[0]
    }


@pytest.mark.postgres
def test_a_record_held_while_its_batch_runs_keeps_its_dependents(
    postgres_schema_url: str, tmp_path: Any
) -> None:
    """A legal hold committed by another session after the batch deleted its records' dependent
    rows: the record no longer matches, so the batch is rolled back and tried again; the held
    record keeps its dependent rows and the others go, exactly as counted."""
    metadata = MetaData()
    schema(metadata)
    engine = create_engine(postgres_schema_url)
    metadata.create_all(engine)
    placed: list[int] = []

    def hold_record_3(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not placed and statement.lstrip().upper().startswith("DELETE FROM PERSON_EMAILS"):
            placed.append(3)
            with engine.begin() as other:
                other.execute(sa.text("INSERT INTO gdpr_legal_holds (record_id) VALUES (3)"))

    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        world, before, _, done, after = _enforced(
            postgres_schema_url, metadata, store, hold_record_3
        )
        records = [r.data() for r in evidence_of(store) if r.kind == "retention-batch"]
    finally:
        store.close()
        engine.dispose()

    processed = sorted(ELIGIBLE - {3})
    assert [3] == placed
    assert (len(processed), "done") == (done.processed, done.outcome)
    assert world.expected(before, processed) == comparable(world, after, processed)
    per_batch = world.deleted_per_batch(before, [[1, 2], [4, 6, 7], [8, 9]])
    assert [2, 3, 2] == [r["rows"] for r in records]
    assert per_batch == [r["dependents"] for r in records]


def test_the_documented_example_is_valid() -> None:
    """The format shown in auditor.retention.dependents reads as it says."""
    from auditor.retention import dependents

    example = (dependents.__doc__ or "").split("```yaml\n")[1].split("```")[0]
    head = "policies:\n  - id: x\n    source: crm\n    table: t\n    key: id\n"
    head += "    timestamp: ts\n    keep_for: P1Y\n    action: delete\n"
    found, issues = parse_retention(parse_yaml(head + example, "x.yaml"))

    assert [] == issues
    assert ["emails_email_addr_rel"] == [
        r.selection.table
        for r in found[0].dependents[0].shared.referenced_by  # type: ignore[union-attr]
    ]
