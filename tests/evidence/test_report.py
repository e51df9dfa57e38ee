"""`report`: the evidence report of a quarter of real audits, in JSON, CSV and HTML (rendered by Chromium)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import Result
from sqlalchemy import delete

from auditor.evidence.report import CSV_COLUMNS
from auditor.store import StateStore
from auditor.store.schema import evidence as evidence_table
from auditor.store.schema import place_checks
from tests.cli.test_evidence_cli import (
    HOSTILE_NAME,
    KEY,
    R1,
    R2,
    ZONE,
    Scenario,
    build_scenario,
    chain,
    execute,
    run,
)
from tests.conftest import DnsServerFactory

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "report-schema.json"
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "report.json"
QUARTER = ("--from", "2026-01-01", "--to", "2026-03-31")


@pytest.fixture(name="scenario")
def _scenario(tmp_path: Path, dns_server_factory: DnsServerFactory) -> Scenario:
    """The audited quarter on SQLite."""
    server = dns_server_factory(ZONE)
    return build_scenario(tmp_path, server.address, f"sqlite:///{tmp_path / 'state.db'}")


def report(scenario: Scenario, *args: str, key: str | None = KEY) -> Result:
    return run("report", "--config", str(scenario.config_path), *args, env=scenario.env(key))


def report_json(scenario: Scenario, *args: str) -> dict[str, Any]:
    result = report(scenario, *QUARTER, "--format", "json", *args)
    assert 0 == result.exit_code, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def validate(document: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)


def finding(document: dict[str, Any], integration: str, facet: str | None) -> dict[str, Any]:
    (found,) = [
        f
        for f in document["findings"]["items"]
        if f["integration"] == integration and f["facet"] == facet
    ]
    return found


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class TestContents:
    @pytest.fixture(name="any_scenario")
    def _any_scenario(
        self, tmp_path: Path, dns_server_factory: DnsServerFactory, state_url: str
    ) -> Scenario:
        """The audited quarter on SQLite and on PostgreSQL."""
        server = dns_server_factory(ZONE)
        return build_scenario(tmp_path, server.address, state_url)

    def test_the_quarter_report_says_what_was_checked_found_and_done(
        self, any_scenario: Scenario
    ) -> None:
        """Period, runs, data dates, places of the period's latest run, findings with waiver and
        resolution, retention sums, consent counts and the verified chain head."""
        doc = report_json(any_scenario)
        records = chain(any_scenario)
        last_of_quarter = next(r for r in records if r.kind == "consent-import")

        assert ("2026-01-01", "2026-03-31", "2026-03-31") == (
            doc["period"]["from"],
            doc["period"]["to"],
            doc["as_of"],
        )
        assert None is doc["generated_at"]
        assert (3, 2, 1) == (
            doc["runs"]["total"],
            doc["runs"]["outcomes"]["success"],
            doc["runs"]["outcomes"]["error"],
        )
        assert "no nameserver answered" in doc["runs"]["problems"][0]["error"]
        assert any_scenario.run_ids[1] == doc["places"]["run_id"]
        assert stamp(R2) == doc["places"]["run_started_at"]
        assert [("geoip-country", "GeoLite2-Country")] == [
            (d["kind"], d["name"]) for d in doc["datasets"]["items"]
        ]
        assert doc["datasets"]["items"][0]["built"].endswith("Z")
        places = {
            (group["integration"], p["facet"], p["place"]): (p["verdict"], p["basis"])
            for group in doc["places"]["integrations"]
            for p in group["places"]
        }
        assert "adequate" == places[("stats", "hosting", "US")][0]
        assert "2023/1795" in places[("stats", "hosting", "US")][1]
        assert ("safeguarded", "standard contractual clauses (Art. 46(2)(c))") == places[
            ("helpdesk", "hosting", "US")
        ]
        assert ("unsafeguarded", "none") == places[("mail", "endpoint", "US")]
        assert ("eea", "EEA") == places[("crm", "subprocessor", "cloud/aws:eu-central-1")]

        waived = finding(doc, "mail", "hosting")
        assert ("waived", True) == (waived["status_at_end"], waived["waived_in_period"])
        assert {
            "reason": "SCCs being signed <b>now</b>",
            "approver": "Dana DPO",
            "expires": "2026-06-30",
            "state_at_end": "active",
        } == {k: waived["waiver"][k] for k in ("reason", "approver", "expires", "state_at_end")}
        resolved = finding(doc, "helpdesk", "hosting")
        assert (stamp(R1), stamp(R2), "resolved") == (
            resolved["first_seen"],
            resolved["resolved_at"],
            resolved["status_at_end"],
        )
        assert ["new", "resolved"] == [e["change"] for e in resolved["events"]]
        assert {"opened": 6, "resolved": 1, "waived": 1, "open_at_end": 4, "waived_at_end": 1} == (
            doc["findings"]["counts"]
        )
        assert [("crm-contacts", "delete", 3, 150, 1, 40)] == [
            (
                r["policy"],
                r["action"],
                r["batches"],
                r["rows"],
                r["undetermined"],
                r["undetermined_at_most"],
            )
            for r in doc["retention"]
        ]
        assert [("mail", 1, 0, 1000, 12, 3), ("stats", 0, 1, 0, 0, 0)] == [
            (
                c["integration"],
                c["checks"],
                c["failures"],
                c["shared"],
                c["missing"],
                c["withdrawn"],
            )
            for c in doc["consent"]["checks"]
        ]
        assert [
            {"purpose": "newsletter", "imports": 1, "read": 40, "inserted": 38, "updated": 2}
        ] == doc["consent"]["imports"]
        assert (True, True) == (doc["evidence"]["verified"], doc["evidence"]["hmac_checked"])
        assert records[-1].hash == doc["evidence"]["head"]["hash"]
        assert last_of_quarter.hash == doc["evidence"]["period"]["last"]["hash"]
        validate(doc)

    def test_adequacy_decisions_follow_the_as_of_date(self, scenario: Scenario) -> None:
        """The decisions listed are those in force on --as-of: none for the US between the
        Privacy Shield's invalidation and the DPF, the DPF after it."""
        now = report_json(scenario)
        gap = report_json(scenario, "--as-of", "2021-06-01")

        def us(doc: dict[str, Any]) -> list[str]:
            return [
                d["id"] for d in doc["policy_data"]["decisions_in_force"] if d["country"] == "US"
            ]

        assert ["us-dpf"] == us(now)
        assert [] == us(gap)
        assert "2021-06-01" == gap["as_of"]

    def test_inventory_and_backups_come_from_the_configuration(self, scenario: Scenario) -> None:
        """The inventory snapshot and the backup table show what the inventory declares."""
        doc = report_json(scenario)
        inventory = {i["id"]: i for i in doc["inventory"]}
        backups = {b["integration"]: b for b in doc["backups"]}

        assert ["cloud", "crm", "helpdesk", "mail", "stats"] == list(inventory)
        assert ["scc"] == inventory["helpdesk"]["transfer"]["safeguards"]
        assert inventory["stats"]["transfer"]["dpf_certified"]
        assert ([{"place": "aws:us-west-2", "country": "US"}], "P10Y", "P2Y") == (
            backups["mail"]["regions"],
            backups["mail"]["retention"],
            backups["mail"]["data_retention"],
        )

    def test_a_period_without_records_is_an_empty_valid_report(self, scenario: Scenario) -> None:
        """A period before the first audit: no runs, places, findings, retention or consent."""
        result = report(scenario, "--from", "2025-01-01", "--to", "2025-03-31", "--format", "json")
        doc = json.loads(result.stdout)

        assert 0 == result.exit_code
        assert (0, None, [], [], []) == (
            doc["runs"]["total"],
            doc["places"]["run_id"],
            doc["findings"]["items"],
            doc["retention"],
            doc["consent"]["checks"],
        )
        assert None is doc["evidence"]["period"]["last"]
        validate(doc)

    def test_a_revoked_waiver_shows_as_revoked_and_the_finding_as_open(
        self, scenario: Scenario
    ) -> None:
        """A waiver revoked in the period counts as waived in it, revoked at its end."""
        waived = finding(report_json(scenario), "mail", "hosting")
        store = StateStore.open(scenario.state_url, evidence_key=KEY.encode())
        try:
            store.unwaive(waived["id"], by="Dana DPO", now=datetime(2026, 3, 10, tzinfo=UTC))
        finally:
            store.close()

        after = finding(report_json(scenario), "mail", "hosting")

        assert ("open", "revoked", "2026-03-10T00:00:00Z") == (
            after["status_at_end"],
            after["waiver"]["state_at_end"],
            after["waiver"]["revoked_at"],
        )

    def test_pruned_place_checks_are_said_to_be_pruned(self, scenario: Scenario) -> None:
        """When the period's latest run has lost its place checks, the report says so."""
        execute(scenario, delete(place_checks).where(place_checks.c.run_id == scenario.run_ids[1]))

        doc = report_json(scenario)

        assert (True, []) == (doc["places"]["pruned"], doc["places"]["integrations"])


