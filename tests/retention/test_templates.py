"""`gdpr-auditor retention template`: the shipped CRM templates printed byte for byte, listed with
their descriptions (table and JSON), an unknown name refused with a suggestion; every shipped
template is a valid retention file and every one is described."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from auditor.cli import cli
from auditor.retention import load_retention_policies
from auditor.retention.templates import (
    DESCRIPTIONS,
    shipped_files,
    template,
    template_names,
    template_policies,
)

PACKAGE = Path(__file__).resolve().parents[2] / "auditor" / "retention" / "templates"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["retention", "template", *args], catch_exceptions=False)


@pytest.mark.parametrize("name", ["suitecrm", "espocrm", "odoo", "civicrm"])
def test_template_prints_the_shipped_file_byte_for_byte(name: str, tmp_path: Path) -> None:
    """The output, redirected into a file, is the template as shipped, and loads as a
    retention file with the template's policies."""
    result = run(name)
    (tmp_path / "retention.yaml").write_text(result.stdout)

    assert (0, "") == (result.exit_code, result.stderr)
    assert (PACKAGE / f"{name}.yaml").read_text() == result.stdout
    loaded = load_retention_policies([tmp_path / "retention.yaml"])
    assert [p.id for p in template_policies(name)] == [p.id for p in loaded]
    assert all(p.source == "crm" for p in loaded)


def test_without_a_name_or_with_list_the_templates_are_listed_with_their_descriptions() -> None:
    """A table for people (NAME, DESCRIPTION) and JSON for tools, sorted by name."""
    table = run()
    listed = run("--list")
    doc = json.loads(run("--list", "--format", "json").stdout)

    assert 0 == table.exit_code
    assert table.stdout == listed.stdout
    lines = table.stdout.splitlines()
    assert ["NAME", "DESCRIPTION"] == lines[0].split()
    assert ["civicrm", "espocrm", "odoo", "suitecrm"] == [line.split()[0] for line in lines[1:]]
    assert all(DESCRIPTIONS[line.split()[0]] in line for line in lines[1:])
    assert [{"name": n, "description": DESCRIPTIONS[n]} for n in template_names()] == doc[
        "templates"
    ]


def test_json_with_a_name_gives_the_text_and_its_description() -> None:
    doc = json.loads(run("odoo", "--format", "json").stdout)

    assert ("odoo", DESCRIPTIONS["odoo"], template("odoo").text) == (
        doc["name"],
        doc["description"],
        doc["text"],
    )


@pytest.mark.parametrize(
    ("name", "hint"),
    [("suitcrm", "did you mean 'suitecrm'?"), ("Odoo", "did you mean 'odoo'?"), ("sap", "")],
)
def test_an_unknown_name_exits_2_with_a_suggestion_and_the_list(name: str, hint: str) -> None:
    result = run(name)

    assert 2 == result.exit_code
    assert "" == result.stdout
    assert f"no retention template {name!r}" in result.stderr
    assert hint in result.stderr
    assert "(templates: civicrm, espocrm, odoo, suitecrm)" in result.stderr


def test_a_name_and_list_together_are_a_usage_error() -> None:
    result = run("odoo", "--list")

    assert 2 == result.exit_code
    assert "give a template NAME or --list, not both" in result.stderr


def test_every_shipped_template_is_described_and_every_description_shipped() -> None:
    assert sorted(DESCRIPTIONS) == shipped_files() == template_names()


def test_help_names_the_verb_and_validate_connect() -> None:
    result = run("--help")

    assert 0 == result.exit_code
    assert "validate --config FILE --connect" in " ".join(result.stdout.split())
