"""The Prometheus alert rules, their promtool unit tests, the runbook and the Alertmanager example."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
RULES = DASHBOARDS / "alerts.yml"
RULE_TESTS = DASHBOARDS / "alerts.test.yml"
ALERTMANAGER = DASHBOARDS / "alertmanager.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
RUNBOOK_BASE = "https://github.com/example-org/gdpr-auditor/blob/main/docs/runbook.md#"


def tool(name: str, package: str) -> str:
    """The path of a command-line tool; skips without it, and fails instead in CI."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (Debian package {package})"
        if os.environ.get("GDPR_AUDITOR_REQUIRE_SERVICES") == "1":
            pytest.fail(f"GDPR_AUDITOR_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    return path


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, check=False, cwd=DASHBOARDS, capture_output=True, text=True, timeout=60
    )


def alerts() -> list[dict[str, Any]]:
    """Every alerting rule in the rule file."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_rule_file() -> None:
    """`promtool check rules` finds the file valid."""
    result = run(tool("promtool", "prometheus"), "check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    """`promtool test rules` passes: each alert fires when expected and not before."""
    result = run(tool("promtool", "prometheus"), "test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_fails_a_wrong_expectation(tmp_path: Path) -> None:
    """The unit tests can fail: expecting GdprAuditorDown before its 5 minutes is an error."""
    tests = yaml.safe_load(RULE_TESTS.read_text())
    down = next(t for t in tests["tests"] if t["name"].startswith("GdprAuditorDown"))
    down["alert_rule_test"][0]["exp_alerts"] = down["alert_rule_test"][1]["exp_alerts"]
    tests["tests"] = [down]
    tests["rule_files"] = [str(RULES)]
    (tmp_path / "wrong.test.yml").write_text(yaml.safe_dump(tests))
    promtool = tool("promtool", "prometheus")
    result = subprocess.run(
        [promtool, "test", "rules", "wrong.test.yml"],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "GdprAuditorDown" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    """Each alert has a unit test expecting it, and one evaluation expecting no alert."""
    cases = [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    for rule in alerts():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{rule['alert']} never expected to fire"
        assert any(not case["exp_alerts"] for case in mine), f"{rule['alert']} never quiet"


def test_alerts_carry_the_labels_and_annotations_receivers_route_on() -> None:
    """CamelCase names; severity ticket for the DPO, page or warning for ops; runbook links."""
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names))
    for rule in alerts():
        name = rule["alert"]
        assert re.fullmatch(r"GdprAuditor(?:[A-Z][a-z]+)+", name), name
        labels = rule["labels"]
        assert (labels["team"], labels["severity"]) in {
            ("dpo", "ticket"),
            ("ops", "page"),
            ("ops", "warning"),
        }, name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        assert annotations["runbook_url"] == RUNBOOK_BASE + name.lower()


def test_every_runbook_link_has_a_section() -> None:
    """docs/runbook.md has a heading whose anchor is each alert's lower-case name."""
    headings = re.findall(r"^## (\S+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    assert sorted(h.lower() for h in headings) == sorted(r["alert"].lower() for r in alerts())


def test_the_issue_s_alerts_are_all_there() -> None:
    """Down, absent, jobs, critical findings, new transfers (of integrations and of web pages),
    consent, retention, data, reload, replica."""
    assert {rule["alert"] for rule in alerts()} == {
        "GdprAuditorDown",
        "GdprAuditorAbsent",
        "GdprAuditorJobNotSucceeding",
        "GdprAuditorCriticalFinding",
        "GdprAuditorNewUnlawfulTransfer",
        "GdprAuditorNewUnlawfulWebTransfer",
        "GdprAuditorConsentGaps",
        "GdprAuditorRetentionOverdue",
        "GdprAuditorRetentionUndetermined",
        "GdprAuditorGeoDataStale",
        "GdprAuditorConfigReloadFailed",
        "GdprAuditorNoActiveReplica",
    }


def test_amtool_accepts_the_alertmanager_example() -> None:
    """`amtool check-config` finds the example valid."""
    result = run(tool("amtool", "prometheus-alertmanager"), "check-config", ALERTMANAGER.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=ticket", "team=dpo"], "dpo-tickets"),
        (["alertname=GdprAuditorCriticalFinding", "severity=ticket", "team=dpo"], "dpo-tickets"),
        (["alertname=GdprAuditorDown", "severity=page", "team=ops"], "ops-oncall"),
        (["alertname=GdprAuditorGeoDataStale", "severity=warning", "team=ops"], "ops-oncall"),
    ],
)
def test_amtool_routes_compliance_and_operations_apart(labels: list[str], receiver: str) -> None:
    """Compliance alerts reach the DPO's ticket receiver, operational ones the on-call receiver."""
    amtool = tool("amtool", "prometheus-alertmanager")
    result = run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER.name}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [receiver]


def test_compliance_tickets_repeat_daily() -> None:
    """The DPO's route repeats a still-open compliance alert once a day, not every few hours."""
    config = yaml.safe_load(ALERTMANAGER.read_text())
    dpo = next(r for r in config["route"]["routes"] if r["receiver"] == "dpo-tickets")
    assert dpo["repeat_interval"] == "24h"
    assert dpo["matchers"] == ['team="dpo"']
