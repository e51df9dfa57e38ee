"""`check` recording runs, `finding list|show|waive|unwaive` and `db upgrade|status`, end to end."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from sqlalchemy import update

from auditor.cli import cli
from auditor.config import load_config
from auditor.core.errors import InvalidInputError
from auditor.service.wiring import database_url
from auditor.store import SCHEMA_VERSION, StateStore
from auditor.store.schema import schema_meta
from tests import helpers
from tests.helpers import minimal

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run(*args: str, env: Mapping[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def write_config(
    workdir: Path, hosting: str = "US", database: dict[str, str] | None = None
) -> Path:
    """A config whose one integration is hosted in `hosting` (no endpoints, so no DNS or GeoIP)."""
    entries = [minimal("crm", hosting=[hosting]), minimal("mail", category="email-marketing")]
    return helpers.write_config(
        workdir, entries, **({} if database is None else {"database": database})
    )


AUDIT_DAY = date(2026, 11, 22)


@pytest.fixture(autouse=True)
def _audit_day_is_today(monkeypatch: pytest.MonkeyPatch) -> None:
    """`check` records only audits as of today: these tests audit AUDIT_DAY, so today is that."""
    monkeypatch.setattr(
        "auditor.cli.audit.utcnow", lambda: datetime.combine(AUDIT_DAY, datetime.now(UTC).timetz())
    )


def check(config: Path, env: Mapping[str, str] | None = None, *extra: str) -> Result:
    return run("check", "--config", str(config), "--as-of", AUDIT_DAY.isoformat(), *extra, env=env)


def runs(config: Path) -> int:
    """How many successful runs the configuration's state database holds."""
    status = run("db", "status", "--config", str(config), "--format", "json")
    count: int = json.loads(status.stdout)["runs"]["success"]
    return count


def findings_json(config: Path, *extra: str) -> list[dict[str, Any]]:
    result = run("finding", "list", "--config", str(config), "--format", "json", *extra)
    assert 0 == result.exit_code, result.stderr
    found: list[dict[str, Any]] = json.loads(result.stdout)["findings"]
    return found


@pytest.fixture(name="config")
def _config(tmp_path: Path) -> Path:
    """A config with a relative SQLite database next to it, and one recorded check run."""
    path = write_config(tmp_path, database={"url": "sqlite:///state.db"})
    assert 1 == check(path).exit_code
    return path


