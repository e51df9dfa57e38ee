"""Stale-data warnings: real mmdb build epochs, range files' own dates and recorded fetches, the
adequacy list's `updated:`; measured against today, never --as-of, and never findings."""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import stat
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from auditor.cli import cli
from auditor.core.policies import shipped_policies
from auditor.core.ports import DataSet
from auditor.core.staleness import data_warnings
from auditor.probes.fetchrecord import RECORD_NAME, Fetched, digest, write_fetch_record
from tests.helpers import shipped_policies as loaded_policies
from tests.mmdb import build_country_db

TODAY = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
ZONE = "$ORIGIN example.\n$TTL 60\napi.crm A 192.0.2.10\n"
CLOUDFLARE_V4 = b"203.0.113.0/24\n"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def aws_ranges(created: datetime) -> str:
    return json.dumps(
        {
            "syncToken": "1",
            "createDate": created.strftime("%Y-%m-%d-%H-%M-%S"),
            "prefixes": [
                {"ip_prefix": "198.51.100.0/24", "region": "eu-central-1", "service": "EC2"}
            ],
            "ipv6_prefixes": [],
        }
    )


@pytest.fixture(name="today")
def _today(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Pin the wall clock `check` and `geodb` read, so ages are exact."""
    monkeypatch.setattr("auditor.cli.audit.utcnow", lambda: TODAY)
    monkeypatch.setattr("auditor.cli.geodb.utcnow", lambda: TODAY)
    return TODAY


def write_setup(
    workdir: Path,
    *,
    geoip_built: datetime,
    ranges_created: datetime,
    cloudflare_fetched: datetime | None = None,
    geoip: dict[str, object] | None = None,
    policies: Path | None = None,
) -> Path:
    """A configuration auditing one EEA-hosted CRM with a critical finding (no DPA), offline."""
    build_country_db(
        workdir / "country.mmdb", {"192.0.2.0/24": "DE"}, build_epoch=epoch(geoip_built)
    )
    ranges = workdir / "ranges"
    ranges.mkdir(exist_ok=True)
    (ranges / "ip-ranges.json").write_text(aws_ranges(ranges_created))
    (ranges / "ips-v4").write_bytes(CLOUDFLARE_V4)
    if cloudflare_fetched is not None:
        fetch = Fetched(
            cloudflare_fetched, "https://www.cloudflare.com/ips-v4", digest(CLOUDFLARE_V4)
        )
        write_fetch_record(ranges, {"ips-v4": fetch})
    (workdir / "example.zone").write_text(ZONE)
    crm = {
        "id": "crm",
        "name": "CRM",
        "category": "crm",
        "role": "processor",
        "data_categories": ["contact"],
        "vendor_country": "DE",
        "hosting": ["DE"],
        "endpoints": ["api.crm.example"],
        "backups": {
            "regions": ["IE"],
            "retention": "P30D",
            "restore_tested": (TODAY - timedelta(days=30)).date(),
            "documented": {"at": "backup.md", "reviewed": (TODAY - timedelta(days=60)).date()},
        },
        "retention": "P1Y",
        "contract": {"dpa_signed": None},
    }
    (workdir / "inventory.yaml").write_text(yaml.safe_dump({"integrations": [crm]}))
    config = {
        "inventory": ["inventory.yaml"],
        "policies": str(policies) if policies else None,
        "dns": {"zone_files": ["example.zone"]},
        "geoip": {"country_db": "country.mmdb", **(geoip or {})},
        "ip_ranges": "ranges",
    }
    path = workdir / "auditor.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def fresh(workdir: Path, **overrides: object) -> Path:
    """A setup whose data is all recent (and the Cloudflare list fetched yesterday)."""
    settings: dict[str, object] = {
        "geoip_built": TODAY - timedelta(days=3),
        "ranges_created": TODAY - timedelta(days=2),
        "cloudflare_fetched": TODAY - timedelta(days=1),
    }
    settings.update(overrides)
    return write_setup(workdir, **settings)  # type: ignore[arg-type]


def check_json(config: Path, *args: str) -> tuple[Result, dict[str, object]]:
    result = run("check", "--config", str(config), "--format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    return result, json.loads(result.stdout)


def dating(warning: dict[str, object], *more: str) -> tuple[object, ...]:
    """What a warning says of its data's date: kind, build date, what dated it, age in days (and
    the `more` keys)."""
    return tuple(warning[key] for key in ("kind", "built", "dated_by", "age_days", *more))


def warnings_of(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    items = doc["warnings"]
    assert isinstance(items, list)
    return {item["source"]: item for item in items}


class TestCheckWarns:
    def test_fresh_data_gives_no_warnings(self, tmp_path: Path, today: datetime) -> None:
        """Recent databases, range files and fetches, and a current adequacy list: no warnings."""
        _, doc = check_json(fresh(tmp_path))

        assert [] == doc["warnings"]

    def test_old_geoip_build_epoch_warns_even_when_auditing_the_past(self, tmp_path: Path) -> None:
        """A seven-year-old GeoLite2 file warns on the real clock, with --as-of 2019-01-01 too."""
        now = datetime.now(UTC)
        config = fresh(
            tmp_path,
            geoip_built=now - timedelta(days=7 * 365),
            ranges_created=now - timedelta(days=1),
            cloudflare_fetched=now - timedelta(days=1),
        )

        _, doc = check_json(config, "--as-of", "2019-01-01")

        assert "2019-01-01" == doc["as_of"]
        warning = warnings_of(doc)["country.mmdb"]
        assert {
            "kind": "geoip-stale",
            "name": "GeoLite2-Country",
            "built": (now - timedelta(days=7 * 365)).date().isoformat(),
            "dated_by": "build",
            "max_age_days": 45,
        } == {key: warning[key] for key in ("kind", "name", "built", "dated_by", "max_age_days")}
        assert 7 * 365 == warning["age_days"]
        assert "2555 days ago" in str(warning["message"])

    def test_range_file_created_100_days_ago_warns(self, tmp_path: Path, today: datetime) -> None:
        """An AWS file whose createDate is 100 days before today is stale at the default 45 days."""
        config = fresh(tmp_path, ranges_created=today - timedelta(days=100))

        _, doc = check_json(config)

        assert {
            "kind": "ip-ranges-stale",
            "source": "ip-ranges.json",
            "name": "aws",
            "built": "2026-08-25",
            "dated_by": "build",
            "age_days": 100,
            "max_age_days": 45,
            "message": "IP-range file ip-ranges.json (aws) was built 2026-08-25, 100 days ago "
            "(more than 45, geoip.max_age_days): networks the provider moved since are placed "
            "where they were; run `gdpr-auditor geodb update`",
        } == warnings_of(doc)["ip-ranges.json"]

    def test_the_age_limit_is_configurable(self, tmp_path: Path, today: datetime) -> None:
        """geoip.max_age_days moves the limit; 100 days is fine under a 120-day limit."""
        config = fresh(
            tmp_path, ranges_created=today - timedelta(days=100), geoip={"max_age_days": 120}
        )

        _, doc = check_json(config)

        assert [] == doc["warnings"]

    def test_cloudflare_list_is_dated_by_its_recorded_fetch(
        self, tmp_path: Path, today: datetime
    ) -> None:
        """A list without a date of its own is as old as its fetch by `geodb update`."""
        config = fresh(tmp_path, cloudflare_fetched=today - timedelta(days=60))

        _, doc = check_json(config)

        warning = warnings_of(doc)["ips-v4"]
        assert ("ip-ranges-stale", "2026-10-04", "fetched", 60) == dating(warning)
        assert "was fetched 2026-10-04, 60 days ago" in str(warning["message"])

    def test_cloudflare_list_without_a_recorded_fetch_is_of_unknown_age(
        self, tmp_path: Path, today: datetime
    ) -> None:
        """No date in the file and no fetch recorded: age unknown, whatever the file's mtime."""
        config = fresh(tmp_path, cloudflare_fetched=None)

        _, doc = check_json(config)

        assert {
            "kind": "data-age-unknown",
            "source": "ips-v4",
            "name": "cloudflare",
            "built": None,
            "dated_by": None,
            "age_days": None,
            "max_age_days": 45,
            "message": "IP-range file ips-v4 (cloudflare) has no build date and no recorded "
            "fetch, so its age is unknown: fetch it with `gdpr-auditor geodb update`",
        } == warnings_of(doc)["ips-v4"]

    def test_a_list_replaced_by_hand_is_not_dated_by_an_earlier_fetch(
        self, tmp_path: Path, today: datetime
    ) -> None:
        """The record dates the content it fetched: a file copied in afterwards is undated."""
        config = fresh(tmp_path)
        (tmp_path / "ranges" / "ips-v4").write_bytes(b"203.0.113.0/25\n")

        _, doc = check_json(config)

        assert "data-age-unknown" == warnings_of(doc)["ips-v4"]["kind"]

    def test_old_adequacy_list_warns(self, tmp_path: Path, today: datetime) -> None:
        """A policy copy whose adequacy.yaml was updated more than a year ago is warned about."""
        policies = tmp_path / "policies"
        shutil.copytree(shipped_policies(), policies)
        adequacy = policies / "adequacy.yaml"
        text, replaced = re.subn(
            r"^updated: \d{4}-\d{2}-\d{2}$",
            "updated: 2025-06-01",
            adequacy.read_text(),
            flags=re.MULTILINE,
        )
        assert 1 == replaced
        adequacy.write_text(text)
        config = fresh(tmp_path, policies=policies)

        _, doc = check_json(config, "--as-of", "2025-06-01")

        warning = warnings_of(doc)["adequacy.yaml"]
        assert ("adequacy-stale", "2025-06-01", "updated", 550, 365) == dating(
            warning, "max_age_days"
        )
        assert "last updated 2025-06-01, 550 days ago (more than a year)" in str(warning["message"])

    def test_table_shows_warnings_under_the_header(self, tmp_path: Path, today: datetime) -> None:
        """The table's warnings come right after its title line, before the integrations."""
        config = fresh(tmp_path, geoip_built=today - timedelta(days=50), cloudflare_fetched=None)

        result = run("check", "--config", str(config), "--as-of", "2019-01-01")

        head = result.stdout.split("\n\n")[0].splitlines()
        assert head[0].startswith("gdpr-auditor check — as of 2019-01-01")
        assert head[1].startswith(
            "  data    GeoIP country database country.mmdb (GeoLite2-Country)"
        )
        assert "was built 2026-10-14, 50 days ago" in head[1]
        assert any(
            line.startswith("  data    IP-range file ips-v4 (cloudflare) has no build date")
            for line in head[2:]
        )
        assert result.stdout.split("\n\n")[1].startswith("crm (CRM) — 1 critical")

    @pytest.mark.parametrize(("fail_on", "status"), [("critical", 1), ("warning", 1)])
    def test_warnings_change_neither_findings_nor_exit_status(
        self, tmp_path: Path, today: datetime, fail_on: str, status: int
    ) -> None:
        """Stale and undated data give warnings, not findings: same findings, summary, status."""
        fresh_dir, stale_dir = tmp_path / "fresh", tmp_path / "stale"
        fresh_dir.mkdir()
        stale_dir.mkdir()
        good = fresh(fresh_dir)
        stale = fresh(
            stale_dir,
            geoip_built=today - timedelta(days=400),
            ranges_created=today - timedelta(days=100),
            cloudflare_fetched=None,
        )

        good_result, good_doc = check_json(good, "--fail-on", fail_on)
        stale_result, stale_doc = check_json(stale, "--fail-on", fail_on)

        assert status == good_result.exit_code == stale_result.exit_code
        assert (
            good_doc["summary"]
            == stale_doc["summary"]
            == {
                "critical": 1,
                "warning": 0,
                "info": 0,
            }
        )
        assert [f["rule"] for f in good_doc["findings"]] == [  # type: ignore[attr-defined]
            f["rule"]
            for f in stale_doc["findings"]  # type: ignore[attr-defined]
        ]
        assert 3 == len(stale_doc["warnings"])  # type: ignore[arg-type]

    def test_warnings_alone_keep_exit_status_zero(self, tmp_path: Path, today: datetime) -> None:
        """Without findings, stale data still exits 0, even with --fail-on info."""
        config = fresh(tmp_path, geoip_built=today - timedelta(days=400))
        inventory = yaml.safe_load((tmp_path / "inventory.yaml").read_text())
        inventory["integrations"][0]["contract"]["dpa_signed"] = "2024-01-01"
        (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory))

        result, doc = check_json(config, "--fail-on", "info")

        assert 0 == result.exit_code
        assert [] == doc["findings"]
        assert ["geoip-stale"] == [w["kind"] for w in doc["warnings"]]  # type: ignore[attr-defined]

    @pytest.mark.parametrize("value", [0, -1, "45", True, 36501])
    def test_invalid_age_limit_is_an_error_naming_the_key(
        self, tmp_path: Path, value: object
    ) -> None:
        """geoip.max_age_days takes a whole number of days from 1 to 36500."""
        config = fresh(tmp_path, geoip={"max_age_days": value})

        result = run("check", "--config", str(config))

        assert 2 == result.exit_code
        assert "geoip.max_age_days" in result.stderr
        assert "auditor.yaml" in result.stderr


