"""`gdpr-auditor retention plan|enforce` end to end on SQLite: output, evidence, exit statuses."""

from __future__ import annotations

import json
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    insert,
    select,
)

from auditor.cli import cli
from auditor.core.chain import EvidenceRecord, verify
from auditor.retention import BatchIntent
from auditor.store import StateStore
from auditor.store.evidence import records
from tests.helpers import write_config

# Relative to the real clock: the command line reads it.
OLD = datetime.now(UTC) - timedelta(days=800)
NEW = datetime.now(UTC) - timedelta(days=10)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def people(metadata: MetaData) -> Table:
    return Table(
        "people",
        metadata,
        Column("person_id", Integer, primary_key=True, autoincrement=False),
        Column("email", String(100)),
        Column("seen_at", DateTime, nullable=False),
        Column("hold", Boolean, nullable=False),
    )


@pytest.fixture(name="workdir")
def _workdir(tmp_path: Path) -> Path:
    """A configuration, a retention file and an organisation database of 10 people: 1-4 old
    (3 on hold), 5-10 recent."""
    engine = create_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    metadata = MetaData()
    table = people(metadata)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(table),
            [
                {
                    "person_id": n,
                    "email": f"p{n}@example.org",
                    "seen_at": (OLD if n <= 4 else NEW).replace(tzinfo=None),
                    "hold": n == 3,
                }
                for n in range(1, 11)
            ],
        )
    engine.dispose()
    write_policies(tmp_path)
    write_config(
        tmp_path,
        database={"url": "sqlite:///state.db"},
        data_sources={"crm": {"url": "sqlite:///crm.db", "read_only": False}},
        retention=["retention/"],
    )
    return tmp_path


def write_policies(workdir: Path, **overrides: Any) -> None:
    policy: dict[str, Any] = {
        "id": "people-2y",
        "source": "crm",
        "table": "people",
        "key": "person_id",
        "timestamp": "seen_at",
        "keep_for": "P2Y",
        "legal_hold": {"column": "hold"},
        "action": "delete",
        "batch_size": 2,
        "max_share": 0.5,
    }
    policy.update(overrides)
    folder = workdir / "retention"
    folder.mkdir(exist_ok=True)
    (folder / "crm.yaml").write_text(yaml.safe_dump({"policies": [policy]}, sort_keys=False))


def remaining(workdir: Path) -> list[int]:
    engine = create_engine(f"sqlite:///{workdir / 'crm.db'}")
    table = people(MetaData())
    with engine.connect() as connection:
        found = list(connection.execute(select(table.c.person_id).order_by(table.c.person_id)))
    engine.dispose()
    return [row[0] for row in found]


def evidence_chain(workdir: Path) -> list[EvidenceRecord]:
    """The evidence records in the work directory's state database, in chain order."""
    url = f"sqlite:///{workdir / 'state.db'}"
    with closing(StateStore.open(url)) as store, store.engine.connect() as connection:
        return list(records(connection))


def config(workdir: Path) -> str:
    return str(workdir / "auditor.yaml")


def test_plan_prints_the_counts_as_json_and_changes_nothing(workdir: Path) -> None:
    """`plan --format json` gives overdue, held and to-process counts and the deadline."""
    result = run("retention", "plan", "--config", config(workdir), "--format", "json")

    assert 0 == result.exit_code, result.output
    doc = json.loads(result.output)
    plan = doc["policies"][0]
    assert {
        "policy": "people-2y",
        "action": "delete",
        "table_rows": 10,
        "overdue": 4,
        "held": 1,
        "eligible": 3,
        "to_process": 3,
        "share_exceeded": False,
    }.items() <= plan.items()
    assert plan["deadline"] < doc["planned_at"]
    assert 799 <= plan["oldest_age_days"] <= 801
    assert list(range(1, 11)) == remaining(workdir)


def test_plan_prints_a_table_for_people(workdir: Path) -> None:
    """The table names each policy with its counts and the oldest record's age in days."""
    result = run("retention", "plan", "--config", config(workdir))

    assert 0 == result.exit_code, result.output
    header, row = result.output.splitlines()
    assert header.split() == [
        "POLICY",
        "ACTION",
        "DEADLINE",
        "OVERDUE",
        "HELD",
        "TO",
        "PROCESS",
        "SHARE",
        "OLDEST",
    ]
    assert row.split()[:2] == ["people-2y", "delete"]
    assert row.split()[3:8] == ["4", "1", "3", "30.0%", "800"]