class TestCheckRecords:
    def test_check_with_a_database_records_the_run(self, config: Path) -> None:
        """`check` with `database` configured records a successful run and its findings."""
        result = run("db", "status", "--config", str(config), "--format", "json")

        assert 0 == result.exit_code, result.stderr
        doc = json.loads(result.stdout)
        assert (config.parent / "state.db").exists()
        assert SCHEMA_VERSION == doc["schema_version"]
        assert 1 == doc["runs"]["success"]
        assert {"open": 1, "waived": 0, "resolved": 0} == doc["findings"]
        assert "2026-11-22" == doc["latest_success"]["as_of"]
        assert "***" not in doc["database"]

    @pytest.mark.parametrize("day", ["2022-06-01", "2031-12-28"])
    def test_a_what_if_day_is_never_recorded(self, config: Path, day: str) -> None:
        """`--as-of` another day than today audits that day, prints it, and says on stderr that
        it is not recorded: the findings' history holds no invented past or future."""
        result = run("check", "--config", str(config), "--as-of", day, "--format", "json")

        assert json.loads(result.stdout)["as_of"] == day
        assert "not recorded in the state database" in result.stderr
        assert "what-if" in result.stderr and day in result.stderr
        assert 1 == runs(config)
        assert {"open": 1, "waived": 0, "resolved": 0} == json.loads(
            run("db", "status", "--config", str(config), "--format", "json").stdout
        )["findings"]

    def test_no_record_leaves_the_database_as_it_was(self, config: Path) -> None:
        """`--no-record` audits today without recording; without it, the same run is recorded."""
        skipped = check(config, None, "--no-record")
        recorded = check(config)

        assert 1 == skipped.exit_code and "--no-record" in skipped.stderr
        assert "not recorded" not in recorded.stderr
        assert 2 == runs(config)  # the fixture's run and the last one

    def test_check_without_a_database_writes_nothing(self, tmp_path: Path) -> None:
        """Without `database`, check leaves no file behind, even with $STATE_DIRECTORY set."""
        state = tmp_path / "state"
        state.mkdir()
        config = write_config(tmp_path)
        before = sorted(tmp_path.rglob("*"))

        result = check(config, env={"STATE_DIRECTORY": str(state)})

        assert 1 == result.exit_code, result.stderr
        assert before == sorted(tmp_path.rglob("*"))

    def test_a_changed_inventory_resolves_the_finding(self, config: Path) -> None:
        """A second check after the hosting moved to the EEA resolves the finding."""
        write_config(config.parent, hosting="DE", database={"url": "sqlite:///state.db"})

        assert 0 == check(config).exit_code
        assert [] == findings_json(config)
        (resolved,) = findings_json(config, "--status", "resolved")
        assert ("transfer-unsafeguarded", "crm", "resolved") == (
            resolved["rule"],
            resolved["integration"],
            resolved["status"],
        )

    def test_the_example_records_its_findings(self, tmp_path: Path) -> None:
        """The shipped example, with a database added, records its 28 findings as open."""
        example = yaml.safe_load((EXAMPLES / "auditor.yaml").read_text())
        config = {
            "inventory": [str(EXAMPLES / "inventory")],
            "dns": {**example["dns"], "zone_files": [str(EXAMPLES / "dns" / "example.zone")]},
            "geoip": {  # the database paths made absolute; the age limit kept as it is
                k: str(EXAMPLES / v) if k.endswith("_db") else v
                for k, v in example["geoip"].items()
            },
            "ip_ranges": str((EXAMPLES / example["ip_ranges"]).resolve()),
            "database": {"url": "sqlite:///state.db"},
        }
        path = tmp_path / "auditor.yaml"
        path.write_text(yaml.safe_dump(config))

        assert 1 == check(path).exit_code
        found = findings_json(path)
        places = run("db", "status", "--config", str(path), "--format", "json")

        assert 28 == len(found)  # the example's findings (tests/golden/example-check.json)
        assert "critical" == found[0]["severity"]
        assert 13 == json.loads(places.stdout)["latest_success"]["integrations"]

    @pytest.mark.postgres
    def test_check_records_into_postgresql_through_url_env(
        self, tmp_path: Path, postgres_schema_url: str
    ) -> None:
        """The URL may come from an environment variable; PostgreSQL records the same way."""
        config = write_config(tmp_path, database={"url_env": "AUDITOR_DB"})
        env = {"AUDITOR_DB": postgres_schema_url}

        assert 1 == check(config, env=env).exit_code
        result = run("finding", "list", "--config", str(config), "--format", "json", env=env)

        assert 0 == result.exit_code, result.stderr
        assert ["transfer-unsafeguarded"] == [
            f["rule"] for f in json.loads(result.stdout)["findings"]
        ]


NEXT_YEAR = (datetime.now(UTC).date() + timedelta(days=365)).isoformat()