class TestGeodb:
    def test_info_marks_stale_and_fetched_data(self, tmp_path: Path, today: datetime) -> None:
        """geodb info says how each data set is dated and whether it is past the limit."""
        config = fresh(tmp_path, ranges_created=today - timedelta(days=100))

        result = run("geodb", "info", "--config", str(config), "--format", "json")

        rows = {Path(d["path"]).name: d for d in json.loads(result.stdout)["datasets"]}
        assert {
            "country.mmdb": ("build", False),
            "ip-ranges.json": ("build", True),
            "ips-v4": ("fetched", False),
        } == {name: (row["dated_by"], row["stale"]) for name, row in rows.items()}
        table = run("geodb", "info", "--config", str(config)).stdout
        assert "100.0 days old, STALE (more than 45 days)" in table
        assert "fetched 1.0 days ago" in table

    def test_update_from_a_mirror_records_the_fetch_date(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mirror: str
    ) -> None:
        """`geodb update --mirror` records each fetch beside the files, readable by all; a later
        check dates the Cloudflare list by it."""
        config = fresh(tmp_path, cloudflare_fetched=None)
        fetched_at = TODAY - timedelta(days=50)
        monkeypatch.setattr("auditor.cli.geodb.utcnow", lambda: fetched_at)

        result = run("geodb", "update", "--config", str(config), "--mirror", mirror,
                     "--provider", "cloudflare", "--format", "json")  # fmt: skip

        assert 0 == result.exit_code, result.output
        files = {Path(f["path"]).name: f for f in json.loads(result.stdout)["files"]}
        assert fetched_at.isoformat() == files["ips-v4"]["fetched"] == files["ips-v4"]["built"]
        record_path = tmp_path / "ranges" / RECORD_NAME
        record = json.loads(record_path.read_text())
        assert {
            "fetched": "2026-10-14T09:00:00+00:00",
            "url": f"{mirror.rstrip('/')}/ips-v4",
            "sha256": digest(CLOUDFLARE_V4),
        } == record["files"]["ips-v4"]
        for path in (record_path, tmp_path / "ranges" / "ips-v4"):
            assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044, path  # the daemon's user
        monkeypatch.setattr("auditor.cli.audit.utcnow", lambda: TODAY)
        _, doc = check_json(config)
        warning = warnings_of(doc)["ips-v4"]
        assert ("ip-ranges-stale", "2026-10-14", "fetched", 50) == dating(warning)