def test_enforce_deletes_in_batches_recorded_as_evidence(workdir: Path) -> None:
    """`enforce` deletes the overdue records not on hold and records each batch in the chain."""
    result = run("retention", "enforce", "--config", config(workdir), "--format", "json")

    assert 0 == result.exit_code, result.output
    done = json.loads(result.output)["policies"][0]
    assert (3, 2, "done", 0, 1) == (
        done["processed"],
        done["batches"],
        done["outcome"],
        done["after"]["eligible"],
        done["after"]["held"],
    )
    assert [3, *range(5, 11)] == remaining(workdir)
    chain = evidence_chain(workdir)
    assert ["retention-batch", "retention-batch", "retention-run"] == [r.kind for r in chain]
    assert verify(chain).ok


def test_enforce_prints_a_table_for_people(workdir: Path) -> None:
    """The table says what each policy did and what is still overdue."""
    result = run("retention", "enforce", "--config", config(workdir), "--max-rows", "2")

    assert 0 == result.exit_code, result.output
    assert ["people-2y", "delete", "limit-reached", "2", "1", "1", "1"] == (
        result.output.splitlines()[1].split()
    )


def test_too_large_a_share_exits_2_and_changes_nothing_unless_allowed(workdir: Path) -> None:
    """More than max_share: exit 2, a message saying what to check, nothing deleted."""
    write_policies(workdir, max_share=0.2)

    refused = run("retention", "enforce", "--config", config(workdir))
    allowed = run("retention", "enforce", "--config", config(workdir), "--allow-large-share")

    assert 2 == refused.exit_code
    assert "refused, nothing was changed" in refused.output
    assert "more than its max_share of 20.0%" in refused.output
    assert 0 == allowed.exit_code, allowed.output
    assert [3, *range(5, 11)] == remaining(workdir)


def test_a_misconfigured_column_exits_2_naming_file_policy_key_and_line(workdir: Path) -> None:
    """A timestamp column the table does not have is reported where it is written."""
    write_policies(workdir, timestamp="last_seen")

    result = run("retention", "plan", "--config", config(workdir))

    assert 2 == result.exit_code
    assert (
        "retention/crm.yaml:6: policy 'people-2y': timestamp: column 'last_seen' not in table "
        "people (columns: email, hold, person_id, seen_at)"
    ) in result.output


def test_an_unknown_policy_id_is_bad_usage(workdir: Path) -> None:
    """`--policy` must name a configured policy."""
    result = run("retention", "plan", "--config", config(workdir), "--policy", "nope")

    assert 2 == result.exit_code
    assert "no retention policy 'nope' (policies: people-2y)" in result.output


def test_an_unreachable_data_source_exits_3(workdir: Path) -> None:
    """A data source that cannot be opened means retention could not run at all."""
    (workdir / "crm.db").unlink()
    doc = yaml.safe_load((workdir / "auditor.yaml").read_text())
    doc["data_sources"]["crm"] = {"url": "sqlite:///missing/crm.db"}
    (workdir / "auditor.yaml").write_text(yaml.safe_dump(doc))

    result = run("retention", "plan", "--config", config(workdir))

    assert 3 == result.exit_code
    assert "data source 'crm'" in result.output


def test_a_keyed_hash_needs_the_secret_from_the_environment(workdir: Path) -> None:
    """Anonymising with a hash refuses without GDPR_AUDITOR_ANONYMISE_KEY, and works with it."""
    write_policies(workdir, action="anonymise", anonymise={"email": {"hash": True}})
    secret = {"GDPR_AUDITOR_ANONYMISE_KEY": "0123456789abcdef0123"}

    refused = run("retention", "enforce", "--config", config(workdir), env={})
    short = run(
        "retention",
        "enforce",
        "--config",
        config(workdir),
        env={**secret, "GDPR_AUDITOR_ANONYMISE_KEY": "short"},
    )
    done = run("retention", "enforce", "--config", config(workdir), "--format", "json", env=secret)

    assert 2 == refused.exit_code and "GDPR_AUDITOR_ANONYMISE_KEY" in refused.output
    assert 2 == short.exit_code and "shorter than 16 bytes" in short.output
    assert 0 == done.exit_code, done.output
    assert 3 == json.loads(done.output)["policies"][0]["processed"]
    assert list(range(1, 11)) == remaining(workdir)