class TestWaiverVerbs:
    def test_waive_list_show_unwaive(self, config: Path) -> None:
        """A DPO waives a finding: it leaves the open list, shows its waiver and history, and
        comes back when unwaived."""
        (found,) = findings_json(config)
        ident = str(found["id"])

        waived = run(
            "finding", "waive", ident, "--config", str(config), "--reason", "SCCs being signed",
            "--approver", "Dana DPO", "--expires", NEXT_YEAR,
        )  # fmt: skip
        table = run("finding", "list", "--config", str(config))
        waived_list = findings_json(config, "--status", "waived")
        shown = run("finding", "show", ident, "--config", str(config), "--format", "json")
        text = run("finding", "show", ident, "--config", str(config))
        unwaived = run("finding", "unwaive", ident, "--config", str(config), "--by", "Olaf")

        assert 0 == waived.exit_code, waived.stderr
        assert f"waived until {NEXT_YEAR}" in waived.stdout
        assert "no findings" in table.stdout
        assert "1 waived finding not shown (--status waived)" in table.stdout
        assert [("waived", "Dana DPO")] == [
            (f["status"], f["waiver"]["approver"]) for f in waived_list
        ]
        doc = json.loads(shown.stdout)
        assert ["new", "waived"] == [e["change"] for e in doc["events"]]
        assert "SCCs being signed" == doc["waivers"][0]["reason"]
        assert "[active]" in text.stdout
        assert "history" in text.stdout
        assert 0 == unwaived.exit_code, unwaived.stderr
        assert [ident] == [str(f["id"]) for f in findings_json(config)]

    def test_list_filters_by_integration_and_rule(self, config: Path) -> None:
        """--integration and --rule narrow the list."""
        assert 1 == len(findings_json(config, "--integration", "crm"))
        assert [] == findings_json(config, "--integration", "mail")
        assert [] == findings_json(config, "--rule", "contract-dpa-missing")
        assert 1 == len(
            findings_json(config, "--status", "all", "--rule", "transfer-unsafeguarded")
        )

    def test_an_unknown_finding_exits_2(self, config: Path) -> None:
        """show, waive and unwaive of an id that does not exist exit 2 naming it."""
        for args in (
            ["show", "999"],
            ["unwaive", "999"],
            ["waive", "999", "--reason", "r", "--approver", "a", "--expires", NEXT_YEAR],
        ):
            result = run("finding", *args, "--config", str(config))

            assert 2 == result.exit_code
            assert "no finding with id 999" in result.stderr

    @pytest.mark.parametrize(
        ("expires", "said"),
        [
            # --expires must be YYYY-MM-DD; click reports a usage error (exit 2).
            ("next week", "expected YYYY-MM-DD"),
            # A waiver that has expired already is refused with exit 2.
            ("2001-01-01", "is in the past"),
        ],
    )
    def test_a_bad_or_past_expiry_date_is_refused(
        self, config: Path, expires: str, said: str
    ) -> None:
        """--expires must be a YYYY-MM-DD date not in the past: otherwise exit 2, saying why."""
        result = run(
            "finding", "waive", "1", "--config", str(config), "--reason", "r", "--approver", "a",
            "--expires", expires,
        )  # fmt: skip

        assert 2 == result.exit_code
        assert said in result.stderr


class TestDbVerbs:
    def test_an_old_schema_is_refused_until_upgraded(self, config: Path) -> None:
        """Verbs refuse an older schema with the upgrade command; `db upgrade` fixes it."""
        store = StateStore.open(database_url(load_config(config), {}))
        with store.engine.begin() as conn:
            conn.execute(update(schema_meta).values(version=0))
        store.close()

        refused = run("finding", "list", "--config", str(config))
        status = run("db", "status", "--config", str(config))
        upgraded = run("db", "upgrade", "--config", str(config))
        again = run("db", "upgrade", "--config", str(config))

        assert 2 == refused.exit_code
        assert "gdpr-auditor db upgrade --config FILE" in refused.stderr
        assert 2 == status.exit_code
        assert f"schema version  0, this gdpr-auditor uses {SCHEMA_VERSION}" in status.stdout
        assert 0 == upgraded.exit_code, upgraded.stderr
        assert f"from schema version 0 to {SCHEMA_VERSION}" in upgraded.stdout
        assert "already" in again.stdout
        assert 1 == len(findings_json(config))

    def test_status_as_text(self, config: Path) -> None:
        """`db status` prints the schema version, runs and findings for people."""
        result = run("db", "status", "--config", str(config))

        assert 0 == result.exit_code, result.stderr
        assert f"schema version  {SCHEMA_VERSION}" in result.stdout
        assert "1 success" in result.stdout
        assert "1 open" in result.stdout

    def test_status_of_a_database_not_created_yet(self, tmp_path: Path) -> None:
        """A database without tables is reported as such, with exit 0: nothing needs doing."""
        config = write_config(tmp_path, database={"url": "sqlite:///state.db"})

        result = run("db", "status", "--config", str(config), "--format", "json")

        assert 0 == result.exit_code, result.stderr
        doc = json.loads(result.stdout)
        assert (None, False) == (doc["schema_version"], doc["up_to_date"])

    def test_the_default_database_is_in_the_state_directory(self, tmp_path: Path) -> None:
        """Without `database`, the verbs use gdpr-auditor.db in $STATE_DIRECTORY."""
        state = tmp_path / "state"
        state.mkdir()
        config = write_config(tmp_path)

        result = run("db", "upgrade", "--config", str(config), env={"STATE_DIRECTORY": str(state)})

        assert 0 == result.exit_code, result.stderr
        assert (state / "gdpr-auditor.db").exists()
        assert not (tmp_path / "gdpr-auditor.db").exists()


