"""`evidence verify|head|list` over a state database filled by real audits, then tampered with."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import DBAPIError

from auditor import __version__
from auditor.cli import cli, load_all
from auditor.config import Config, load_config
from auditor.core.chain import EvidenceRecord, link
from auditor.core.model import Integration
from auditor.core.policies import PolicyData
from auditor.service.wiring import build_locator, build_resolver
from auditor.store import EVIDENCE_KEY_VARIABLE, StateStore
from auditor.store.engine import create_store_engine, normalise_url
from auditor.store.evidence import records as stored_records
from auditor.store.schema import evidence as evidence_table
from auditor.transfers.audit import run_audit
from tests.conftest import DnsServerFactory
from tests.helpers import BACKUP_PRACTICE, entry, sample, write_config
from tests.mmdb import build_country_db

KEY = "an-evidence-key-for-the-tests-0123"
OTHER_KEY = "another-key-that-was-never-used-99"

ZONE = """
$ORIGIN .
$TTL 60
api.crm.example.      A  192.0.2.10
mail.vendor.example.  A  198.51.100.10
"""

R1 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
WAIVED_AT = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
R2 = datetime(2026, 2, 10, 10, 0, tzinfo=UTC)
R3 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
RETENTION_AT = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
CONSENT_AT = datetime(2026, 3, 3, 4, 0, tzinfo=UTC)
R4 = datetime(2026, 4, 2, 10, 0, tzinfo=UTC)  # after the first quarter

HOSTILE_NAME = "Mail <script>alert('x')</script> & Co"


def inventory(helpdesk_safeguards: list[str]) -> list[dict[str, object]]:
    """Five integrations: EEA, unlawful US, DPF-certified US, US under SCCs (or not), a cloud."""
    return [
        sample("crm", entry, endpoints=["api.crm.example"], subprocessors=["cloud"]),
        sample(
            "mail",
            entry,
            name=HOSTILE_NAME,
            hosting=["US"],
            endpoints=["mail.vendor.example"],
            backups={"regions": ["aws:us-west-2"], "retention": "P10Y", **BACKUP_PRACTICE},
            data_categories=["contact", "behavioural"],
        ),
        sample("stats", entry, support=["US"]),
        sample("helpdesk", entry, transfer={"safeguards": helpdesk_safeguards}),
        # not DPF-certified: vendor-foreign-jurisdiction
        sample("cloud", entry, category="infrastructure"),
    ]


@dataclass
class Scenario:
    """A config whose state database holds a quarter of real audits, waivers and records."""

    config_path: Path
    state_url: str
    config: Config
    policies: PolicyData
    run_ids: list[int]

    def engine(self) -> Engine:
        return create_store_engine(normalise_url(self.state_url))

    def env(self, key: str | None = KEY) -> dict[str, str | None]:
        return {EVIDENCE_KEY_VARIABLE: key}


def write_inventory(workdir: Path, helpdesk_safeguards: list[str]) -> None:
    document = {"integrations": inventory(helpdesk_safeguards)}
    (workdir / "inventory.yaml").write_text(yaml.safe_dump(document))


def stepping_clock(at: datetime) -> Callable[[], datetime]:
    """A clock that starts at `at` and moves two seconds each time it is read."""
    ticks = itertools.count()
    return lambda: at + timedelta(seconds=2 * next(ticks))


def build_scenario(workdir: Path, nameserver: str, state_url: str) -> Scenario:
    """Record four real audits against the loopback DNS server, a waiver, a failed run, a
    retention batch and a consent check, at fixed times, with the evidence key set."""
    build_country_db(workdir / "country.mmdb", {"192.0.2.0/24": "DE", "198.51.100.0/24": "US"})
    config_path = write_config(
        workdir,
        dns={"nameservers": [nameserver], "timeout": 0.5, "concurrency": 4},
        geoip={"country_db": "country.mmdb"},
        database={"url": state_url},
    )
    write_inventory(workdir, helpdesk_safeguards=[])
    config = load_config(config_path)
    policies, before = load_all(config)
    write_inventory(workdir, helpdesk_safeguards=["scc"])
    _, after = load_all(config)
    resolver = build_resolver(config)
    locator = build_locator(config, policies)
    store = StateStore.open(config.database.url or "", evidence_key=KEY.encode())  # type: ignore[union-attr]
    run_ids: list[int] = []

    def audit(at: datetime, integrations: list[Integration]) -> None:
        run_id = store.begin_run(
            at,
            tool_version=__version__,
            config_digest=config.digest,
            policy_digest=policies.digest,
        )
        result = run_audit(integrations, policies, resolver, locator, at.date(), stepping_clock(at))
        store.finish_run(run_id, result, at + timedelta(seconds=30))
        run_ids.append(run_id)

    try:
        audit(R1, before)
        (mail_hosting,) = [
            f
            for f in store.list_findings(status="open", integration="mail")
            if f.rule == "transfer-unsafeguarded"
            and f.facet is not None
            and f.facet.value == "hosting"
        ]
        store.waive(
            mail_hosting.id,
            reason="SCCs being signed <b>now</b>",
            approver="Dana DPO",
            expires=date(2026, 6, 30),
            now=WAIVED_AT,
        )
        audit(R2, after)
        failed = store.begin_run(
            R3, tool_version=__version__, config_digest=config.digest, policy_digest="p"
        )
        store.fail_run(failed, R3 + timedelta(seconds=5), "ResolverError: no nameserver answered")
        run_ids.append(failed)
        # Two batches, then one of an earlier run reconciled as undetermined (40 records at most).
        undetermined = {"reconciled": True, "undetermined": True, "planned": 40}
        for index, (run_id, batch, rows, more) in enumerate(
            (("r-1", 0, 120, {}), ("r-1", 1, 30, {}), ("r-0", 7, 0, undetermined))
        ):
            store.append_evidence(
                "retention-batch",
                {
                    "policy": "crm-contacts",
                    "action": "delete",
                    "source": "crm",
                    "table": "contacts",
                    "run": run_id,
                    "batch": batch,
                    "rows": rows,
                    **more,
                },
                RETENTION_AT + timedelta(minutes=index),
            )
        # As the consent job and `consent import` record them: counts and digests only.
        store.append_evidence(
            "consent-check",
            {
                "checked": [
                    {
                        "integration": "mail",
                        "purpose": "newsletter",
                        "as_of": CONSENT_AT.date(),
                        "shared": 1000,
                        "missing": 12,
                        "withdrawn": 3,
                        "path": "pushdown",
                    }
                ],
                "failed": ["stats"],
                "findings_open": 0,
                "new": 0,
                "resolved": 0,
                "reopened": 0,
            },
            CONSENT_AT,
        )
        store.append_evidence(
            "consent-import",
            {
                "purpose": "newsletter",
                "file_sha256": "0" * 64,
                "read": 40,
                "inserted": 38,
                "updated": 2,
                "already_present": 0,
            },
            CONSENT_AT + timedelta(hours=1),
        )
        audit(R4, after)
    finally:
        store.close()
    return Scenario(config_path, state_url, config, policies, run_ids)


def run(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def verify(scenario: Scenario, *extra: str, key: str | None = KEY) -> Result:
    return run(
        "evidence", "verify", "--config", str(scenario.config_path), *extra, env=scenario.env(key)
    )


def verify_json(scenario: Scenario, *extra: str, key: str | None = KEY) -> tuple[int, Any]:
    result = verify(scenario, "--format", "json", *extra, key=key)
    return result.exit_code, json.loads(result.stdout)


def chain(scenario: Scenario) -> list[Any]:
    engine = scenario.engine()
    try:
        with engine.connect() as conn:
            return list(stored_records(conn))
    finally:
        engine.dispose()


def execute(scenario: Scenario, *statements: Any) -> None:
    engine = scenario.engine()
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(statement)
    finally:
        engine.dispose()


@pytest.fixture(name="scenario")
def _scenario(tmp_path: Path, dns_server_factory: DnsServerFactory, state_url: str) -> Scenario:
    """The scenario on SQLite and on PostgreSQL."""
    server = dns_server_factory(ZONE)
    return build_scenario(tmp_path, server.address, state_url)


def row_values(record: EvidenceRecord) -> dict[str, Any]:
    """A record's columns but its sequence number."""
    values = asdict(record)
    del values["seq"]
    return values


