"""`gdpr-auditor import fides` on Fides exports in each shape Fides writes: what comes out, field
by field, and what the audit then says of it."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.core.inventory import parse_inventory
from auditor.core.model import Integration
from auditor.core.yamlsource import load_yaml, parse_yaml
from auditor.discovery.fides import import_fides
from auditor.discovery.imports import ImportResult
from auditor.transfers.rules import AuditContext, evaluate
from tests.helpers import shipped_policies

FIXTURES = Path(__file__).parent / "fides"


def imported(name: str) -> tuple[ImportResult, dict[str, dict[str, Any]]]:
    """The import of a fixture, and its entries by id (with their TODO and NOTE lists)."""
    result = import_fides(load_yaml(FIXTURES / name, name))
    return result, {entry["id"]: entry for entry in result.entries}


def summary(entry: dict[str, Any]) -> dict[str, Any]:
    """What an entry says, without its TODOs and notes."""
    return {key: value for key, value in entry.items() if not key.startswith("_")}


def run_import(path: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["import", "fides", str(path)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def inventory_of(out: str) -> list[Integration]:
    integrations, issues = parse_inventory(parse_yaml(out, "import"), shipped_policies())
    assert [] == issues
    return integrations


def findings_of(integrations: list[Integration]) -> dict[str, set[str]]:
    context = AuditContext(
        integrations={i.id: i for i in integrations},
        observations={},
        policies=shipped_policies(),
        as_of=date(2026, 11, 22),
    )
    found: dict[str, set[str]] = {}
    for finding in evaluate(context):
        found.setdefault(finding.integration, set()).add(finding.rule)
    return found


EXPECTED: dict[str, dict[str, Any]] = load_yaml(FIXTURES / "expected.yml").data
"""What each imported entry says, without its TODOs and notes, by fixture and entry id."""


@pytest.mark.parametrize(
    ("name", "entry_id"),
    [(name, entry_id) for name, entries in EXPECTED.items() for entry_id in entries],
)
def test_each_imported_entry_says_what_its_system_says(name: str, entry_id: str) -> None:
    _, entries = imported(name)

    assert EXPECTED[name][entry_id] == summary(entries[entry_id])


# -- fideslang 3 manifest ---------------------------------------------------------------------


def test_a_fideslang3_system_with_every_field_maps_each_to_its_counterpart() -> None:
    _, entries = imported("manifest.yml")

    assert [
        (
            "system[0].does_international_transfers: Fides says the data goes to other countries "
            "but not where: list the places under hosting (and support); until then the audit "
            "warns that the location is undisclosed"
        ),
        (
            "system[0].privacy_declarations: the declarations keep data for P13M, P2Y: the "
            "shortest, P13M, was used"
        ),
        (
            "system[0].legal_basis_for_transfers: supplementary measures are no transfer tool by "
            "themselves: record the SCCs or BCRs they supplement under transfer.safeguards"
        ),
        (
            "system[0].dpa_location: Fides records where the DPA is: set contract.dpa_signed to the "
            "date it was signed"
        ),
        (
            "system[0].legal_address: vendor_country US is the country of the vendor's legal "
            "address: check it is the headquarters' or controlling parent's"
        ),
        (
            "system[0].egress: sends data to analytics_suite: if one processes it for this vendor, "
            "list it under subprocessors"
        ),
    ] == entries["newsletter-tool"]["_todo"]
    assert [
        (
            "no inventory field for tags, description, meta, ingress, administrating_department, "
            "vendor_id, dataset_references, uses_profiling, legal_basis_for_profiling, "
            "requires_data_protection_assessments, dpa_progress, privacy_policy, dpo, "
            "data_security_practices, cookie_max_age_seconds, uses_cookies, "
            "privacy_declarations.dataset_references, privacy_declarations.ingress, "
            "privacy_declarations.features, privacy_declarations.legal_basis_for_processing"
        )
    ] == entries["newsletter-tool"]["_note"]


def test_staff_and_art9_data_joint_control_and_bcrs_come_out_of_an_hr_system() -> None:
    """Race and ethnicity filed under demographics is Art. 9 data, not identity; job applicants
    and the employment use make it HR data; a controller with a joint controller is one."""
    _, entries = imported("manifest.yml")

    assert "dpa_signed" not in "\n".join(
        entries["people-hr"]["_todo"]
    )  # no DPA is checked of a (joint) controller


def test_a_system_declaring_only_the_bare_user_category_holds_unclassified_personal_data() -> None:
    """`user` alone once imported as holding no personal data; it is personal data whose kind
    is to be confirmed, and no role in Fides means processor (so a DPA is checked)."""
    _, entries = imported("manifest.yml")

    assert [
        "system[2].privacy_declarations: set the category from the data uses: essential.service",
        "system[2].responsibility: Fides records no role: processor assumed (a DPA is checked)",
        (
            "system[2].privacy_declarations: personal data of a kind to be confirmed (user): "
            "replace unclassified with the inventory's categories"
        ),
        (
            "system[2].does_international_transfers: Fides records no place: list where the data "
            "is hosted; until then the audit warns that the location is undisclosed"
        ),
        (
            "system[2].dpa_location: Fides records no DPA: set contract.dpa_signed to the date one "
            "was signed (Art. 28)"
        ),
    ] == entries["loyalty-db"]["_todo"]


def test_a_system_without_personal_data_stays_without_and_its_bases_are_read() -> None:
    _, entries = imported("manifest.yml")
    ops = entries["ops-metrics"]

    assert ([], "processor", "analytics") == (ops["data_categories"], ops["role"], ops["category"])
    assert {"safeguards": ["scc"]} == ops["transfer"]  # "Standard Contractual Clauses"


TODOS_INCLUDE = {
    # staff and Art. 9 data, joint control and BCRs out of an HR system
    "people-hr": [
        "staff data (employee, employment.recruitment, job_applicant): employment added",
        "'203.0.113.7' is no hostname",
        "the period is counted from 'after the hiring decision'",
        "an adequacy decision covers a place on a date, so the audit needs the places",
        (
            "vendor_country NL is the country of the vendor's legal address: check it is the "
            "headquarters' or controlling parent's"
        ),
        "shared with third parties (background-check agencies): declare each as an integration",
    ],
    # a system without personal data, its bases read
    "ops-metrics": [
        (
            "responsibility: Fides says sub-processor: list this entry under its processor's "
            "subprocessors"
        ),
        (
            "legal_basis_for_transfers: the transfer relies on consent (Art. 49(1)(a)): set "
            "transfer.consent_purpose"
        ),
        "legal_basis_for_transfers: 'Other' says nothing the audit can check",
        "exempt_from_privacy_regulations: Fides marks the system exempt",
    ],
    # unmapped user categories, ranges and unknown fields
    "chat-widget": [
        "both controller and processor: processor assumed",
        "personal data of a kind to be confirmed (user.sensor, user.childrens)",
        "'3-5 years' is a range: its shorter end, P3Y, was used",
        "DPF: record the certification under transfer.certifications",
        "could not be read from the address",
        "system[4]: unknown fields, not mapped: owner_team, privacy_declarations.consent_banner",
    ],
}
"""What the TODOs of an entry of manifest.yml say, among other things."""


@pytest.mark.parametrize("entry_id", list(TODOS_INCLUDE))
def test_what_does_not_map_of_a_manifest_system_is_a_todo(entry_id: str) -> None:
    _, entries = imported("manifest.yml")

    todos = "\n".join(entries[entry_id]["_todo"])
    for expected in TODOS_INCLUDE[entry_id]:
        assert expected in todos


def test_a_field_without_inventory_counterpart_is_a_note() -> None:
    _, entries = imported("manifest.yml")

    assert ["no inventory field for privacy_declarations.cookies"] == entries["chat-widget"][
        "_note"
    ]


def test_datasets_and_systems_without_a_key_are_reported_by_file_and_line() -> None:
    result, entries = imported("manifest.yml")

    assert ["newsletter-tool", "people-hr", "loyalty-db", "ops-metrics", "chat-widget"] == list(
        entries
    )
    assert "manifest.yml:138: system #6: no fides_key, skipped" in result.unmapped
    assert [
        (
            "manifest.yml:141: dataset newsletter_db: a database description, not an integration: "
            "skipped"
        )
    ] == result.notes[:1]


def test_each_todo_names_the_file_line_system_and_field() -> None:
    result, _ = imported("manifest.yml")

    assert (
        "manifest.yml:87: system 'people_hr': system[1].privacy_declarations[0].retention_period:"
        " the period is counted from 'after the hiring decision': confirm the retention"
    ) in result.unmapped
    assert (
        "manifest.yml:62: system 'newsletter_tool': system[0].legal_address: vendor_country US "
        "is the country of the vendor's legal address: check it is the headquarters' or "
        "controlling parent's"
    ) in result.unmapped


# -- the API's system list, the data map report, fideslang 2 ---------------------------------


def test_the_api_system_list_imports_like_a_manifest() -> None:
    _, entries = imported("systems.json")

    assert (
        "[0].legal_address: vendor_country IE is the country of the vendor's legal address: "
        "check it is the headquarters' or controlling parent's" in entries["crm-cloud"]["_todo"]
    )
    assert [
        (
            "no inventory field for description, administrating_department, data_stewards, "
            "privacy_declarations.legal_basis_for_processing"
        )
    ] == entries["crm-cloud"]["_note"]
    payroll = entries["payroll"]
    assert (["identity", "financial", "employment"], "P10Y") == (
        payroll["data_categories"],
        payroll["retention"],
    )


def test_the_data_map_report_is_regrouped_into_one_entry_per_system() -> None:
    """Rows per system and data use (string or list cells) become one entry; the categories
    Fides found undeclared in the system's data are kept; a value that differs between a
    system's rows, a custom field and a row naming no system are reported."""
    result, entries = imported("datamap.json")

    web = "\n".join(entries["web-analytics"]["_todo"])
    desk = "\n".join(entries["support-desk"]["_todo"])
    assert "items[0].data_use_undeclared_data_categories: Fides found these categories" in web
    assert "items[0].link_to_processor_contract: Fides records where the DPA is" in web
    assert "items[1].legal_address: differs from an earlier row's value: the first was used" in web
    assert "items[0]: unknown fields, not mapped: custom_field_owner" in web
    assert "items[2].retention_period: 'Until the ticket is closed' is no period" in desk
    assert "vendor_country CA is the country of the vendor's legal address" in desk
    assert "datamap.json:83: row #4: names no system, skipped" in result.unmapped


