"""The command line end to end: a loopback DNS server, real mmdb files, exit statuses, golden JSON."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from auditor.cli import cli
from tests import helpers
from tests.conftest import DnsServerFactory
from tests.helpers import entry
from tests.mmdb import build_country_db

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "auditor.yaml"
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "example-check.json"
GOLDEN_TODAY = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

ZONE = """
$ORIGIN .
$TTL 60
api.crm.example.        A      192.0.2.10
app.crm.example.        CNAME  crm-edge.crm.example.
crm-edge.crm.example.   CNAME  d2222.cloudfront.net.
d2222.cloudfront.net.   A      198.51.100.77
mail.vendor.example.    CNAME  lb.vendor.example.
lb.vendor.example.      A      198.51.100.10
broken.vendor.example.  A      198.51.100.11
slow.vendor.example.    A      198.51.100.12
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(name="workdir")
def _workdir(tmp_path: Path) -> Path:
    build_country_db(
        tmp_path / "country.mmdb",
        {"192.0.2.0/24": "DE", "198.51.100.0/24": "US", "2001:db8::/32": "DE"},
    )
    return tmp_path


def write_config(workdir: Path, integrations: list[dict[str, object]], **dns: object) -> Path:
    return helpers.write_config(
        workdir,
        integrations,
        dns={"timeout": 0.3, "concurrency": 8, **dns},
        geoip={"country_db": "country.mmdb"},
    )


class TestCheckAgainstLoopbackDns:
    def test_findings_cdn_edges_and_failures_through_a_real_server(
        self, workdir: Path, dns_server_factory: DnsServerFactory
    ) -> None:
        """One run: an EEA endpoint, a CDN edge, an unlawful US endpoint, SERVFAIL and a timeout."""
        server = dns_server_factory(ZONE)
        server.set_behaviour("broken.vendor.example", "servfail")
        server.set_behaviour("slow.vendor.example", "timeout")
        config = write_config(
            workdir,
            [
                entry("crm", endpoints=["api.crm.example", "app.crm.example"]),
                entry(
                    "vendor",
                    endpoints=[
                        "mail.vendor.example",
                        "broken.vendor.example",
                        "slow.vendor.example",
                    ],
                ),
            ],
            nameservers=[server.address],
        )

        result = run("check", "--config", str(config), "--as-of", "2026-11-22", "--format", "json")

        assert 1 == result.exit_code, result.stderr
        doc = json.loads(result.stdout)
        found = sorted(
            (f["rule"], f["integration"], f["facet"], f["place"]) for f in doc["findings"]
        )
        assert [
            ("location-drift", "vendor", "endpoint", "US"),
            ("location-unverified", "vendor", "endpoint", "broken.vendor.example"),
            ("location-unverified", "vendor", "endpoint", "slow.vendor.example"),
            ("transfer-unsafeguarded", "vendor", "endpoint", "US"),
        ] == found
        statuses = {
            f["place"]: f["evidence"]["status"]
            for f in doc["findings"]
            if f["rule"] == "location-unverified"
        }
        assert {"broken.vendor.example": "servfail", "slow.vendor.example": "timeout"} == statuses
        edge = [p for p in doc["places"] if p["verdict"] == "edge"]
        assert [("crm", "app.crm.example")] == [(p["integration"], p["place"]) for p in edge]
        assert "cloudfront.net" in edge[0]["basis"]

    def test_clean_inventory_exits_zero_and_fail_on_lowers_the_bar(
        self, workdir: Path, dns_server_factory: DnsServerFactory
    ) -> None:
        """No critical finding exits 0; --fail-on warning turns a warning into exit 1."""
        server = dns_server_factory(ZONE)
        config = write_config(
            workdir, [entry("crm", endpoints=["api.crm.example"])], nameservers=[server.address]
        )
        drifting = write_config(
            workdir / "..",
            [entry("crm", hosting=["FR"], endpoints=["api.crm.example"])],
            nameservers=[server.address],
        )
        shutil.copy(workdir / "country.mmdb", drifting.parent / "country.mmdb")

        assert 0 == run("check", "--config", str(config)).exit_code
        assert 0 == run("check", "--config", str(drifting)).exit_code
        assert 1 == run("check", "--config", str(drifting), "--fail-on", "warning").exit_code