class TestVerify:
    def test_a_chain_of_real_audits_verifies_with_the_key(self, scenario: Scenario) -> None:
        """Audits, a waiver, a failed run and retention/consent records make an intact chain;
        the output says the HMACs were checked and names the head."""
        records = chain(scenario)

        result = verify(scenario)
        code, doc = verify_json(scenario)

        assert 0 == result.exit_code, result.output
        assert "evidence chain intact" in result.stdout
        assert "HMACs checked" in result.stdout
        assert records[-1].hash in result.stdout
        assert (0, True, True) == (code, doc["intact"], doc["hmac_checked"])
        assert len(records) == doc["records_verified"]
        assert {"seq": records[-1].seq, "kind": "audit-run"} == {
            k: doc["head"][k] for k in ("seq", "kind")
        }
        kinds = {record.kind for record in records}
        assert {"audit-run", "finding-new", "finding-waived", "finding-resolved"} <= kinds

    def test_without_the_key_it_says_hmacs_were_not_checked(self, scenario: Scenario) -> None:
        """No key in the environment: the hashes still verify, and the output says the HMACs
        were not checked."""
        result = verify(scenario, key=None)
        code, doc = verify_json(scenario, key=None)

        assert 0 == result.exit_code
        assert "HMACs not checked" in result.stdout
        assert (0, False) == (code, doc["hmac_checked"])

    def test_an_edited_record_is_named_with_its_kind_and_time(self, scenario: Scenario) -> None:
        """An UPDATE of one record's content: verify exits 1 naming that record, its kind and
        time."""
        target = chain(scenario)[2]
        execute(
            scenario,
            update(evidence_table)
            .where(evidence_table.c.seq == target.seq)
            .values(content=target.content.replace('"severity":"', '"severity":"x', 1)),
        )

        result = verify(scenario)
        code, doc = verify_json(scenario)

        assert 1 == result.exit_code
        stamp = target.at.isoformat().replace("+00:00", "Z")
        assert f"broken at record {target.seq} ({target.kind}, {stamp})" in result.stdout
        assert "was edited" in result.stdout
        assert (1, target.seq, target.seq) == (
            code,
            doc["first_bad"]["seq"],
            doc["first_bad"]["found"]["seq"],
        )
        assert target.seq - 1 == doc["records_verified"]

    def test_a_record_whose_fields_have_the_wrong_type_is_named(self, scenario: Scenario) -> None:
        """Rows written straight into the database with bytes where text belongs (SQLite keeps
        them; PostgreSQL only takes text) or content that is not a JSON object: verify
        exits 1 naming the record, and `evidence list` exits 2 naming it, never a TypeError."""
        from sqlalchemy import text as sql

        records = chain(scenario)
        first, second = records[1], records[3]
        execute(
            scenario,
            sql("UPDATE evidence SET content = X'3432' WHERE seq = :seq").bindparams(seq=second.seq)
            if scenario.state_url.startswith("sqlite")
            else sql("UPDATE evidence SET content = '42' WHERE seq = :seq").bindparams(
                seq=second.seq
            ),
            sql("UPDATE evidence SET mac = X'37' WHERE seq = :seq").bindparams(seq=first.seq)
            if scenario.state_url.startswith("sqlite")
            else sql("UPDATE evidence SET mac = '7' WHERE seq = :seq").bindparams(seq=first.seq),
        )

        result = verify(scenario)
        code, doc = verify_json(scenario)
        listed = run(
            "evidence", "list", "--config", str(scenario.config_path), "--format", "json",
            env=scenario.env(KEY),
        )  # fmt: skip

        assert 1 == result.exit_code, result.output
        assert f"broken at record {first.seq}" in result.stdout
        assert (1, first.seq) == (code, doc["first_bad"]["seq"])
        if scenario.state_url.startswith("sqlite"):
            assert "mac is a bytes, not text" in result.stdout
        assert 2 == listed.exit_code, listed.output
        sqlite = scenario.state_url.startswith("sqlite")
        named = first.seq if sqlite else second.seq  # PostgreSQL stored the mac as text
        assert f"evidence record {named}" in listed.stderr

    def test_a_record_whose_time_is_not_a_time_is_named(self, scenario: Scenario) -> None:
        """A time column holding text that is no time (SQLite keeps it): verify names the
        record instead of failing inside the driver; PostgreSQL refuses such a value."""
        from sqlalchemy import text as sql

        target = chain(scenario)[2]
        tamper = sql("UPDATE evidence SET at = 'not a time' WHERE seq = :seq").bindparams(
            seq=target.seq
        )
        if not scenario.state_url.startswith("sqlite"):
            with pytest.raises(DBAPIError, match="timestamp"):
                execute(scenario, tamper)
            return
        execute(scenario, tamper)

        result = verify(scenario)
        as_json = verify(scenario, "--format", "json")
        assert 1 == as_json.exit_code, as_json.output
        code, doc = verify_json(scenario)

        assert 1 == result.exit_code, result.output
        assert f"broken at record {target.seq}" in result.stdout
        assert "its time is a str" in result.stdout
        assert (1, target.seq) == (code, doc["first_bad"]["seq"])

    def test_a_deleted_record_is_named(self, scenario: Scenario) -> None:
        """A DELETE of a record in the middle: verify names it as missing and shows the record
        found in its place."""
        records = chain(scenario)
        gone, next_one = records[3], records[4]
        execute(scenario, delete(evidence_table).where(evidence_table.c.seq == gone.seq))

        result = verify(scenario)
        code, doc = verify_json(scenario)

        assert (1, 1) == (result.exit_code, code)
        assert f"broken at record {gone.seq} (in its place: record {next_one.seq}" in result.stdout
        assert "missing" in doc["problem"]
        assert (gone.seq, next_one.seq) == (
            doc["first_bad"]["seq"],
            doc["first_bad"]["found"]["seq"],
        )

    def test_an_inserted_record_is_named(self, scenario: Scenario) -> None:
        """A record planted before the first one (seq 0) is out of order: record 1 is named."""
        first = chain(scenario)[0]
        planted = {**row_values(first), "hash": "f" * 64}
        execute(scenario, insert(evidence_table).values(seq=0, **planted))

        code, doc = verify_json(scenario)

        assert (1, 1, 0) == (code, doc["first_bad"]["seq"], doc["first_bad"]["found"]["seq"])
        assert "out of order" in doc["problem"]

    def test_an_appended_record_without_the_key_is_caught_by_its_hmac(
        self, scenario: Scenario
    ) -> None:
        """A record appended with a correct plain hash but no HMAC (written without the key)
        passes the hashes, and fails the HMAC check."""
        last = chain(scenario)[-1]
        forged = link(last, "audit-run", {"outcome": "success"}, R4 + timedelta(hours=1), None)
        execute(
            scenario,
            insert(evidence_table).values(seq=forged.seq, **{**row_values(forged), "mac": None}),
        )

        without_key, _ = verify_json(scenario, key=None)
        code, doc = verify_json(scenario)

        assert 0 == without_key
        assert (1, forged.seq) == (code, doc["first_bad"]["seq"])
        assert "HMAC" in doc["problem"]

    def test_two_swapped_records_are_named(self, scenario: Scenario) -> None:
        """Two records' contents swapped (each keeping its sequence number): the first of them
        no longer follows its predecessor."""
        records = chain(scenario)
        a, b = records[1], records[2]
        execute(
            scenario,
            update(evidence_table).where(evidence_table.c.seq == a.seq).values(hash="x" * 64),
            update(evidence_table).where(evidence_table.c.seq == b.seq).values(**row_values(a)),
            update(evidence_table).where(evidence_table.c.seq == a.seq).values(**row_values(b)),
        )

        code, doc = verify_json(scenario)

        assert (1, a.seq) == (code, doc["first_bad"]["seq"])
        assert "does not follow" in doc["problem"]

    def test_a_rehashed_chain_is_caught_by_the_hmacs(self, scenario: Scenario) -> None:
        """Someone with database access but not the key edits a record and recomputes every
        hash after it: the plain chain verifies, the HMACs do not."""
        records = chain(scenario)
        target = records[2]
        rewritten = records[:2]
        for record in records[2:]:
            content = json.loads(record.content)
            if record.seq == target.seq:
                content["severity"] = "info"
            rewritten.append(link(rewritten[-1], record.kind, content, record.at, None))
        execute(
            scenario,
            *(
                update(evidence_table)
                .where(evidence_table.c.seq == r.seq)
                .values(content=r.content, hash=r.hash, prev_hash=r.prev_hash, mac=None)
                for r in rewritten[2:]
            ),
        )

        without_key, _ = verify_json(scenario, key=None)
        code, doc = verify_json(scenario)

        assert 0 == without_key
        assert (1, target.seq) == (code, doc["first_bad"]["seq"])

    def test_a_wrong_key_fails_on_the_first_record(self, scenario: Scenario) -> None:
        """Verifying with another key than the one the records were written with fails at 1."""
        code, doc = verify_json(scenario, key=OTHER_KEY)

        assert (1, 1) == (code, doc["first_bad"]["seq"])
        assert "HMAC" in doc["problem"]

    def test_a_cut_off_tail_is_caught_against_the_anchored_head(self, scenario: Scenario) -> None:
        """Deleting the newest records leaves a chain that verifies, except against the head
        anchored earlier with `evidence head`."""
        anchored = run(
            "evidence", "head", "--config", str(scenario.config_path), "--format", "json"
        )
        head = json.loads(anchored.stdout)["head"]
        execute(scenario, delete(evidence_table).where(evidence_table.c.seq >= head["seq"] - 1))

        plain, _ = verify_json(scenario)
        code, doc = verify_json(scenario, "--expect-head", head["hash"])

        assert 0 == plain
        assert 1 == code
        assert head["hash"] in doc["problem"]
        assert doc["first_bad"] is None


