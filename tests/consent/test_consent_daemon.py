"""The consent job in a real `gdpr-auditor run` process: its metrics and finding, a database that
goes down (the job fails and is counted, the daemon carries on, the last counts stay, marked
stale), and the start-up checks of the consent mappings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine

from auditor.consent.imports import SUBJECT_KEY_ENV
from tests.consent.test_consent import (
    CUSTOMERS,
    PURPOSE,
    consent_mapping,
    load_consents,
    load_customers,
)
from tests.helpers import minimal
from tests.service.test_daemon import (
    UNLAWFUL,
    DaemonProcess,
    Workdir,
    _dns,  # noqa: F401  (the fixture `dns`)
    _spawn,  # noqa: F401  (the fixture `spawn`)
    _workdir,  # noqa: F401  (the fixture `workdir`)
    assert_refused_at_start,
    in_process_daemon,
)

MAILCHIMP = minimal(
    "mailchimp",
    category="email-marketing",
    hosting=["US"],
    backups={"regions": ["US"], "retention": "P30D"},
    transfer={"consent_purpose": "newsletter"},
)
MAPPING = consent_mapping()


def consents_around_today() -> list[tuple[int, str, datetime, datetime | None]]:
    """Consents as the daemon sees them today: 10 shared, 6 missing, 2 withdrawn."""
    now = datetime.now(UTC)

    def days(n: int) -> datetime:
        return now + timedelta(days=n)

    return [
        (1, PURPOSE, days(-300), None),  # valid
        (3, PURPOSE, days(-300), days(-10)),  # withdrawn
        (4, PURPOSE, days(30), None),  # future-dated: missing
        (5, "analytics", days(-300), None),  # another purpose: missing
        (6, PURPOSE, days(-300), days(30)),  # withdrawal ahead: valid
        (7, PURPOSE, days(-30), None),  # valid
        (8, PURPOSE, days(-3), None),  # valid
        (9, PURPOSE, days(-300), days(-2)),  # withdrawn
        (11, PURPOSE, days(-300), None),  # not shared
    ]  # 2 and 10: none at all


def with_consent(workdir: Workdir, mapping: dict[str, Any] | None = None, job: bool = True) -> None:
    """The daemon's configuration with the CRM as a data source, the mailchimp mapping, and a
    consent job every 2 s (the audit hourly, so that the consent job's runs show)."""
    engine = create_engine(f"sqlite:///{workdir.path / 'crm.db'}")
    load_customers(engine, CUSTOMERS)
    load_consents(engine, consents_around_today())
    engine.dispose()
    workdir.write_inventory([UNLAWFUL, MAILCHIMP])
    config = yaml.safe_load(workdir.config.read_text())
    config["data_sources"] = {"crm": {"url": "sqlite:///crm.db"}}
    config["consent"] = {"mailchimp": mapping or MAPPING}
    config["jobs"]["audit"] = {"interval": "PT1H"}
    if job:
        config["jobs"]["consent"] = {"interval": "PT2S"}
    workdir.config.write_text(yaml.safe_dump(config))


def consent_value(daemon: DaemonProcess, name: str) -> float | None:
    return daemon.value(f"gdpr_auditor_consent_{name}", integration="mailchimp")


@pytest.mark.slow
def test_the_consent_job_shows_its_counts_and_keeps_them_stale_while_the_database_is_down(
    workdir: Workdir, spawn: Callable[..., DaemonProcess]
) -> None:
    """The job's counts and finding appear in /metrics; with the CRM gone the job fails and is
    counted, the daemon keeps serving the last counts marked stale and the finding open; once
    the CRM is back the counts are fresh again."""
    with_consent(workdir)
    daemon = spawn(workdir.config)

    daemon.wait_for("consent_check_finished")
    daemon.wait_until(
        lambda: daemon.open_findings("transfer-consent-missing", "mailchimp") == 1,
        "a consent finding",
    )
    assert (10, 6, 2, 0) == (
        consent_value(daemon, "subjects_shared"),
        consent_value(daemon, "missing_subjects"),
        consent_value(daemon, "withdrawn_subjects"),
        consent_value(daemon, "stale"),
    )
    checked = consent_value(daemon, "last_check_timestamp_seconds")
    assert checked is not None and checked > 0
    assert 0 == daemon.value("gdpr_auditor_job_failures_total", job_id="consent")

    (workdir.path / "crm.db").rename(workdir.path / "crm-away.db")
    failed = daemon.wait_for("consent_check_failed")
    daemon.wait_until(
        lambda: (daemon.value("gdpr_auditor_job_failures_total", job_id="consent") or 0) >= 1,
        "the failure counted",
    )
    daemon.wait_until(lambda: consent_value(daemon, "stale") == 1, "the counts marked stale")

    assert "crm" in failed["error"]
    assert (10, 6, 2) == (
        consent_value(daemon, "subjects_shared"),
        consent_value(daemon, "missing_subjects"),
        consent_value(daemon, "withdrawn_subjects"),
    )
    assert checked == consent_value(daemon, "last_check_timestamp_seconds")
    assert 1 == daemon.open_findings("transfer-consent-missing", "mailchimp")
    assert 1 == daemon.value("gdpr_auditor_leader")
    stored = workdir.store().list_findings(status="open", rule="transfer-consent-missing")
    assert ["mailchimp"] == [finding.integration for finding in stored]
    assert daemon.process.poll() is None

    (workdir.path / "crm-away.db").rename(workdir.path / "crm.db")
    daemon.wait_until(lambda: consent_value(daemon, "stale") == 0, "fresh counts again")
    assert 10 == consent_value(daemon, "subjects_shared")
    log = daemon.log_text()
    for subject in ("customer_id=", '"subject"'):
        assert subject not in log


@pytest.mark.slow
def test_a_misconfigured_consent_table_refuses_to_start_naming_the_setting(
    workdir: Workdir, spawn: Callable[..., DaemonProcess]
) -> None:
    """A consents table that is not in the database: exit 2 naming the config entry."""
    with_consent(workdir, {**MAPPING, "consents": {**MAPPING["consents"], "table": "consent"}})

    daemon = spawn(workdir.config)

    assert_refused_at_start(
        daemon, 2, "consent.mailchimp.consents.table: table 'consent' not found"
    )


@pytest.mark.slow
def test_imported_consents_without_the_subject_key_refuse_to_start(
    workdir: Workdir, spawn: Callable[..., DaemonProcess]
) -> None:
    """A mapping on imported consents needs GDPR_AUDITOR_SUBJECT_KEY: exit 2 naming it."""
    with_consent(workdir, {**MAPPING, "consents": {"imported": True}})

    daemon = spawn(workdir.config, env={SUBJECT_KEY_ENV: ""})

    assert 2 == daemon.exit_status(timeout=10)
    assert f"{SUBJECT_KEY_ENV}: is not set" in daemon.log_text()


def test_the_consent_job_is_scheduled_only_with_mappings(workdir: Workdir) -> None:
    """`jobs.consent` without consent mappings schedules nothing; with them, the job."""
    with_consent(workdir)
    with_mappings = in_process_daemon(workdir)
    config = yaml.safe_load(workdir.config.read_text())
    del config["consent"]
    workdir.config.write_text(yaml.safe_dump(config))
    without = in_process_daemon(workdir)
    try:
        assert {"audit", "consent"} == set(with_mappings._work_jobs())
        assert {"audit"} == set(without._work_jobs())
    finally:
        with_mappings.store.close()
        without.store.close()


def test_no_consent_job_unless_configured(workdir: Workdir) -> None:
    """Consent mappings without `jobs.consent`: no consent job."""
    with_consent(workdir, job=False)
    daemon = in_process_daemon(workdir)
    try:
        assert {"audit"} == set(daemon._work_jobs())
    finally:
        daemon.store.close()