def test_the_older_data_map_report_gives_places_from_third_country_transfers() -> None:
    _, entries = imported("datamap-legacy.json")

    assert ["ticket-helpdesk"] == list(entries)  # the first row is the column labels


def test_a_fideslang2_manifest_still_gives_its_places_and_role() -> None:
    _, entries = imported("manifest-fideslang2.yml")
    shop = entries["shop-platform"]

    assert (["US", "DE"], "joint-controller", ["contact", "location"]) == (
        shop["hosting"],
        shop["role"],
        shop["data_categories"],
    )
    todos = "\n".join(shop["_todo"])
    assert "'ATA' is no country code this import knows" in todos
    assert "'XYZ' is no country code this import knows" in todos


# -- end to end: valid inventory, and what the audit says ---------------------------------------


@pytest.mark.parametrize(
    "name", ["manifest.yml", "systems.json", "datamap.json", "datamap-legacy.json"]
)
def test_every_export_shape_gives_valid_inventory_yaml(name: str) -> None:
    code, out, err = run_import(FIXTURES / name)

    assert 0 == code
    assert inventory_of(out)
    assert "TODO: " in err


def test_imported_systems_without_places_are_warned_about_never_fine() -> None:
    """No hosting place (fideslang 3 records none) is contract-location-undisclosed; unclassified
    personal data needs backups documented; a processor without a DPA date is critical."""
    _, out, _ = run_import(FIXTURES / "manifest.yml")
    findings = findings_of(inventory_of(out))

    assert {
        "contract-location-undisclosed",
        "backup-undocumented",
        "contract-dpa-missing",
    } <= findings["loyalty-db"]
    assert "contract-location-undisclosed" in findings["newsletter-tool"]
    assert "backup-undocumented" not in findings.get("ops-metrics", set())  # no personal data


def test_an_export_of_another_shape_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text('{"organization": []}\n', encoding="utf-8")

    code, _, err = run_import(path)

    assert 2 == code
    assert f"{path}:1: expected a Fides export" in err
