"""The shipped CRM retention templates against their CRMs' tables, built from the CRMs' own schema
definitions on the engine each runs on (MariaDB for SuiteCRM, EspoCRM and CiviCRM, PostgreSQL
for Odoo): validate --connect accepts each and names a missing column; plan counts, enforcement
and evidence are exact, dependents and shared rows included; a run killed after a batch's commit
is reconciled and finished with the same end state."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import Engine, MetaData, create_engine, text

from auditor.cli import cli
from auditor.core.chain import EvidenceRecord, verify
from auditor.retention import bind_policy, enforce_policy, plan_policy
from auditor.retention.templates import template, template_policies
from auditor.sources.datasources import DataSources
from auditor.store import StateStore
from tests.retention.crm_harness import (
    ELIGIBLE,
    HELD,
    NOW,
    OVERDUE,
    World,
    comparable,
    parsed,
    policy_file,
)
from tests.retention.crm_schemas import ENGINES, SCHEMAS
from tests.retention.test_retention import SECRET, evidence_of, killed_at, source_settings
from tests.retention.test_retention_faults import KILLED_AFTER_COMMIT

POLICIES = [(name, policy.id) for name in SCHEMAS for policy in template_policies(name)]
MARKS = {"mariadb": pytest.mark.mariadb, "postgresql": pytest.mark.postgres}


def clock() -> Any:
    return NOW


def _param(name: str, *rest: str) -> Any:
    return pytest.param(name, *rest, marks=MARKS[ENGINES[name]], id="-".join((name, *rest)))


@dataclass
class CrmDatabase:
    """A fresh database holding a template's tables (and the legal-hold table of these tests)."""

    name: str
    url: str
    engine: Engine
    metadata: MetaData


def _database(request: pytest.FixtureRequest, name: str) -> Iterator[CrmDatabase]:
    fixture = "mariadb_database_url" if ENGINES[name] == "mariadb" else "postgres_schema_url"
    url: str = request.getfixturevalue(fixture)
    # TIMESTAMP columns hold UTC as the auditor's sessions see them.
    args = {"init_command": "SET time_zone = '+00:00'"} if url.startswith("mysql") else {}
    engine = create_engine(url, connect_args=args)
    metadata = MetaData()
    SCHEMAS[name](metadata)
    metadata.create_all(engine)
    yield CrmDatabase(name, url, engine, metadata)
    engine.dispose()


@pytest.fixture(name="crm_db")
def _crm_db(request: pytest.FixtureRequest) -> Iterator[CrmDatabase]:
    yield from _database(request, request.param)


def seeded(db: CrmDatabase, policy_text: str) -> World:
    """Seed the database for the policy in `policy_text`; return its world."""
    world = World(db.metadata, parsed(policy_text))
    world.holds_table(db.metadata).create(db.engine)
    with db.engine.begin() as connection:
        world.seed(connection)
    return world


def snapshot(db: CrmDatabase, world: World) -> dict[str, Any]:
    with db.engine.connect() as connection:
        return world.snapshot(connection)


def batch_records(store: StateStore) -> list[dict[str, Any]]:
    return [r.data() for r in evidence_of(store) if r.kind == "retention-batch"]