class TestExitStatuses:
    def test_invalid_inventory_exits_2_naming_file_entry_and_key(self, workdir: Path) -> None:
        """A bad region in the inventory is exit 2 with a message pointing at it."""
        config = write_config(workdir, [entry("crm", hosting=["aws:mars-1"])])

        result = run("check", "--config", str(config))

        assert 2 == result.exit_code
        assert "inventory.yaml:" in result.stderr
        assert "integration 'crm'" in result.stderr
        assert "hosting" in result.stderr
        assert "unknown aws region 'mars-1'" in result.stderr

    def test_bad_as_of_is_a_usage_error(self, workdir: Path) -> None:
        """--as-of must be a date."""
        config = write_config(workdir, [entry("crm")])

        assert 2 == run("check", "--config", str(config), "--as-of", "yesterday").exit_code

    @pytest.mark.parametrize("damage", ["missing", "corrupt"])
    def test_missing_or_corrupt_mmdb_exits_3(self, workdir: Path, damage: str) -> None:
        """A GeoIP database that cannot be read means the audit could not run: exit 3."""
        config = write_config(
            workdir, [entry("crm", endpoints=["api.crm.example"])], nameservers=["127.0.0.1:9"]
        )
        mmdb = workdir / "country.mmdb"
        if damage == "missing":
            mmdb.unlink()
        else:
            mmdb.write_bytes(os.urandom(2048))

        result = run("check", "--config", str(config))

        assert 3 == result.exit_code
        assert "could not run" in result.stderr
        assert "country.mmdb" in result.stderr


class TestValidate:
    def test_example_is_valid(self) -> None:
        """The shipped example validates."""
        result = run("validate", "--config", str(EXAMPLE))

        assert 0 == result.exit_code, result.stderr
        assert "13 integrations" in result.stdout

    def test_every_error_is_listed(self, workdir: Path) -> None:
        """validate lists all problems across files, and notes a configured file that is missing."""
        config = write_config(
            workdir, [entry("crm", hosting=["XX"]), entry("mail", retention="forever")]
        )
        (workdir / "country.mmdb").unlink()

        result = run("validate", "--config", str(config), "--format", "json")

        assert 2 == result.exit_code
        errors = json.loads(result.stdout)["errors"]
        assert {
            ("integration 'crm'", "hosting[0]"),
            ("integration 'mail'", "retention"),
            (None, "geoip.country_db"),
        } == {(e["entry"], e["field"]) for e in errors}
        assert all(e["line"] for e in errors)  # the configuration's own problems too


class TestExample:
    def test_golden_json(self, monkeypatch: pytest.MonkeyPatch, example_config: Path) -> None:
        """The offline example gives exactly the recorded findings and places (UPDATE_GOLDEN=1 to renew)."""
        # Data ages are measured against today: pinned, so the golden does not age with the calendar.
        monkeypatch.setattr("auditor.cli.audit.utcnow", lambda: GOLDEN_TODAY)
        result = run(
            "check", "--config", str(example_config), "--as-of", "2026-11-22", "--format", "json"
        )

        assert 1 == result.exit_code, result.stderr
        doc = json.loads(result.stdout)
        doc["audited_at"] = "<audited_at>"
        doc["data"]["tool_version"] = "<version>"
        if os.environ.get("UPDATE_GOLDEN"):
            GOLDEN.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        assert json.loads(GOLDEN.read_text()) == doc

    @pytest.mark.parametrize(
        ("day", "integration", "expected"),
        [
            ("2022-06-01", "metricly", True),
            ("2026-11-22", "metricly", False),
            ("2031-12-28", "peoplebase", True),
            ("2031-12-27", "peoplebase", False),
        ],
    )
    def test_as_of_moves_the_verdicts(
        self, day: str, integration: str, expected: bool, example_config: Path
    ) -> None:
        """The DPF-certified tool was unlawful in 2022; the UK host becomes unlawful after 2031-12-27."""
        result = run("check", "--config", str(example_config), "--as-of", day, "--format", "json")

        unlawful = {
            f["integration"]
            for f in json.loads(result.stdout)["findings"]
            if f["rule"] == "transfer-unsafeguarded"
        }
        assert expected == (integration in unlawful)

    def test_table_groups_by_integration_worst_first(self, example_config: Path) -> None:
        """The table starts with the integration with the most critical findings."""
        result = run("check", "--config", str(example_config), "--as-of", "2026-11-22")

        blocks = result.stdout.split("\n\n")
        assert blocks[1].startswith("mailrocket (MailRocket) — 4 critical, 1 warning, 2 info")
        assert "no findings" in blocks[-2]
        assert blocks[-1].startswith("28 findings: 7 critical, 15 warning, 6 info")

    def test_geodb_info_lists_the_loaded_data(self) -> None:
        """geodb info names every data set with its build date."""
        result = run("geodb", "info", "--config", str(EXAMPLE), "--format", "json")

        assert 0 == result.exit_code, result.stderr
        names = {(d["kind"], d["name"]) for d in json.loads(result.stdout)["datasets"]}
        assert {"aws", "gcp", "cloudflare"} <= {name for _, name in names}
        dated = {d["name"]: d["built"] is not None for d in json.loads(result.stdout)["datasets"]}
        # Cloudflare's list carries no date and the example records no fetch: its age is unknown.
        assert {"GeoLite2-Country": True, "aws": True, "cloudflare": False} == {
            name: dated[name] for name in ("GeoLite2-Country", "aws", "cloudflare")
        }


