"""`register`: the inventory as an Art. 30 record of processing activities, with transfers judged."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner, Result

from auditor.cli import cli
from auditor.core.model import Integration
from auditor.evidence.register import CSV_COLUMNS, build_register, register_csv, register_json
from tests.helpers import integrations_from, minimal, sample, shipped_policies, write_config

TODAY = date(2026, 11, 22)

ENTRIES = [
    sample("crm", subprocessors=["cloud", "sendy"], data_categories=["contact", "identity"]),
    sample("helpdesk", transfer={"safeguards": ["scc"]}),
    sample("stats"),
    sample(
        "mail",
        backups={
            "regions": ["aws:us-west-2", "aws:eu-west-1"],
            "retention": "P10Y",
            "type": "incremental",
            "generations": {"daily": "P7D", "monthly": "P12M"},
            "restore_tested": "2026-05-04",
            "documented": {"at": "https://wiki.example/backup", "reviewed": "2026-02-01"},
        },
    ),
    sample("cloud"),  # not DPF-certified, hosting in Frankfurt
    minimal(
        "sendy",
        name="Sendy",
        vendor="Sendy Inc.",
        category="email-marketing",
        hosting=["US"],
        transfer={"dpf_certified": True},
    ),
]


def inventory() -> list[Integration]:
    return integrations_from(yaml.safe_dump({"integrations": ENTRIES}))


def activities(on: date = TODAY) -> dict[str, dict[str, Any]]:
    document = register_json(
        build_register(inventory(), shipped_policies(), on), on, shipped_policies()
    )
    return {activity["id"]: activity for activity in document["activities"]}


def transfers(activity: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            t["facet"],
            t["place"],
            t["country"],
            t["verdict"],
            t["decision"],
            t["safeguards"],
            t["via"],
        )
        for t in activity["transfers"]
    ]


class TestMapping:
    def test_a_us_transfer_under_sccs(self) -> None:
        """A US host without DPF certification but with SCCs is a safeguarded transfer, its
        basis the SCCs."""
        helpdesk = activities()["helpdesk"]

        assert [("hosting", "US", "US", "safeguarded", None, ["scc"], None)] == transfers(helpdesk)
        assert "standard contractual clauses" in helpdesk["transfers"][0]["basis"]
        assert ["health"] == helpdesk["special_categories"]

    def test_a_dpf_certified_transfer_cites_the_decision(self) -> None:
        """A DPF-certified US recipient is covered by the DPF decision in force on the date."""
        stats = activities()["stats"]

        assert [("hosting", "US", "US", "adequate", "us-dpf", [], None)] == transfers(stats)
        assert "2023/1795" in stats["transfers"][0]["basis"]
        assert stats["transfers"][0]["dpf_certified"]

    def test_transfers_are_judged_on_the_as_of_date(self) -> None:
        """Between the Privacy Shield's end and the DPF, the same US recipient had no cover."""
        stats = activities(date(2021, 6, 1))["stats"]

        assert [("hosting", "US", "US", "unsafeguarded", None, [], None)] == transfers(stats)

    def test_backup_locations_and_their_transfers(self) -> None:
        """Backup locations and retention are listed; a US backup region is a transfer, an EEA
        one is not."""
        mail = activities()["mail"]

        assert {
            "locations": [
                {"place": "aws:us-west-2", "country": "US"},
                {"place": "aws:eu-west-1", "country": "IE"},
            ],
            "retention": "P10Y",
            "type": "incremental",
            "generations": {"daily": "P7D", "monthly": "P12M"},
            "effective_retention": "P10Y",
            "restore_tested": "2026-05-04",
            "documented": {"at": "https://wiki.example/backup", "reviewed": "2026-02-01"},
        } == mail["backups"]
        assert "P2Y" == mail["retention"]
        assert [("backup", "aws:us-west-2", "US", "unsafeguarded", None, [], None)] == transfers(
            mail
        )

    def test_recipients_sub_processors_and_their_transfers(self) -> None:
        """The recipient is the vendor in its role; sub-processors are listed, and a
        sub-processor's third-country place is a transfer under its own safeguards."""
        crm = activities()["crm"]

        assert {
            "vendor": "Example CRM GmbH",
            "role": "processor",
            "country": "DE",
            "country_source": "inventory",
            "jurisdiction": {
                "verdict": "eea",
                "basis": "EEA",
                "foreign_jurisdiction": False,
                "laws": [],
            },
        } == crm["recipient"]
        assert ["contact", "identity"] == crm["data_categories"]
        assert ["cloud", "sendy"] == [sub["id"] for sub in crm["subprocessors"]]
        assert [
            ("support", "IN", "IN", "safeguarded", None, ["scc"], None),
            ("subprocessor", "US", "US", "adequate", "us-dpf", [], "sendy"),
        ] == transfers(crm)

    def test_a_us_vendor_holding_data_in_the_eea_is_a_foreign_jurisdiction(self) -> None:
        """A US vendor without DPF certification hosting in Frankfurt: nothing is transferred,
        but the register names the laws that can compel it; where data already leaves the EEA,
        the transfers speak and the vendor is not judged."""
        cloud, mail = activities()["cloud"], activities()["mail"]

        jurisdiction = cloud["recipient"]["jurisdiction"]
        assert ("US", "unsafeguarded", True) == (
            cloud["recipient"]["country"],
            jurisdiction["verdict"],
            jurisdiction["foreign_jurisdiction"],
        )
        assert "CLOUD Act (18 U.S.C. § 2713)" in jurisdiction["laws"]
        assert [] == cloud["transfers"]
        assert None is mail["recipient"]["jurisdiction"]

    def test_the_csv_has_one_row_per_integration(self) -> None:
        """The CSV has the documented columns and joins lists into readable cells."""
        text = register_csv(build_register(inventory(), shipped_policies(), TODAY))
        rows = {row["id"]: row for row in csv.DictReader(io.StringIO(text, newline=""))}

        assert list(CSV_COLUMNS) == list(next(iter(rows.values())).keys())
        assert ["cloud", "crm", "helpdesk", "mail", "sendy", "stats"] == list(rows)
        assert (
            "hosting US: safeguarded, standard contractual clauses" in rows["helpdesk"]["transfers"]
        )
        assert "health (Art. 9)" == rows["helpdesk"]["special_categories"]
        assert "hosting US: adequate, " in rows["stats"]["transfers"]
        assert "aws:us-west-2 (US); aws:eu-west-1 (IE)" == rows["mail"]["backup_locations"]
        assert (
            "backup aws:us-west-2 (US): unsafeguarded, no adequacy in scope and no safeguard"
            == rows["mail"]["transfers"]
        )
        assert "sendy: subprocessor US: adequate" in rows["crm"]["transfers"]
        assert "cloud (Cloud Provider); sendy (Sendy Inc.)" == rows["crm"]["subprocessors"]
        assert "" == rows["cloud"]["transfers"]
        assert "US" == rows["cloud"]["vendor_country"]
        assert rows["cloud"]["vendor_jurisdiction"].startswith("unsafeguarded, none; can be")
        assert "FISA Section 702 (50 U.S.C. § 1881a)" in rows["cloud"]["vendor_jurisdiction"]
        assert "eea, EEA" == rows["crm"]["vendor_jurisdiction"]
        assert ("incremental", "daily P7D; monthly P12M", "P10Y", "2026-05-04") == (
            rows["mail"]["backup_type"],
            rows["mail"]["backup_generations"],
            rows["mail"]["backup_effective_retention"],
            rows["mail"]["backup_restore_tested"],
        )
        assert (
            "https://wiki.example/backup (reviewed 2026-02-01)" == rows["mail"]["backup_documented"]
        )


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


