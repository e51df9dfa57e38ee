"""Consent results: `transfer-consent-missing` findings, their lifecycle kept apart from the
audit's (store contract on SQLite and PostgreSQL), the stored coverage with its staleness, the
metrics, the consent job, and the `consent check|gaps` and `validate` commands."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from sqlalchemy import create_engine

from auditor.cli import cli
from auditor.consent.check import RULE, ConsentCheckError, consent_findings, run_consent_job
from auditor.consent.imports import SUBJECT_KEY_ENV
from auditor.core.consents import ConsentCoverage
from auditor.core.model import Finding, Severity
from auditor.core.yamlsource import parse_yaml
from auditor.service.metrics import build_registry
from auditor.service.snapshot import ConsentStatus, Snapshot
from auditor.store import AUDIT_SCOPE, StateStore, job_scope
from auditor.store.recording import apply_findings
from tests.consent.test_consent import (
    CONSENTS,
    CUSTOMERS,
    EXPECTED_GAPS,
    PURPOSE,
    config_text,
    load_consents,
    load_customers,
)
from tests.helpers import (
    consent_settings,
    free_port,
    integrations_from,
    minimal,
    shipped_policies,
)
from tests.store.test_store import T0, audit, record, unsafe

D = date(2026, 11, 22)
KEY = "a-test-subject-key-0123456789"


def covered(
    integration: str = "mailchimp", shared: int = 10, missing: int = 6, withdrawn: int = 2
) -> ConsentCoverage:
    return ConsentCoverage(integration, PURPOSE, D, shared, missing, withdrawn, "pushdown", 0.25)


def consent_finding(integration: str = "mailchimp", missing: int = 6) -> Finding:
    found = consent_findings([covered(integration, missing=missing)], shipped_policies())
    return found[0]


def open_rules(store: StateStore) -> list[tuple[str, str]]:
    return sorted((f.rule, f.integration) for f in store.list_findings(status="open"))


class TestFindings:
    def test_a_finding_per_integration_with_missing_subjects(self) -> None:
        """Missing > 0 raises transfer-consent-missing: critical, Art. 49(1)(a), the purpose as
        its place, the counts as evidence; a fully covered integration raises nothing."""
        found = consent_findings(
            [covered(), covered("hubspot", shared=5, missing=0, withdrawn=0)], shipped_policies()
        )

        assert 1 == len(found)
        finding = found[0]
        assert (RULE, "mailchimp", Severity.CRITICAL, "Art. 49(1)(a)", None, PURPOSE, None) == (
            finding.rule,
            finding.integration,
            finding.severity,
            finding.article,
            finding.facet,
            finding.place,
            finding.country,
        )
        assert {
            "shared": 10,
            "missing": 6,
            "withdrawn": 2,
            "path": "pushdown",
            "as_of": "2026-11-22",
        } == finding.evidence
        assert finding.message.startswith(
            "6 of 10 data subjects shared with mailchimp have no valid consent for "
            "'newsletter-us' on 2026-11-22; 2 of them withdrew"
        )


class TestScopes:
    def test_an_audit_neither_resolves_nor_touches_consent_findings(
        self, store: StateStore
    ) -> None:
        """A consent finding stays open through audits that do not raise it, with its
        last_seen unchanged; the audit's own finding resolves as before."""
        store.record_consent_check([covered()], {}, [consent_finding()], at=T0, keep=["mailchimp"])
        record(store, audit(T0 + timedelta(hours=1), [unsafe()]))
        record(store, audit(T0 + timedelta(hours=2), []))

        found = {f.rule: f for f in store.list_findings()}
        assert "open" == found[RULE].state
        assert T0 == found[RULE].last_seen
        assert "resolved" == found["transfer-unsafeguarded"].state

    def test_the_consent_job_neither_resolves_nor_touches_audit_findings(
        self, store: StateStore
    ) -> None:
        """A consent check without findings resolves only its own rule's findings."""
        record(store, audit(T0, [unsafe()]))
        store.record_consent_check([covered()], {}, [consent_finding()], at=T0, keep=["mailchimp"])

        changes = store.record_consent_check(
            [covered(missing=0, withdrawn=0)],
            {},
            [],
            at=T0 + timedelta(hours=1),
            keep=["mailchimp"],
        )

        assert (0, 1, 0) == (changes.open, changes.resolved, changes.new)
        found = {f.rule: f for f in store.list_findings()}
        assert "resolved" == found[RULE].state
        assert ("open", T0) == (
            found["transfer-unsafeguarded"].state,
            found["transfer-unsafeguarded"].last_seen,
        )

    def test_a_consent_finding_reopens_and_records_its_history(self, store: StateStore) -> None:
        """New, resolved, reopened: the events of an audit-owned finding, without a run id."""
        at = [T0 + timedelta(hours=n) for n in range(3)]
        store.record_consent_check(
            [covered()], {}, [consent_finding()], at=at[0], keep=["mailchimp"]
        )
        store.record_consent_check([covered(missing=0)], {}, [], at=at[1], keep=["mailchimp"])
        changes = store.record_consent_check(
            [covered()], {}, [consent_finding()], at=at[2], keep=["mailchimp"]
        )

        finding = store.list_findings(rule=RULE)[0]
        detail = store.get_finding(finding.id)
        assert 1 == changes.reopened
        assert ["new", "resolved", "reopened"] == [event.change for event in detail.events]
        assert {None} == {event.run_id for event in detail.events}

    def test_a_finding_outside_the_scope_is_refused(self, store: StateStore) -> None:
        """The audit may not record a consent finding, nor the consent job a transfer one."""
        with store.engine.begin() as conn, pytest.raises(ValueError, match="outside the scope"):
            apply_findings(conn, None, T0, [unsafe()], job_scope("consent"))
        with store.engine.begin() as conn, pytest.raises(ValueError, match="outside the scope"):
            apply_findings(conn, None, T0, [consent_finding()], AUDIT_SCOPE)

    def test_the_scopes_split_the_rules_between_the_jobs(self) -> None:
        """The audit owns every rule but the consent, retention and discovery jobs' ones."""
        assert not AUDIT_SCOPE.owns(RULE)
        assert not AUDIT_SCOPE.owns("retention-overdue")
        assert not AUDIT_SCOPE.owns("inventory-undeclared")
        assert AUDIT_SCOPE.owns("transfer-unsafeguarded")
        assert job_scope("consent").owns(RULE)
        assert not job_scope("consent").owns("retention-overdue")