class TestDatabaseUrl:
    def test_the_default_is_next_to_the_config_without_a_state_directory(
        self, tmp_path: Path
    ) -> None:
        """No `database` and no $STATE_DIRECTORY: gdpr-auditor.db beside the config file."""
        config = load_config(write_config(tmp_path))

        assert f"sqlite:///{tmp_path.resolve() / 'gdpr-auditor.db'}" == database_url(config, {})

    def test_the_first_of_several_state_directories_is_used(self, tmp_path: Path) -> None:
        """systemd separates several state directories with colons; the first one is ours."""
        config = load_config(write_config(tmp_path))

        url = database_url(config, {"STATE_DIRECTORY": "/var/lib/a:/var/lib/b"})

        assert "sqlite:////var/lib/a/gdpr-auditor.db" == url

    def test_url_env_resolves_relative_sqlite_paths_against_the_config(
        self, tmp_path: Path
    ) -> None:
        """A relative SQLite URL from the environment is relative to the config file."""
        config = load_config(write_config(tmp_path, database={"url_env": "DB"}))

        url = database_url(config, {"DB": "sqlite:///data/state.db"})

        assert f"sqlite:///{tmp_path.resolve() / 'data' / 'state.db'}" == url

    def test_an_unset_url_env_names_the_variable_and_the_key(self, tmp_path: Path) -> None:
        """A missing environment variable is invalid input naming it and database.url_env."""
        config = load_config(write_config(tmp_path, database={"url_env": "AUDITOR_DB"}))

        with pytest.raises(InvalidInputError) as invalid:
            database_url(config, {})

        assert "AUDITOR_DB" in str(invalid.value)
        assert "database.url_env" in str(invalid.value)

    @pytest.mark.parametrize(
        ("url", "problem"),
        [
            ("mysql://root@127.0.0.1:3306/test", "must be SQLite or PostgreSQL, not mysql"),
            ("postgresql://u:pw@db.example:notaport/audit", "port in the URL is not a number"),
            ("sqlite://host:port/state.db", "port in the URL is not a number"),
            ("state.db", "expected a database URL"),
        ],
    )
    def test_an_unusable_state_database_url_is_a_config_error_naming_key_and_line(
        self, tmp_path: Path, url: str, problem: str
    ) -> None:
        """`validate` and every verb refuse it alike: exit 2, the file, its line, database.url,
        and never the password."""
        config = write_config(tmp_path, database={"url": url})

        validated = run("validate", "--config", str(config))
        listed = run("finding", "list", "--config", str(config))

        for result in (validated, listed):
            assert 2 == result.exit_code, result.output
            assert problem in result.stderr
            assert f"{config.name}:" in result.stderr and "database.url" in result.stderr
            assert "pw" not in result.stderr

    def test_a_url_env_with_a_bad_port_names_the_variable(self, tmp_path: Path) -> None:
        config = write_config(tmp_path, database={"url_env": "AUDITOR_DB"})

        result = run(
            "finding", "list", "--config", str(config),
            env={"AUDITOR_DB": "postgresql://u:pw@host:x/db"},
        )  # fmt: skip

        assert 2 == result.exit_code
        assert "AUDITOR_DB: the port in the URL is not a number" in result.stderr
        assert "database.url_env" in result.stderr


