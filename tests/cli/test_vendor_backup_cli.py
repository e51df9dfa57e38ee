"""Vendor jurisdiction and backup practice through the command line: the catalogue fills in the
vendor country, the findings reach `check` (table and JSON) and `register`, and info findings
never change what `--fail-on warning` decides."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from auditor.cli import cli
from tests.helpers import BACKUP_PRACTICE, entry

AS_OF = ("--as-of", "2026-11-22")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write_config(workdir: Path, integrations: list[dict[str, object]], extra: str = "") -> Path:
    """A config auditing the integrations offline (no endpoints: no DNS or GeoIP needed)."""
    (workdir / "inventory.yaml").write_text(yaml.safe_dump({"integrations": integrations}))
    path = workdir / "auditor.yaml"
    path.write_text("inventory: [inventory.yaml]\n" + extra)
    return path


def undeclared(ident: str, **overrides: object) -> dict[str, object]:
    """An entry that declares no vendor_country."""
    item = entry(ident, **overrides)
    del item["vendor_country"]
    return item


def check_json(config: Path, *args: str) -> tuple[Result, dict[str, object]]:
    result = run("check", "--config", str(config), *AS_OF, "--format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    return result, json.loads(result.stdout)


def test_a_catalogue_vendor_in_the_us_hosting_in_frankfurt_is_a_vendor_finding(
    tmp_path: Path,
) -> None:
    """`mailchimp` names a catalogue entry (headquarters US); hosted in Frankfurt without a DPF
    certification recorded, `check` reports the vendor facet, saying the country came from the
    catalogue; the warning fails `--fail-on warning` only."""
    config = write_config(
        tmp_path, [undeclared("mailchimp", name="Mailchimp", hosting=["aws:eu-central-1"])]
    )

    result, doc = check_json(config)
    strict = run("check", "--config", str(config), *AS_OF, "--fail-on", "warning")

    (finding,) = doc["findings"]  # type: ignore[misc]
    assert ("vendor-foreign-jurisdiction", "vendor", "US", "warning") == (
        finding["rule"],
        finding["facet"],
        finding["country"],
        finding["severity"],
    )
    assert "(from the vendor catalogue)" in finding["message"]
    assert ("catalogue", "mailchimp") == (
        finding["evidence"]["vendor_country_source"],
        finding["evidence"]["catalogue_entry"],
    )
    assert (0, 1) == (result.exit_code, strict.exit_code)


def test_a_declared_country_overrides_the_catalogue(tmp_path: Path) -> None:
    """A Mailchimp contract with an EU entity declared as its vendor country: no finding."""
    config = write_config(tmp_path, [entry("mailchimp", vendor_country="IE")])

    _, doc = check_json(config, "--fail-on", "info")

    assert [] == doc["findings"]


def test_info_findings_show_in_the_table_but_never_fail_warning(tmp_path: Path) -> None:
    """An unknown vendor and backups without restore test or documentation: three info
    findings in the table and JSON; `--fail-on warning` exits 0, `--fail-on info` exits 1."""
    item = undeclared("crm", vendor="Nobody Knows Ltd.")
    item["backups"] = {"regions": ["IE"], "retention": "P30D"}
    config = write_config(tmp_path, [item])

    table = run("check", "--config", str(config), *AS_OF, "--fail-on", "warning")
    _, doc = check_json(config)
    strictest = run("check", "--config", str(config), *AS_OF, "--fail-on", "info")

    assert 0 == table.exit_code
    assert "crm (Crm) — 3 info" in table.stdout
    assert "INFO     vendor-foreign-jurisdiction" in table.stdout
    assert "3 findings: 0 critical, 0 warning, 3 info" in table.stdout
    assert {"critical": 0, "warning": 0, "info": 3} == doc["summary"]
    assert 1 == strictest.exit_code


def test_configured_periods_reach_the_check(tmp_path: Path) -> None:
    """`backups:` in the configuration shortens the periods: a test from 2025-12-01 is stale
    on 2026-11-22 under P6M."""
    config = write_config(
        tmp_path,
        [entry("crm")],
        "backups: {restore_test_max_age: P6M, documentation_review_max_age: P2Y}\n",
    )

    _, doc = check_json(config)

    assert [("backup-restore-untested", "warning")] == [
        (f["rule"], f["severity"])
        for f in doc["findings"]  # type: ignore[attr-defined]
    ]


def test_validate_accepts_the_new_keys_and_names_a_bad_one(tmp_path: Path) -> None:
    """The new inventory keys validate; a bad generation duration is named with its key."""
    good = {**BACKUP_PRACTICE, "regions": ["IE"], "type": "full", "generations": {"daily": "P7D"}}
    config = write_config(tmp_path, [entry("crm", backups=good)])
    valid = run("validate", "--config", str(config))
    bad = write_config(tmp_path, [entry("crm", backups={"generations": {"daily": "7d"}})])
    invalid = run("validate", "--config", str(bad))

    assert 0 == valid.exit_code, valid.output
    assert 2 == invalid.exit_code
    assert "integration 'crm'" in invalid.stderr
    assert "backups.generations.daily" in invalid.stderr


def test_the_register_shows_the_vendor_country_and_where_it_comes_from(tmp_path: Path) -> None:
    """`register` gives each recipient's country, from the catalogue where not declared, and
    the laws that reach a vendor without adequacy."""
    config = write_config(
        tmp_path,
        [undeclared("mailchimp", name="Mailchimp"), entry("crm", vendor_country="FR")],
    )

    result = run("register", "--config", str(config), *AS_OF)

    assert 0 == result.exit_code, result.output
    recipients = {a["id"]: a["recipient"] for a in json.loads(result.stdout)["activities"]}
    assert ("US", "catalogue", True) == (
        recipients["mailchimp"]["country"],
        recipients["mailchimp"]["country_source"],
        recipients["mailchimp"]["jurisdiction"]["foreign_jurisdiction"],
    )
    assert ("FR", "inventory", "eea") == (
        recipients["crm"]["country"],
        recipients["crm"]["country_source"],
        recipients["crm"]["jurisdiction"]["verdict"],
    )