class TestStoredCoverage:
    def test_a_failure_keeps_the_last_counts_marked_stale(self, store: StateStore) -> None:
        """Fresh counts are stored; a failed check keeps them with the failure; a success
        clears it; integrations no longer configured are forgotten."""
        store.record_consent_check(
            [covered(), covered("hubspot", missing=0, withdrawn=0)],
            {},
            [consent_finding()],
            at=T0,
            keep=["mailchimp", "hubspot"],
        )
        later = T0 + timedelta(hours=6)
        store.record_consent_check(
            [],
            {"mailchimp": (PURPOSE, "data source 'crm': cannot connect")},
            [consent_finding()],
            at=later,
            keep=["mailchimp"],
        )
        stale = store.consent_coverage()
        store.record_consent_check(
            [covered(missing=1, withdrawn=0)],
            {},
            [consent_finding(missing=1)],
            at=later + timedelta(hours=6),
            keep=["mailchimp"],
        )
        fresh = store.consent_coverage()["mailchimp"]

        assert ["mailchimp"] == list(stale)
        row = stale["mailchimp"]
        assert row.coverage is not None
        assert (True, T0, later, 6) == (
            row.stale,
            row.checked_at,
            row.failed_at,
            row.coverage.missing,
        )
        assert "cannot connect" in (row.error or "")
        assert fresh.coverage is not None
        assert (False, None, 1) == (fresh.stale, fresh.error, fresh.coverage.missing)

    def test_a_first_check_that_fails_stores_no_counts(self, store: StateStore) -> None:
        """Failing before any success: stale, no counts, no finding."""
        store.record_consent_check(
            [], {"mailchimp": (PURPOSE, "down")}, [], at=T0, keep=["mailchimp"]
        )

        row = store.consent_coverage()["mailchimp"]

        assert (True, None, None) == (row.stale, row.coverage, row.checked_at)

    def test_the_evidence_holds_counts_and_no_keys(self, store: StateStore) -> None:
        """One consent-check record per run, with the counts and the failed integrations."""
        store.record_consent_check(
            [covered()],
            {"hubspot": ("p", "down")},
            [consent_finding()],
            at=T0,
            keep=["mailchimp", "hubspot"],
        )

        records = [r for r in store.evidence_records() if r.kind == "consent-check"]
        content = json.loads(records[0].content)

        assert 1 == len(records)
        assert ["hubspot"] == content["failed"]
        assert [
            {
                "integration": "mailchimp",
                "purpose": PURPOSE,
                "as_of": "2026-11-22",
                "shared": 10,
                "missing": 6,
                "withdrawn": 2,
                "path": "pushdown",
            }
        ] == content["checked"]
        assert "finding-new" in [r.kind for r in store.evidence_records()]