@pytest.fixture(name="store")
def _store(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.close()


@pytest.mark.parametrize("crm_db", [_param(name) for name in SCHEMAS], indirect=True)
def test_validate_connect_accepts_the_template_and_names_a_missing_column(
    crm_db: CrmDatabase, tmp_path: Path
) -> None:
    """The printed template, its data source pointed at the CRM's tables, is valid with
    --connect; without a column it names, the problem names the file, line, policy and key."""
    runner = CliRunner()
    printed = runner.invoke(cli, ["retention", "template", crm_db.name], catch_exceptions=False)
    (tmp_path / f"{crm_db.name}.yaml").write_text(printed.stdout)
    (tmp_path / "inventory.yaml").write_text("integrations: []\n")
    config = {
        "inventory": ["inventory.yaml"],
        "data_sources": {"crm": {"url": crm_db.url}},
        "retention": [f"{crm_db.name}.yaml"],
    }
    (tmp_path / "auditor.yaml").write_text(yaml.safe_dump(config))
    arguments = ["validate", "--config", str(tmp_path / "auditor.yaml"), "--connect"]

    valid = runner.invoke(cli, arguments, catch_exceptions=False)
    policy = template_policies(crm_db.name)[0]
    last = len(policy.dependents) - 1  # CiviCRM's first is in a foreign key: it cannot go
    dependent = policy.dependents[last]
    with crm_db.engine.begin() as connection:
        table = crm_db.metadata.tables[dependent.selection.table]
        connection.execute(text(f"ALTER TABLE {table.name} DROP COLUMN {dependent.key}"))
    broken = runner.invoke(cli, arguments, catch_exceptions=False)

    assert (0, "") == (valid.exit_code, valid.stderr), valid.output
    assert 2 == broken.exit_code
    line = dependent.selection.ref.lines["key"]
    expected = (
        f"{crm_db.name}.yaml:{line}: policy {policy.id!r}: dependents[{last}].key: "
        f"column {dependent.key!r} not in table {table.name}"
    )
    assert expected in broken.stderr


@pytest.mark.parametrize(
    ("crm_db", "policy_id"), [_param(name, ident) for name, ident in POLICIES], indirect=["crm_db"]
)
def test_plan_and_enforce_are_exact_with_dependents_and_shared_rows(
    crm_db: CrmDatabase, policy_id: str, store: StateStore
) -> None:
    """Plan counts the overdue, held and eligible records and the dependent rows of the eligible
    ones; enforcement leaves exactly the expected rows in every table the policy names, and its
    batches' evidence counts exactly the records and the dependent and shared rows deleted."""
    text_ = policy_file(crm_db.name, policy_id, batch_size=3)
    world = seeded(crm_db, text_)
    before = snapshot(crm_db, world)
    eligible = sorted(ELIGIBLE)
    batches = [eligible[0:3], eligible[3:6], eligible[6:]]
    per_batch = world.deleted_per_batch(before, batches)
    dependent_tables = {d.selection.table for d in world.policy.dependents}

    with DataSources(source_settings(crm_db.url)) as sources:
        bound = bind_policy(world.policy, sources)
        plan = plan_policy(bound, NOW)
        done = enforce_policy(bound, clock, store, secret=SECRET)
        again = enforce_policy(bound, clock, store, secret=SECRET)
    after = snapshot(crm_db, world)
    records = batch_records(store)

    assert (len(world.numbers), len(OVERDUE), len(HELD), len(ELIGIBLE)) == (
        plan.table_rows,
        plan.overdue,
        plan.held,
        plan.eligible,
    )
    totals = {name: sum(batch.get(name, 0) for batch in per_batch) for name in dependent_tables}
    assert totals == dict(plan.dependents)
    if world.policy.action == "report":
        assert ("report-only", 0, []) == (done.outcome, done.processed, records)
        assert comparable(world, before, []) == comparable(world, after, [])
        return
    assert (len(ELIGIBLE), 3, "done") == (done.processed, done.batches, done.outcome)
    assert (0, "done") == (again.processed, again.outcome)
    assert world.expected(before, ELIGIBLE) == comparable(world, after, ELIGIBLE)
    assert [len(batch) for batch in batches] == [record["rows"] for record in records]
    assert per_batch == [record["dependents"] for record in records]
    assert verify(evidence_of(store)).ok
    assert "of person" not in "".join(r.content for r in evidence_of(store))


@pytest.mark.slow
@pytest.mark.parametrize("crm_db", [_param(name) for name in SCHEMAS], indirect=True)
def test_a_run_killed_after_a_batch_commit_is_reconciled_and_finished_exactly(
    crm_db: CrmDatabase, tmp_path: Path
) -> None:
    """The template's first policy, SIGKILLed after its third batch committed (records and
    dependents) and before its evidence: the next run reconciles that batch and finishes; the
    tables hold exactly what one whole run leaves, the batches' rows add up, and the evidence
    of the confirmed batches counts their dependents exactly."""
    policy_id = template_policies(crm_db.name)[0].id
    text_ = policy_file(crm_db.name, policy_id, batch_size=2)
    (tmp_path / "retention.yaml").write_text(text_)
    world = seeded(crm_db, text_)
    before = snapshot(crm_db, world)
    eligible = sorted(ELIGIBLE)
    batches = [eligible[i : i + 2] for i in range(0, len(eligible), 2)]
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore.open(state_url).close()

    returncode = killed_at(
        "committed", 1, KILLED_AFTER_COMMIT, crm_db.url, str(tmp_path / "retention.yaml"), state_url
    )
    killed = snapshot(crm_db, world)
    store = StateStore.open(state_url)
    try:
        pending = [p.intent.batch for p in store.pending_retention_batches(policy_id)]
        with DataSources(source_settings(crm_db.url)) as sources:
            finished = enforce_policy(bind_policy(world.policy, sources), clock, store,
                                      secret=SECRET)  # fmt: skip
        records = batch_records(store)
        chain: list[EvidenceRecord] = evidence_of(store)
    finally:
        store.close()
    after = snapshot(crm_db, world)

    assert -signal.SIGKILL == returncode
    assert [2] == pending
    first_three = [n for batch in batches[:3] for n in batch]
    assert world.expected(before, first_three) == comparable(world, killed, first_three)
    assert (len(ELIGIBLE) - len(first_three), "done") == (finished.processed, finished.outcome)
    assert world.expected(before, ELIGIBLE) == comparable(world, after, ELIGIBLE)
    per_batch = world.deleted_per_batch(before, batches)
    # Batches 0 and 1 confirmed, 2 reconciled by the next run, whose own batch 0 finishes.
    assert [(0, 2), (1, 2), (2, 2), (0, 2)] == [(r["batch"], r["rows"]) for r in records]
    assert [None, None, True, None] == [r.get("reconciled") for r in records]
    assert [per_batch[0], per_batch[1], None, per_batch[3]] == [r["dependents"] for r in records]
    assert verify(chain).ok
    assert "of person" not in "".join(r.content for r in chain)


def test_every_template_names_its_sources_with_a_version() -> None:
    """Each template's header cites the CRM's repository, a version and the files read."""
    cited = {
        "suitecrm": ("salesagility/SuiteCRM", "v7.14.6", "modules/Leads/vardefs.php"),
        "espocrm": ("espocrm/espocrm", "10.0.0", "entityDefs/Lead.json"),
        "odoo": ("odoo/odoo", "addons/crm/models/crm_lead.py", "res_partner.py"),
        "civicrm": ("civicrm/civicrm-core", "6.14", "schema/Contact/Contact.entityType.php"),
    }
    for name, needles in cited.items():
        header = template(name).text.split("\npolicies:", 1)[0]
        assert all(needle in header for needle in needles), name
        assert "commit" in header and "CHANGE" in header