def test_a_configuration_without_retention_files_is_invalid(workdir: Path) -> None:
    """The configuration must name retention files for the retention verbs."""
    doc = yaml.safe_load((workdir / "auditor.yaml").read_text())
    del doc["retention"]
    (workdir / "auditor.yaml").write_text(yaml.safe_dump(doc))

    result = run("retention", "plan", "--config", config(workdir))

    assert 2 == result.exit_code
    assert "no retention policies: add retention:" in result.output


def test_validate_reports_retention_policies_naming_unknown_sources(tmp_path: Path) -> None:
    """`validate` loads the retention files and names a policy whose data source is unknown."""
    from click.testing import CliRunner

    from auditor.cli import cli

    (tmp_path / "inventory.yaml").write_text("integrations: []\n")
    policy = {"id": "old-orders", "source": "warehouse", "table": "orders", "key": "id",
              "timestamp": "placed_at", "keep_for": "P1Y"}  # fmt: skip
    (tmp_path / "retention.yaml").write_text(yaml.safe_dump({"policies": [policy]}))
    (tmp_path / "auditor.yaml").write_text(
        "inventory: [inventory.yaml]\nretention: retention.yaml\n"
    )

    result = CliRunner().invoke(cli, ["validate", "--config", str(tmp_path / "auditor.yaml")])

    assert 2 == result.exit_code
    assert "old-orders" in result.stderr
    assert "warehouse" in result.stderr


@pytest.mark.parametrize("verb", ["plan", "enforce"])
def test_a_keep_for_beyond_the_calendar_exits_2_naming_file_policy_and_key(
    workdir: Path, verb: str
) -> None:
    """keep_for: P3000Y is a valid duration whose deadline would be before the year 1: the verbs
    say so with the file, the policy and the key, exit 2, and change nothing."""
    write_policies(workdir, keep_for="P3000Y")

    result = run("retention", verb, "--config", config(workdir))

    assert 2 == result.exit_code, result.output
    assert "crm.yaml" in result.output
    assert "people-2y" in result.output and "keep_for" in result.output
    assert "Traceback" not in result.output
    assert list(range(1, 11)) == remaining(workdir)


def test_plan_reconciles_a_batch_left_unsettled_and_records_it(workdir: Path) -> None:
    """A batch whose intent was committed and whose records were deleted, but whose process died
    before its evidence: `retention plan` finds what it did and records it, once."""
    store = StateStore.open(f"sqlite:///{workdir / 'state.db'}")
    try:
        store.begin_retention_batch(
            BatchIntent(
                policy="people-2y",
                run="0" * 32,
                batch=0,
                action="delete",
                source="crm",
                table="people",
                deadline=OLD,
                key_range="sha256:" + "0" * 64,
                key_range_keyed=False,
                keys=(1, 2),
                created_at=NEW,
            )
        )
    finally:
        store.close()
    engine = create_engine(f"sqlite:///{workdir / 'crm.db'}")
    table = people(MetaData())
    with engine.begin() as connection:
        connection.execute(delete(table).where(table.c.person_id.in_([1, 2])))
    engine.dispose()

    first = run("retention", "plan", "--config", config(workdir), "--format", "json")
    again = run("retention", "plan", "--config", config(workdir), "--format", "json")

    assert 0 == first.exit_code, first.output
    reconciled = {"batches": 1, "rows": 2, "undetermined": 0}
    assert reconciled == json.loads(first.stdout)["policies"][0]["reconciled"]
    nothing = {"batches": 0, "rows": 0, "undetermined": 0}
    assert nothing == json.loads(again.stdout)["policies"][0]["reconciled"]
    chain = evidence_chain(workdir)
    assert [("retention-batch", 2, True)] == [
        (r.kind, r.data()["rows"], r.data()["reconciled"]) for r in chain
    ]
    assert verify(chain).ok