class TestMetrics:
    def test_consent_metrics_by_integration_with_staleness(self) -> None:
        """Counts, last check time and stale flag per integration; an integration never checked
        successfully has only its stale flag and a zero timestamp."""
        checked = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
        snapshot = Snapshot(
            consent={
                "mailchimp": ConsentStatus(10, 6, 2, checked, stale=True),
                "hubspot": ConsentStatus(None, None, None, None, stale=True),
                "crm": ConsentStatus(4, 0, 0, checked, stale=False),
            }
        )
        registry = build_registry(lambda: snapshot)

        def value(name: str, integration: str) -> float | None:
            return registry.get_sample_value(f"gdpr_auditor_{name}", {"integration": integration})

        assert (10, 6, 2, checked.timestamp(), 1) == (
            value("consent_subjects_shared", "mailchimp"),
            value("consent_missing_subjects", "mailchimp"),
            value("consent_withdrawn_subjects", "mailchimp"),
            value("consent_last_check_timestamp_seconds", "mailchimp"),
            value("consent_stale", "mailchimp"),
        )
        assert (None, 0, 1) == (
            value("consent_subjects_shared", "hubspot"),
            value("consent_last_check_timestamp_seconds", "hubspot"),
            value("consent_stale", "hubspot"),
        )
        assert (0, 0) == (value("consent_missing_subjects", "crm"), value("consent_stale", "crm"))
        labels = {
            label
            for family in registry.collect()
            if family.name.startswith("gdpr_auditor_consent")
            for sample in family.samples
            for label in sample.labels
        }
        assert {"integration"} == labels


# --- the job, in process --------------------------------------------------------------------


def settings_for(text: str) -> Any:
    return consent_settings(parse_yaml(text, "auditor.yaml"))


def inventory() -> list[Any]:
    relies = minimal("mailchimp", hosting=["US"], transfer={"consent_purpose": "newsletter"})
    return integrations_from(yaml.safe_dump({"integrations": [relies]}))


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class TestJob:
    def test_the_job_records_counts_and_a_finding_then_a_failure_keeps_them_stale(
        self, state_url: str, tmp_path: Path
    ) -> None:
        """A run records the counts and opens the finding; with the consents' database gone
        the next run raises ConsentCheckError, keeps the counts (stale) and the finding open."""
        crm = f"sqlite:///{tmp_path / 'crm.db'}"
        engine = create_engine(crm)
        load_customers(engine, CUSTOMERS)
        load_consents(engine, CONSENTS)
        engine.dispose()
        settings = settings_for(config_text())
        store = StateStore.open(state_url)
        clock = FixedClock(datetime(2026, 11, 22, 12, tzinfo=UTC))
        environ = {"CRM_URL": crm, "LEDGER_URL": crm}
        job = partial(
            run_consent_job, settings, inventory(), shipped_policies(), store, clock=clock,
            environ=environ, check=lambda: None,
        )  # fmt: skip
        try:
            first = job()
            (tmp_path / "crm.db").rename(tmp_path / "gone.db")
            clock.now += timedelta(hours=6)
            with pytest.raises(ConsentCheckError) as failed:
                job()
            stored = store.consent_coverage()["mailchimp"]
            findings = store.list_findings(status="open", rule=RULE)
        finally:
            store.close()

        assert [(10, 6, 2)] == [(r.shared, r.missing, r.withdrawn) for r in first.results]
        assert (1, 1) == (first.changes.new, first.changes.open)
        assert ["mailchimp"] == list(failed.value.failures)
        assert "crm" in failed.value.failures["mailchimp"]
        assert stored.stale and stored.coverage is not None and stored.coverage.missing == 6
        assert ["mailchimp"] == [f.integration for f in findings]