@pytest.mark.parametrize(
    "command",
    [
        "",
        "check",
        "validate",
        "geodb info",
        "geodb update",
        "finding",
        "finding list",
        "finding show",
        "finding waive",
        "finding unwaive",
        "db upgrade",
        "db status",
    ],
)
def test_every_verb_has_help(command: str) -> None:
    """--help works for every command."""
    result = run(*command.split(), "--help")

    assert 0 == result.exit_code
    assert "Usage:" in result.stdout


class TestGeodbInfo:
    @pytest.fixture(name="config")
    def _config(self, workdir: Path) -> Path:
        """A configuration whose AWS range file has a new region, an unknown border group, a
        known Local Zone, a left-out region and an ordinary region."""
        prefixes = [
            ("192.0.2.0/26", "eu-central-1", "eu-central-1"),
            ("192.0.2.64/26", "us-east-1", "us-east-1-qro-1"),
            ("192.0.2.128/27", "us-east-1", "us-east-1-xyz-1"),
            ("192.0.2.160/27", "us-east-1", "us-east-1-xyz-1"),
            ("198.51.100.0/26", "ap-newcity-1", "ap-newcity-1"),
            ("198.51.100.64/26", "us-south-1", "us-south-1"),
            ("203.0.113.0/26", "GLOBAL", "GLOBAL"),
        ]
        document = {
            "syncToken": "1",
            "createDate": "2026-11-30-12-00-00",
            "prefixes": [
                {"ip_prefix": p, "region": r, "service": "EC2", "network_border_group": g}
                for p, r, g in prefixes
            ],
            "ipv6_prefixes": [],
        }
        (workdir / "ranges").mkdir()
        (workdir / "ranges" / "ip-ranges.json").write_text(json.dumps(document))
        path = workdir / "auditor.yaml"
        path.write_text(
            "inventory: [inventory.yaml]\ngeoip: {country_db: country.mmdb}\nip_ranges: ranges\n"
        )
        return path

    def test_json_lists_regions_and_border_groups_the_tables_do_not_map(self, config: Path) -> None:
        """A new region, an unknown border group and a left-out region are listed, with counts
        and the reason a region was left out; mapped regions, known zones and GLOBAL are not."""
        result = run("geodb", "info", "--config", str(config), "--format", "json")

        assert 0 == result.exit_code, result.stderr
        assert [
            {"provider": "aws", "name": "ap-newcity-1", "region": "ap-newcity-1",
             "border_group": False, "entries": 1, "left_out": None},
            {"provider": "aws", "name": "us-east-1-xyz-1", "region": "us-east-1",
             "border_group": True, "entries": 2, "left_out": None},
            {"provider": "aws", "name": "us-south-1", "region": "us-south-1",
             "border_group": False, "entries": 1,
             "left_out": "seen in ip-ranges.json in Oct 2026, not in the SDK's region list; "
                         "location not published"},
        ] == json.loads(result.stdout)["unmapped"]  # fmt: skip

    def test_table_names_them_under_a_heading(self, config: Path) -> None:
        """The table output ends with the unmapped names, each saying what it is."""
        result = run("geodb", "info", "--config", str(config))

        assert 0 == result.exit_code, result.stderr
        tail = result.stdout.split("Not in the region tables (located by GeoIP alone):\n")[1]
        lines = tail.splitlines()
        assert 3 == len(lines)
        assert lines[0].split() == ["aws", "ap-newcity-1", "region,", "1", "entries"]
        assert "us-east-1-xyz-1" in lines[1] and "border group of us-east-1, 2 entries" in lines[1]
        assert "us-south-1" in lines[2] and "left out: seen in ip-ranges.json" in lines[2]

    def test_nothing_is_listed_when_every_region_is_mapped(self) -> None:
        """The shipped example's range files are fully mapped: no list, no heading."""
        result = run("geodb", "info", "--config", str(EXAMPLE), "--format", "json")
        assert [] == json.loads(result.stdout)["unmapped"]
        assert (
            "Not in the region tables" not in run("geodb", "info", "--config", str(EXAMPLE)).stdout
        )