def _add_bytes(a: bytes, b: bytes) -> bytes:
    """Bytewise (a + b) mod 256 of two rows at once, through big integers with no carry across
    bytes: PNG's Up filter, which blank rows use, without a Python loop per byte."""
    low = int.from_bytes(b"\x7f" * len(a), "big")
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    return (((x & low) + (y & low)) ^ ((x ^ y) & ~low)).to_bytes(len(a), "big")


def _unfilter(kind: int, line: bytes, prior: bytes, bpp: int) -> bytes:
    if kind == 0:
        return line
    if kind == 2:
        return _add_bytes(line, prior)
    if kind == 1:  # Sub: a running sum per channel
        out = bytearray(len(line))
        for channel in range(bpp):
            out[channel::bpp] = bytes(v & 0xFF for v in accumulate(line[channel::bpp]))
        return bytes(out)
    out = bytearray(line)
    for i in range(len(out)):
        left = out[i - bpp] if i >= bpp else 0
        up = prior[i]
        if kind == 3:
            out[i] = (out[i] + ((left + up) >> 1)) & 0xFF
            continue
        corner = prior[i - bpp] if i >= bpp else 0  # Paeth
        guess = left + up - corner
        far_left, far_up, far_corner = abs(guess - left), abs(guess - up), abs(guess - corner)
        if far_left <= far_up and far_left <= far_corner:
            out[i] = (out[i] + left) & 0xFF
        elif far_up <= far_corner:
            out[i] = (out[i] + up) & 0xFF
        else:
            out[i] = (out[i] + corner) & 0xFF
    return bytes(out)