class TestUnreadable:
    def test_a_missing_database_exits_3_and_creates_nothing(self, tmp_path: Path) -> None:
        """A configured SQLite file that does not exist: exit 3, and no file is created."""
        config = write_config(tmp_path, [entry("crm")], database={"url": "sqlite:///x.db"})

        result = run("evidence", "verify", "--config", str(config))

        assert 3 == result.exit_code
        assert "does not exist" in result.stderr
        assert not (tmp_path / "x.db").exists()

    def test_a_file_that_is_not_a_database_exits_3(self, tmp_path: Path) -> None:
        """A state file that is not SQLite: exit 3 with the database named."""
        (tmp_path / "x.db").write_bytes(b"this is not a database" * 100)
        config = write_config(tmp_path, [entry("crm")], database={"url": "sqlite:///x.db"})

        result = run("evidence", "head", "--config", str(config))

        assert 3 == result.exit_code
        assert "x.db" in result.stderr


@pytest.fixture(name="sqlite_scenario")
def _sqlite_scenario(tmp_path: Path, dns_server_factory: DnsServerFactory) -> Scenario:
    """The scenario on SQLite only, for what does not depend on the database."""
    server = dns_server_factory(ZONE)
    return build_scenario(tmp_path, server.address, f"sqlite:///{tmp_path / 'state.db'}")