class TestGeodbUpdate:
    @pytest.fixture(name="mirror")
    def _mirror(self, tmp_path: Path) -> Iterator[tuple[Path, str]]:
        """A loopback HTTP server serving AWS's range file only: (its directory, its URL)."""
        import functools
        import http.server
        import threading

        served = tmp_path / "mirror"
        served.mkdir()
        shutil.copy(ROOT / "geodb" / "ip-ranges" / "ip-ranges.json", served / "ip-ranges.json")
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
        handler.log_message = lambda *args: None  # type: ignore[attr-defined]
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield served, f"http://127.0.0.1:{server.server_address[1]}/"
        server.shutdown()
        server.server_close()

    def test_mirror_download_keeps_old_files_on_failure(
        self, tmp_path: Path, mirror: tuple[Path, str]
    ) -> None:
        """Files the mirror serves are written; a file it lacks is reported and exit status is 3."""
        served, url = mirror
        ranges = tmp_path / "ranges"
        ranges.mkdir()
        (ranges / "cloud.json").write_text('{"prefixes": []}')
        config = tmp_path / "auditor.yaml"
        config.write_text("inventory: [inv.yaml]\nip_ranges: ranges\n")

        result = run("geodb", "update", "--config", str(config), "--mirror", url,
                     "--provider", "aws", "--provider", "gcp", "--format", "json")  # fmt: skip

        assert 3 == result.exit_code
        files = {f["provider"]: f for f in json.loads(result.stdout)["files"]}
        assert files["aws"]["ok"] and files["aws"]["entries"] > 0
        assert not files["gcp"]["ok"]
        assert (ranges / "ip-ranges.json").read_bytes() == (served / "ip-ranges.json").read_bytes()
        assert '{"prefixes": []}' == (ranges / "cloud.json").read_text()

    def test_files_are_readable_by_the_daemon_whatever_the_umask(
        self, tmp_path: Path, mirror: tuple[Path, str]
    ) -> None:
        """Under root's usual umask 077, `geodb update` still creates its directories 0755 and
        writes its files 0644: the systemd unit's dynamic user must read them."""
        _, url = mirror
        config = tmp_path / "auditor.yaml"
        config.write_text("inventory: [inv.yaml]\nip_ranges: data/ranges\n")
        previous = os.umask(0o077)
        try:
            result = run("geodb", "update", "--config", str(config), "--mirror", url,
                         "--provider", "aws", "--format", "json")  # fmt: skip
        finally:
            os.umask(previous)

        assert 0 == result.exit_code, result.output
        modes = {
            str(path.relative_to(tmp_path)): stat.S_IMODE(path.stat().st_mode)
            for path in [tmp_path / "data", *sorted((tmp_path / "data").rglob("*"))]
        }
        assert {
            "data": 0o755,
            "data/ranges": 0o755,
            "data/ranges/fetched.json": 0o644,
            "data/ranges/ip-ranges.json": 0o644,
        } == modes