REPORT_JANUARY = ["report", "--from", "2026-01-01", "--to", "2026-02-01"]


class TestDatesAtTheCalendarsEnd:
    def test_an_expiry_decades_away_is_refused(self, config: Path) -> None:
        """A waiver is reviewed within ten years: a later expiry, or one at the end of the
        calendar, is refused with exit 2 and says why."""
        (found,) = findings_json(config)
        waive = ("finding", "waive", str(found["id"]), "--config", str(config), "--reason", "r",
                 "--approver", "a", "--expires")  # fmt: skip

        far = run(*waive, "2060-01-01")
        end = run(*waive, "9999-12-31")

        assert 2 == far.exit_code
        assert "too far away" in far.stderr
        assert 2 == end.exit_code
        assert "--expires" in end.stderr and "out of range" in end.stderr
        assert [found["id"]] == [f["id"] for f in findings_json(config)]

    @pytest.mark.parametrize(
        ("args", "option"),
        [
            (["check", "--as-of", "9999-12-31"], "--as-of"),
            (["check", "--as-of", "0001-01-01"], "--as-of"),
            (["report", "--from", "2026-01-01", "--to", "9999-12-31"], "--to"),
            (["report", "--from", "9999-12-31", "--to", "9999-12-31"], "--from"),
            (["evidence", "list", "--from", "9999-12-31"], "--from"),
            (["evidence", "list", "--to", "9999-12-31"], "--to"),
            (
                [*REPORT_JANUARY, "--generated-at", "9999-12-31T23:00:00-14:00"],
                "--generated-at",
            ),
            (["register", "--as-of", "9999-12-31"], "--as-of"),
            (["consent", "check", "--as-of", "9999-12-31"], "--as-of"),
        ],
    )
    def test_a_date_at_the_end_of_the_calendar_is_a_usage_error(
        self, config: Path, args: list[str], option: str
    ) -> None:
        """Dates are bounded where they enter: exit 2 naming the option, never a traceback
        (the runner re-raises any exception)."""
        result = run(*args, "--config", str(config))

        assert 2 == result.exit_code, result.output
        assert option in result.stderr
        assert "out of range" in result.stderr


def test_control_characters_in_a_waiver_reason_are_escaped_in_terminal_output(
    config: Path,
) -> None:
    """An ANSI escape and a newline in a reason and an approver: `finding show` and `finding
    list` print them escaped, so they cannot clear the screen or forge a line."""
    (found,) = findings_json(config)
    ident = str(found["id"])
    waived = run(
        "finding", "waive", ident, "--config", str(config), "--expires", NEXT_YEAR,
        "--reason", "ok\x1b[2J\nfinding 1: resolved", "--approver", "Dana\x1b[31m",
    )  # fmt: skip
    shown = run("finding", "show", ident, "--config", str(config))
    listed = run("finding", "list", "--config", str(config), "--status", "waived")
    evidence = run("evidence", "list", "--config", str(config), "--kind", "finding-waived")

    assert 0 == waived.exit_code, waived.stderr
    assert 0 == evidence.exit_code, evidence.stderr
    assert "\x1b" not in evidence.stdout  # the record's content is JSON, escaped as \u001b
    for output in (waived.stdout, shown.stdout, listed.stdout):
        assert "\x1b" not in output
        assert "Dana\\x1b[31m" in output
    assert "ok\\x1b[2J\\nfinding 1: resolved" in shown.stdout
    assert "\nfinding 1: resolved" not in shown.stdout
