"""The Grafana dashboards: stable uids, a datasource variable every panel uses, titled and unitised
panels, and queries scoped to the `job` and `instance` variables (rules of grafana/dashboard-linter)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

GRAFANA = Path(__file__).resolve().parents[2] / "dashboards" / "grafana"
DASHBOARDS = sorted(GRAFANA.glob("*.json"))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
UNITS = {"short", "s", "bool", "ops", "bytes", "percentunit", "dateTimeFromNow", "none"}


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows included."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def test_both_dashboards_exist_with_stable_uids() -> None:
    """A DPO overview and an operations view, each with its own fixed uid and a null id."""
    assert [path.name for path in DASHBOARDS] == ["dpo-overview.json", "operations.json"]
    uids = [load(path)["uid"] for path in DASHBOARDS]
    assert uids == ["gdpr-auditor-dpo", "gdpr-auditor-ops"]
    assert all(load(path)["id"] is None for path in DASHBOARDS)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_has_datasource_job_and_instance_variables(path: Path) -> None:
    """A Prometheus datasource variable, and job and instance variables queried through it."""
    found = variables(load(path))
    assert found["datasource"]["type"] == "datasource"
    assert found["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert found[name]["type"] == "query"
        assert found[name]["datasource"] == DATASOURCE
    assert found["instance"]["includeAll"] and found["instance"]["allValue"] == ".*"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_has_title_description_unit_and_the_datasource_variable(path: Path) -> None:
    """No untitled, unexplained or unit-less panel; panel and target datasources are the variable."""
    dashboard = load(path)
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    titles = [panel["title"] for panel in panels(dashboard)]
    assert len(titles) == len(set(titles))
    for panel in panels(dashboard):
        assert panel["title"].strip(), panel
        assert len(panel["description"]) > 20, panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"] in UNITS, panel["title"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_selector_is_scoped_to_job_and_instance(path: Path) -> None:
    """Each metric selector filters job=~"$job" and instance=~"$instance"; rates use $__rate_interval."""
    for panel in panels(load(path)):
        for target in panel["targets"]:
            expr = target["expr"]
            selectors = re.findall(r"\b([a-z_:]+)\{([^}]*)\}", expr)
            assert selectors, expr
            for _, matchers in selectors:
                assert 'job=~"$job"' in matchers and 'instance=~"$instance"' in matchers, expr
            for window in re.findall(r"\[([^\]]+)\]", expr):
                assert window == "$__rate_interval", expr


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_timestamps_are_shown_as_ages_in_seconds(path: Path) -> None:
    """Panels over *_timestamp_seconds show seconds: an age (time() - t) or time left (t - time())."""
    for panel in panels(load(path)):
        exprs = " ".join(target["expr"] for target in panel["targets"])
        if "_timestamp_seconds" in exprs:
            assert "time() -" in exprs or exprs.rstrip().endswith("- time()"), panel["title"]


def test_the_issue_s_panels_are_all_there() -> None:
    """DPO: posture, findings, places, consent, retention, waivers, websites; ops: jobs, DNS,
    data, replicas."""
    dpo, ops = ({panel["title"] for panel in panels(load(path))} for path in DASHBOARDS)
    assert {
        "Posture over time",
        "Open findings by rule, severity and integration",
        "Places by country and verdict",
        "Consent coverage",
        "Retention backlog",
        "Waived findings",
        "Waivers about to expire",
        "Website third parties by site, consent state and verdict",
    } <= dpo
    assert {
        "Job last success age",
        "Job runs and failures",
        "Job durations",
        "DNS queries and failures",
        "Geolocation data age",
        "Leader",
        "Config reload",
    } <= ops


def test_provisioning_file_loads_the_dashboards_from_files() -> None:
    """The provisioning file declares one file provider in a GDPR folder, not editable in the UI."""
    config = yaml.safe_load((GRAFANA / "provisioning.yml").read_text())
    assert config["apiVersion"] == 1
    [provider] = config["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "GDPR"
    assert provider["allowUiUpdates"] is False
    assert provider["options"]["path"]