# --- the commands ---------------------------------------------------------------------------


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


@pytest.fixture(name="workdir")
def _workdir(tmp_path: Path) -> Path:
    """A config with the mailchimp mapping over a SQLite CRM, an inventory relying on consent."""
    crm = tmp_path / "crm.db"
    engine = create_engine(f"sqlite:///{crm}")
    load_customers(engine, CUSTOMERS)
    load_consents(engine, CONSENTS)
    engine.dispose()
    (tmp_path / "inventory.yaml").write_text(
        yaml.safe_dump(
            {
                "integrations": [
                    minimal(
                        "mailchimp",
                        hosting=["US"],
                        transfer={"consent_purpose": "newsletter"},
                    )
                ]
            }
        )
    )
    write_config(tmp_path)
    return tmp_path


def write_config(workdir: Path, **overrides: Any) -> Path:
    document = yaml.safe_load(config_text(**overrides))
    document["data_sources"] = {"crm": {"url": "sqlite:///crm.db"}}
    for part in ("shared", "consents"):
        section = document["consent"]["mailchimp"][part]
        if section.get("source") == "ledger":
            section["source"] = "crm"
    document["inventory"] = ["inventory.yaml"]
    document["database"] = {"url": "sqlite:///state.db"}
    path = workdir / "auditor.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