def png_colours(path: Path) -> Counter[bytes]:
    """Pixel colour (RGB bytes) -> count, decoding an 8-bit non-interlaced RGB(A) PNG with the
    standard library only."""
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    at, header, compressed = 8, b"", bytearray()
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind == b"IHDR":
            header = data[at + 8 : at + 8 + length]
        elif kind == b"IDAT":
            compressed += data[at + 8 : at + 8 + length]
        at += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (8, 0) == (depth, interlace) and colour_type in (2, 6)
    bpp = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(bytes(compressed)), width * bpp
    prior, colours = bytes(stride), Counter[bytes]()
    for y in range(height):
        start = y * (stride + 1)
        prior = _unfilter(raw[start], raw[start + 1 : start + 1 + stride], prior, bpp)
        colours.update(prior[i : i + 3] for i in range(0, stride, bpp))
    return colours


class TestDeterminism:
    @pytest.mark.parametrize("output_format", ["html", "json", "csv"])
    def test_two_reports_over_the_same_records_are_identical(
        self, scenario: Scenario, output_format: str, tmp_path: Path
    ) -> None:
        """Rendering twice, once to a file and once to standard output, gives the same bytes."""
        out = tmp_path / f"report.{output_format}"

        first = report(scenario, *QUARTER, "--format", output_format, "--out", str(out))
        second = report(scenario, *QUARTER, "--format", output_format)

        assert (0, 0) == (first.exit_code, second.exit_code)
        assert out.read_bytes() == second.stdout_bytes
        assert len(second.stdout_bytes) > 500
        assert [out.name] == [p.name for p in tmp_path.glob("report.*")]

    def test_generated_at_is_printed_only_when_given(self, scenario: Scenario) -> None:
        """--generated-at is the only time the report prints that no record holds."""
        doc = report_json(scenario, "--generated-at", "2026-04-01T10:00:00+02:00")

        assert "2026-04-01T08:00:00Z" == doc["generated_at"]
        assert 2 == report(scenario, *QUARTER, "--generated-at", "2026-04-01T10:00").exit_code