class TestCommand:
    def test_json_to_standard_output_without_a_database(self, tmp_path: Path) -> None:
        """`register --format json` needs no database and creates none."""
        config = write_config(tmp_path, ENTRIES)
        before = sorted(tmp_path.iterdir())

        result = run("register", "--config", str(config), "--as-of", "2026-11-22")

        assert 0 == result.exit_code, result.output
        doc = json.loads(result.stdout)
        assert ("2026-11-22", 6) == (doc["as_of"], len(doc["activities"]))
        assert before == sorted(tmp_path.iterdir())

    def test_csv_to_a_file_is_the_same_as_to_standard_output(self, tmp_path: Path) -> None:
        """--out writes the same bytes as standard output gets."""
        config = write_config(tmp_path, ENTRIES)
        out = tmp_path / "register.csv"

        to_file = run("register", "--config", str(config), "--format", "csv", "--out", str(out))
        to_stdout = run("register", "--config", str(config), "--format", "csv")

        assert (0, 0) == (to_file.exit_code, to_stdout.exit_code)
        assert out.read_bytes() == to_stdout.stdout_bytes
        assert out.read_text().startswith(",".join(CSV_COLUMNS))

    def test_an_invalid_inventory_exits_2(self, tmp_path: Path) -> None:
        """A bad inventory is reported like `validate` reports it, with exit status 2."""
        config = write_config(tmp_path, ENTRIES)
        (tmp_path / "inventory.yaml").write_text(
            yaml.safe_dump({"integrations": [minimal("crm", hosting=["XX"])]})
        )

        result = run("register", "--config", str(config))

        assert 2 == result.exit_code
        assert "XX" in result.stderr