class TestUnreachable:
    def test_an_unreachable_postgresql_exits_3(self, tmp_path: Path) -> None:
        """A PostgreSQL server that refuses connections: exit 3, naming the database without
        its password."""
        url = "postgresql://auditor:s3cret@127.0.0.1:1/state"
        config = write_config(tmp_path, [entry("crm")], database={"url": url})

        result = run("evidence", "verify", "--config", str(config))

        assert 3 == result.exit_code
        assert "127.0.0.1:1" in result.stderr
        assert "s3cret" not in result.stderr

    def test_an_empty_chain_is_intact(self, tmp_path: Path) -> None:
        """A state database with nothing recorded yet verifies, and says it is empty."""
        config = write_config(tmp_path, [entry("crm")], database={"url": "sqlite:///s.db"})
        StateStore.open(f"sqlite:///{tmp_path / 's.db'}").close()

        result = run("evidence", "verify", "--config", str(config))
        head = run("evidence", "head", "--config", str(config), "--format", "json")

        assert 0 == result.exit_code
        assert "it is empty" in result.stdout
        assert {"head": None} == json.loads(head.stdout)


class TestHeadAndList:
    def test_head_prints_the_newest_record(self, sqlite_scenario: Scenario) -> None:
        """`evidence head` prints seq, time, kind and hash of the newest record."""
        last = chain(sqlite_scenario)[-1]

        result = run("evidence", "head", "--config", str(sqlite_scenario.config_path))

        assert 0 == result.exit_code
        stamp = last.at.isoformat().replace("+00:00", "Z")
        assert f"{last.seq} {stamp} audit-run {last.hash}\n" == result.stdout

    def test_list_filters_by_kind_and_period(self, sqlite_scenario: Scenario) -> None:
        """`evidence list --kind --from --to` returns the matching records in chain order, with
        their content."""
        result = run(
            "evidence", "list", "--config", str(sqlite_scenario.config_path), "--kind", "retention-batch",
            "--kind", "consent-check", "--from", "2026-03-01", "--to", "2026-03-31",
            "--format", "json",
        )  # fmt: skip

        assert 0 == result.exit_code, result.output
        records = json.loads(result.stdout)["records"]
        assert ["retention-batch"] * 3 + ["consent-check"] == [r["kind"] for r in records]
        assert [120, 30] == [r["content"]["rows"] for r in records[:2]]
        assert 1000 == records[3]["content"]["checked"][0]["shared"]
        assert records[0]["seq"] < records[1]["seq"] < records[2]["seq"]

    def test_list_of_nothing_is_an_empty_list(self, sqlite_scenario: Scenario) -> None:
        """A period without records lists none, as valid JSON and as text."""
        args = (
            "evidence",
            "list",
            "--config",
            str(sqlite_scenario.config_path),
            "--to",
            "2025-12-31",
        )

        as_json = run(*args, "--format", "json")
        as_text = run(*args)

        assert {"records": []} == json.loads(as_json.stdout)
        assert "no evidence records\n" == as_text.stdout

    def test_list_text_shows_one_line_per_record(self, sqlite_scenario: Scenario) -> None:
        """The text listing has one line per record, with its kind."""
        result = run(
            "evidence", "list", "--config", str(sqlite_scenario.config_path), "--kind", "audit-run"
        )

        lines = result.stdout.splitlines()
        assert 4 == len(lines)
        assert all("audit-run" in line for line in lines)


def test_verify_help_states_the_exit_statuses() -> None:
    """`evidence verify --help` documents exit statuses 0, 1 and 3."""
    result = run("evidence", "verify", "--help")

    assert 0 == result.exit_code
    assert "1 it is not" in result.stdout and "3 the" in result.stdout