class TestCommands:
    def test_check_prints_the_counts_and_exits_1_with_gaps(self, workdir: Path) -> None:
        """`consent check` shows shared, missing and withdrawn per integration, exit 1."""
        config = str(workdir / "auditor.yaml")

        table = run("consent", "check", "--config", config, "--as-of", "2026-11-22")
        as_json = run(
            "consent", "check", "--config", config, "--as-of", "2026-11-22", "--format", "json"
        )

        assert 1 == table.exit_code, table.output
        assert [
            "INTEGRATION  PURPOSE        SHARED  MISSING  WITHDRAWN  PATH",
            "mailchimp    newsletter-us      10        6          2  pushdown",
        ] == table.stdout.splitlines()
        doc = json.loads(as_json.stdout)
        assert (1, "2026-11-22") == (as_json.exit_code, doc["as_of"])
        assert {"shared": 10, "covered": 4, "missing": 6, "withdrawn": 2}.items() <= doc[
            "integrations"
        ][0].items()
        assert [RULE] == [finding["rule"] for finding in doc["findings"]]

    def test_check_exits_0_when_every_shared_subject_has_consent(self, workdir: Path) -> None:
        """Only customers with a valid consent shared: no finding, exit 0."""
        write_config(workdir, shared={"filter": {"customer_id": [1, 6, 7, 8]}})

        result = run(
            "consent", "check", "--config", str(workdir / "auditor.yaml"), "--as-of", "2026-11-22"
        )

        assert 0 == result.exit_code, result.output
        assert "pushdown" in result.stdout

    def test_gaps_prints_exactly_the_missing_keys(self, workdir: Path) -> None:
        """One key per line, in key order, and only the withdrawn ones with --withdrawn-only."""
        config = str(workdir / "auditor.yaml")
        gaps = ("consent", "gaps", "--config", config, "--integration", "mailchimp")

        listed = run(*gaps, "--as-of", "2026-11-22")
        withdrawn = run(*gaps, "--as-of", "2026-11-22", "--withdrawn-only")
        unknown = run("consent", "gaps", "--config", config, "--integration", "nope")

        assert (0, "\n".join(EXPECTED_GAPS) + "\n") == (listed.exit_code, listed.stdout)
        assert "3\n10\n" == withdrawn.stdout
        assert 2 == unknown.exit_code
        assert "no consent mapping for 'nope' (mappings: mailchimp)" in unknown.stderr

    def test_gaps_and_check_on_imported_consents(self, workdir: Path) -> None:
        """With `consents: {imported: true}`, after `consent import`, the same keys and counts."""
        config = write_config(workdir)
        document = yaml.safe_load(config.read_text())
        document["consent"]["mailchimp"]["consents"] = {"imported": True}
        config.write_text(yaml.safe_dump(document))
        export = workdir / "export.csv"
        export.write_text(
            "subject,granted_at,withdrawn_at\n"
            + "".join(
                f"{s},{g.isoformat()},{'' if w is None else w.isoformat()}\n"
                for s, p, g, w in CONSENTS
                if p == PURPOSE
            )
        )
        env = {SUBJECT_KEY_ENV: KEY}

        imported = run(
            "consent", "import", str(export), "--config", str(config), "--purpose", PURPOSE, env=env
        )
        listed = run(
            "consent", "gaps", "--config", str(config), "--integration", "mailchimp",
            "--as-of", "2026-11-22", env=env,
        )  # fmt: skip
        checked = run("consent", "check", "--config", str(config), "--as-of", "2026-11-22", env=env)
        no_key = run("consent", "check", "--config", str(config), env={SUBJECT_KEY_ENV: ""})

        assert 0 == imported.exit_code, imported.output
        assert "" == imported.stderr  # the purpose is a mapping's: no note
        assert "\n".join(EXPECTED_GAPS) + "\n" == listed.stdout
        assert 1 == checked.exit_code
        assert "mailchimp    newsletter-us      10        6          2  imported" in checked.stdout
        assert 2 == no_key.exit_code
        assert SUBJECT_KEY_ENV in no_key.stderr

    def test_a_database_that_is_down_exits_3(self, workdir: Path) -> None:
        """The CRM on a closed port: exit 3, naming the data source, no password."""
        config = write_config(workdir)
        document = yaml.safe_load(config.read_text())
        document["data_sources"]["crm"] = {
            "url": f"postgresql://auditor:hunter2@127.0.0.1:{free_port()}/crm"
        }
        config.write_text(yaml.safe_dump(document))

        result = run("consent", "check", "--config", str(config))

        assert 3 == result.exit_code
        assert "data source 'crm'" in result.stderr
        assert "hunter2" not in result.stderr

    def test_validate_checks_mappings_against_the_inventory_and_with_connect_the_schema(
        self, workdir: Path
    ) -> None:
        """validate names a mapping whose integration is missing; --connect names a column
        that is not in its table; a clean configuration passes both."""
        config = str(workdir / "auditor.yaml")
        clean = run("validate", "--config", config, "--connect")
        write_config(workdir, shared={"key": "cust_id"})
        bad_column = run("validate", "--config", config, "--connect")
        offline = run("validate", "--config", config)
        (workdir / "inventory.yaml").write_text(yaml.safe_dump({"integrations": []}))
        no_integration = run("validate", "--config", config)

        assert 0 == clean.exit_code, clean.output
        assert 2 == bad_column.exit_code
        assert "consent.mailchimp.shared.key: column 'cust_id' not in table customers" in (
            bad_column.stderr
        )
        assert 0 == offline.exit_code
        assert 2 == no_integration.exit_code
        assert "consent.mailchimp: no integration 'mailchimp' in the inventory" in (
            no_integration.stderr
        )

    def test_validate_connect_names_a_data_source_it_cannot_open(self, workdir: Path) -> None:
        """An unset url_env with --connect: a problem naming `data_sources.crm`."""
        config = write_config(workdir)
        document = yaml.safe_load(config.read_text())
        document["data_sources"]["crm"] = {"url_env": "NO_SUCH_CRM_URL"}
        config.write_text(yaml.safe_dump(document))

        result = run("validate", "--config", str(config), "--connect", env={"NO_SUCH_CRM_URL": ""})

        assert 2 == result.exit_code
        assert "data_sources.crm: cannot check the consent mappings" in result.stderr
        assert os.environ.get("NO_SUCH_CRM_URL") is None