class TestGolden:
    def test_the_quarter_report_is_the_recorded_document(self, scenario: Scenario) -> None:
        """With --as-of and --generated-at fixed, the JSON report of the scenario's quarter is
        exactly the recorded one (UPDATE_GOLDEN=1 to renew)."""
        doc = report_json(
            scenario, "--as-of", "2026-03-31", "--generated-at", "2026-04-01T08:00:00Z"
        )
        # The configuration names the loopback DNS server's port and the temporary state
        # database, both new each run, so its digest differs each run (the runs carry it too).
        digest = doc["tool"]["config_digest"]
        doc["tool"]["config_digest"] = "<config digest>"
        for counted in doc["runs"]["config_digests"]:
            if counted["value"] == digest:
                counted["value"] = "<config digest>"
        # The chain's hashes cover the audit-run records, which hold that digest and the version.
        doc["evidence"]["head"]["hash"] = "<hash>"
        doc["evidence"]["period"]["last"]["hash"] = "<hash>"
        # The version changes with each release, not with the records.
        doc["tool"]["version"] = "<version>"
        for counted in doc["runs"]["tool_versions"]:
            counted["value"] = "<version>"
        if os.environ.get("UPDATE_GOLDEN"):
            GOLDEN.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        assert json.loads(GOLDEN.read_text()) == doc