@pytest.fixture(name="mirror")
def _mirror(tmp_path: Path) -> Iterator[str]:
    """An internal mirror on loopback serving Cloudflare's two lists; yields its base URL."""
    served = tmp_path / "mirror"
    served.mkdir()
    (served / "ips-v4").write_bytes(CLOUDFLARE_V4)
    (served / "ips-v6").write_bytes(b"2001:db8:ff::/48\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class TestCore:
    def test_the_limit_day_is_fine_and_the_next_is_stale(self) -> None:
        """Data exactly max_age_days old passes; a day older warns; data built ahead warns not."""
        today = date(2026, 12, 3)
        policies = loaded_policies()

        def aged(days: int) -> DataSet:
            built = datetime(2026, 12, 3, 23, 0, tzinfo=UTC) - timedelta(days=days)
            return DataSet("ip-ranges", "gcp", "/data/cloud.json", built, 3, "build")

        warnings = data_warnings([aged(45), aged(46), aged(-2)], policies, today, 45)

        assert [("ip-ranges-stale", 46)] == [(w.kind, w.age_days) for w in warnings]

    def test_an_mmdb_without_build_time_is_of_unknown_age(self) -> None:
        """An mmdb whose metadata has no build_epoch gets an age-unknown warning of its own."""
        dataset = DataSet("geoip-country", "DBIP-Country-Lite", "/data/dbip.mmdb", None)

        [warning] = data_warnings([dataset], loaded_policies(), date(2026, 12, 3), 45)

        assert ("data-age-unknown", "dbip.mmdb", None) == (
            warning.kind,
            warning.source,
            warning.age_days,
        )
        assert "has no build time in its metadata" in warning.message

    def test_adequacy_list_a_year_old_passes_a_year_and_a_day_warns(self) -> None:
        """The adequacy list may be 365 days old; at 366 days it is stale."""
        shipped = loaded_policies()
        updated = date(2025, 12, 1)
        policies = replace(
            shipped, adequacy=shipped.adequacy.model_copy(update={"updated": updated})
        )

        on_time = data_warnings([], policies, updated + timedelta(days=365), 45)
        late = data_warnings([], policies, updated + timedelta(days=366), 45)

        assert [] == on_time
        assert [("adequacy-stale", 366, 365)] == [
            (w.kind, w.age_days, w.max_age_days) for w in late
        ]
