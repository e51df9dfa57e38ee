"""The Grafana dashboards: written by dashboards/generate.py with grafana-foundation-sdk, within
Grafana's dashboard schema; stable uids, a datasource variable every panel uses, titled and
unitised panels, and queries scoped to the `job` and `instance` variables (rules of
grafana/dashboard-linter)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

GENERATOR = Path(__file__).resolve().parents[2] / "dashboards" / "generate.py"
GRAFANA = GENERATOR.parent / "grafana"
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
    """A DPO overview and an operations view, each with its own fixed uid and no id (Grafana
    gives one when it imports the dashboard)."""
    assert [path.name for path in DASHBOARDS] == ["dpo-overview.json", "operations.json"]
    uids = [load(path)["uid"] for path in DASHBOARDS]
    assert uids == ["gdpr-auditor-dpo", "gdpr-auditor-ops"]
    assert all(load(path).get("id") is None for path in DASHBOARDS)


def _generator() -> ModuleType:
    # dashboards/ is a directory of tools, not a package, so the script is loaded by its path.
    spec = importlib.util.spec_from_file_location("generate_dashboards", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_committed_dashboards_are_what_the_generator_writes(tmp_path: Path) -> None:
    """Nobody edits the JSON by hand: after a change to the generator, run
    `python dashboards/generate.py` and commit what it writes."""
    assert 0 == _generator().main([str(tmp_path)])

    written = sorted(tmp_path.glob("*.json"))
    assert [path.name for path in DASHBOARDS] == [path.name for path in written]
    for path in DASHBOARDS:
        assert (tmp_path / path.name).read_text() == path.read_text(), (
            f"{path.name} is not what dashboards/generate.py writes: run it and commit the result"
        )


def _lost(original: Any, decoded: Any, where: str = "") -> list[str]:
    """What of `original` is not in `decoded` (which may hold more: the schema's defaults)."""
    if isinstance(original, dict):
        if not isinstance(decoded, dict):
            return [where]
        return [
            lost
            for key, value in original.items()
            for lost in ([f"{where}.{key}"] if key not in decoded else [])
            or _lost(value, decoded[key], f"{where}.{key}")
        ]
    if isinstance(original, list):
        if not isinstance(decoded, list) or len(original) != len(decoded):
            return [where]
        return [lost for i, pair in enumerate(zip(original, decoded, strict=True))
                for lost in _lost(*pair, f"{where}[{i}]")]  # fmt: skip
    return [] if original == decoded else [f"{where}: {original!r} became {decoded!r}"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_field_of_the_dashboards_is_in_grafanas_schema(path: Path) -> None:
    """Read through the SDK's model of Grafana's dashboard schema, nothing is lost or changed:
    no field Grafana does not know, no value of the wrong type."""
    register_default_plugins()
    original = load(path)
    decoded = json.loads(json.dumps(Dashboard.from_json(original), cls=JSONEncoder))

    assert [] == _lost(original, decoded)


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