class TestCsv:
    def test_one_row_per_finding_with_lifecycle_and_waiver_columns(
        self, scenario: Scenario
    ) -> None:
        """The CSV has the documented columns; the waived and the resolved finding carry their
        waiver and dates."""
        result = report(scenario, *QUARTER, "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(result.stdout, newline="")))

        assert 0 == result.exit_code
        assert list(CSV_COLUMNS) == list(rows[0].keys())
        assert 6 == len(rows)
        waived = next(r for r in rows if r["status_at_end"] == "waived")
        resolved = next(r for r in rows if r["status_at_end"] == "resolved")
        assert ("SCCs being signed <b>now</b>", "Dana DPO", "2026-06-30", "active") == (
            waived["waiver_reason"],
            waived["waiver_approver"],
            waived["waiver_expires"],
            waived["waiver_state"],
        )
        assert ("helpdesk", stamp(R1), stamp(R2), "yes") == (
            resolved["integration"],
            resolved["first_seen"],
            resolved["resolved_at"],
            resolved["resolved_in_period"],
        )


WEB_AT = datetime(2026, 3, 4, 5, 0, tzinfo=UTC)
DIGEST = "ab" * 32


def web_run(directory: str) -> dict[str, Any]:
    """A `web-run` evidence record as the web job writes it."""
    files = {
        kind: {"name": f"{directory}/shop/0123456789ab-before.{ext}", "sha256": DIGEST, "size": 10}
        for kind, ext in (("record", "json"), ("screenshot", "png"), ("har", "har"))
    }
    return {
        "directory": directory,
        "as_of": "2026-03-04",
        "started_at": "2026-03-04T05:00:00Z",
        "complete": False,
        "sites": [
            {
                "site": "shop",
                "failure": "1 of 1 pages not observed completely",
                "pages": [
                    {
                        "page": "0123456789ab",
                        "url": "https://www.shop.example/",
                        "states": {
                            "before": {"failure": None, "files": files},
                            "reject": {"failure": "HTTP 503", "files": {**files, "har": None}},
                        },
                    }
                ],
            }
        ],
        "third_parties": [
            {
                "party": "test-tracker",
                "name": "Tracker <Test> Corp.",
                "declared": False,
                "vendor": "test-tracker",
                "verdict": "unsafeguarded",
                "hosts": ["collect.tracker.example"],
                "places": [{"place": "US", "country": "US", "verdict": "unsafeguarded",
                            "basis": "none", "via": ["headquarters (catalogue)"]}],
                "sites": {"shop": {"states": ["before"], "before_choice": ["before"],
                                   "essential_hosts": []}},
            }
        ],
        "probes_failed": {"web-site:shop": "1 of 1 pages not observed completely"},
        "findings": 3,
    }  # fmt: skip


class TestWebsites:
    def test_the_periods_latest_web_run_is_the_websites_section(self, scenario: Scenario) -> None:
        """The run's files with their digests, the third parties with their verdicts and where
        they acted before consent; a later run (after the period) and an earlier one are not
        the section's."""
        store = StateStore.open(scenario.state_url, evidence_key=KEY.encode())
        try:
            for directory, at in (
                ("earlier", WEB_AT - timedelta(days=1)),
                ("20260304T050000Z", WEB_AT),
                ("after", R2 + timedelta(days=90)),
            ):
                store.append_evidence("web-run", web_run(directory), at)  # fmt: skip
        finally:
            store.close()
        doc = report_json(scenario)
        web = doc["websites"]
        assert (web["run"]["directory"], web["run"]["recorded_at"]) == (
            "20260304T050000Z", "2026-03-04T05:00:00Z",
        )  # fmt: skip
        assert web["run"]["complete"] is False
        (page,) = web["sites"][0]["pages"]
        before, reject = page["states"]
        assert before["record"]["sha256"] == DIGEST and reject["har"] is None
        assert reject["failure"] == "HTTP 503"
        tracker = web["third_parties"][0]
        assert (tracker["verdict"], tracker["sites"]) == (
            "unsafeguarded", [{"site": "shop", "states": ["before"], "before_choice": ["before"]}],
        )  # fmt: skip
        validate(doc)
        page_html = report(scenario, *QUARTER, "--format", "html").stdout
        assert '<section id="websites">' in page_html and DIGEST in page_html
        assert "Tracker &lt;Test&gt; Corp." in page_html

    def test_a_period_without_web_run_says_so(self, scenario: Scenario) -> None:
        doc = report_json(scenario)
        assert doc["websites"] == {"run": None, "sites": [], "third_parties": [],
                                   "probes_failed": []}  # fmt: skip
        page_html = report(scenario, *QUARTER, "--format", "html").stdout
        assert "No web run was recorded in the period" in page_html


class TestHtml:
    def test_everything_is_escaped_and_nothing_is_fetched(self, scenario: Scenario) -> None:
        """An integration named with a <script> tag and a waiver reason with markup appear as
        text; the page has no script, no external asset and no link off the page."""
        result = report(scenario, *QUARTER, "--format", "html")
        page = result.stdout

        assert 0 == result.exit_code
        assert "<script" not in page.lower()
        assert "Mail &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in page
        assert "SCCs being signed &lt;b&gt;now&lt;/b&gt;" in page
        assert HOSTILE_NAME not in page
        for external in ("src=", "http://", "https://", "@import", "url("):
            assert external not in page
        assert "@media print" in page and "table-header-group" in page

    def test_a_broken_chain_is_reported_and_warned_about(self, scenario: Scenario) -> None:
        """With a record deleted the report is still written, says the chain is broken, and
        warns on standard error."""
        execute(scenario, delete(evidence_table).where(evidence_table.c.seq == 2))

        result = report(scenario, *QUARTER, "--format", "html")

        assert 0 == result.exit_code
        assert "did NOT verify" in result.stdout
        assert "evidence chain did not verify" in result.stderr

    def test_chromium_renders_it_to_a_pdf_with_its_sections(
        self, scenario: Scenario, tmp_path: Path
    ) -> None:
        """Headless Chromium prints the report to an A4 PDF that opens with a cover (title,
        period, summary, table of contents), holds the integrations and the findings, and has
        no near-empty page but the last; on screen it is a page that is not blank."""
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        pdftotext = shutil.which("pdftotext")
        missing = [
            name for name, path in (("chromium", chromium), ("pdftotext", pdftotext)) if not path
        ]
        if missing:
            reason = (
                f"{' and '.join(missing)} not installed (apt-get install chromium poppler-utils)"
            )
            if os.environ.get("GDPR_AUDITOR_REQUIRE_SERVICES") == "1":
                pytest.fail(f"GDPR_AUDITOR_REQUIRE_SERVICES=1 but {reason}")
            pytest.skip(reason)
        assert chromium is not None and pdftotext is not None
        page, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
        assert 0 == report(scenario, *QUARTER, "--format", "html", "--out", str(page)).exit_code

        subprocess.run(
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                f"--user-data-dir={tmp_path / 'profile'}", f"--print-to-pdf={pdf}", page.as_uri(),
            ],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        text = subprocess.run(
            [pdftotext, "-layout", str(pdf), "-"], check=True, capture_output=True, timeout=60
        ).stdout.decode()

        shot = tmp_path / "report.png"
        subprocess.run(
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                f"--user-data-dir={tmp_path / 'screen-profile'}", f"--screenshot={shot}",
                "--window-size=1200,1600", page.as_uri(),
            ],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        colours = png_colours(shot)
        pixels = sum(colours.values())
        inked = pixels - colours[b"\xff\xff\xff"]

        assert 1200 * 1600 == pixels
        assert len(colours) > 16  # text is anti-aliased: many shades, not one flat fill
        assert inked > pixels // 100, f"{inked} of {pixels} pixels are not white"
        assert pdf.read_bytes().startswith(b"%PDF")
        assert pdf.stat().st_size > 20_000
        for expected in (
            "GDPR evidence report",
            "Places and transfers",
            "Still open at the end of the period",
            "Mail <script>alert('x')</script> & Co",
            "Helpdesk",
            "unsafeguarded",
            "Dana DPO",
            "crm-contacts",
            "could not be accounted for",
        ):
            assert expected in " ".join(text.split())
        pages = [[line.strip() for line in page.splitlines() if line.strip()] for page in
                 text.rstrip("\f").split("\f")]  # fmt: skip
        cover, *rest = pages
        # The cover: the title, the period, the summary and the table of contents, alone.
        assert "GDPR evidence report" in cover[0]
        assert any(line.startswith("Summary:") for line in cover)
        contents = cover[cover.index("Contents") + 1 :]
        assert [
            "1. Tool, configuration and data", "2. Inventory", "3. Places and transfers",
            "4. Findings", "5. Retention", "6. Consent checks", "7. Websites", "8. Backups",
            "9. Audit runs", "10. Evidence chain",
        ] == [" ".join(line.split()) for line in contents]  # fmt: skip
        # The sections follow, numbered as in the contents; none is on the cover.
        body = "\n".join("\n".join(page) for page in rest)
        positions = [body.find(f"{n}. {title}") for n, title in enumerate(
            ["Tool, configuration and data", "Inventory", "Places and transfers", "Findings",
             "Retention", "Consent checks", "Websites", "Backups", "Audit runs",
             "Evidence chain"], start=1)]  # fmt: skip
        assert -1 not in positions and positions == sorted(positions)
        # No page but the last is near empty: small sections share pages, none is forced alone.
        lines = [len(page) for page in rest]
        assert all(n >= 15 for n in lines[:-1]), lines


class TestUsage:
    def test_from_after_to_is_bad_usage(self, scenario: Scenario) -> None:
        """--from after --to exits 2."""
        result = report(scenario, "--from", "2026-03-31", "--to", "2026-01-01")

        assert 2 == result.exit_code

    def test_an_unwritable_out_path_exits_2(self, scenario: Scenario, tmp_path: Path) -> None:
        """A report to a directory that does not exist exits 2 and names the path."""
        target = tmp_path / "missing" / "report.html"

        result = report(scenario, *QUARTER, "--out", str(target))

        assert 2 == result.exit_code
        assert "missing" in result.stderr

    def test_period_names_a_calendar_quarter(self, scenario: Scenario) -> None:
        """`--period 2026-Q1` is the same report as `--from 2026-01-01 --to 2026-03-31`."""
        named = report(scenario, "--period", "2026-Q1", "--format", "json")
        dated = report(scenario, *QUARTER, "--format", "json")

        assert (0, 0) == (named.exit_code, dated.exit_code), named.output
        assert named.stdout == dated.stdout

    def test_last_quarter_is_counted_from_today(
        self, scenario: Scenario, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`--period last-quarter` on 2026-05-10 is 2026-Q1."""
        monkeypatch.setattr("auditor.cli.report.utcnow", lambda: datetime(2026, 5, 10, tzinfo=UTC))

        doc = json.loads(report(scenario, "--period", "last-quarter", "--format", "json").stdout)

        assert {"from": "2026-01-01", "to": "2026-03-31"} == {
            k: doc["period"][k] for k in ("from", "to")
        }

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (("--period", "2026", "--from", "2026-01-01"), "either --period or --from and --to"),
            ((), "give the period: --period (last-month, last-quarter"),
            (("--from", "2026-01-01"), "--to is missing"),
            (("--period", "2026-Q5"), "Invalid value for --period: expected last-month"),
            (("--period", "0000"), "--period"),
        ],
    )
    def test_period_usage_errors_exit_2_saying_what_to_give(
        self, scenario: Scenario, args: tuple[str, ...], message: str
    ) -> None:
        """Both forms, neither, half a range or an unknown period: exit 2 with one message."""
        result = report(scenario, *args)

        assert 2 == result.exit_code
        assert message in result.stderr

    def test_before_any_audit_it_says_to_run_check_first(self, tmp_path: Path) -> None:
        """With no state database yet, one line says to run `check` first (exit 3, like every
        command reading a state database that is not there)."""
        (tmp_path / "inventory.yaml").write_text("integrations: []\n")
        config = tmp_path / "auditor.yaml"
        config.write_text("inventory: [inventory.yaml]\ndatabase: {url: 'sqlite:///state.db'}\n")

        result = run("report", "--config", str(config), "--period", "last-month")

        assert 3 == result.exit_code
        expected = (
            f"gdpr-auditor: the state database sqlite:///{tmp_path / 'state.db'} does not exist "
            f"yet: run `gdpr-auditor check --config {config}` (or start the daemon) first"
        )
        assert [expected] == result.stderr.splitlines()
        assert not (tmp_path / "state.db").exists()
