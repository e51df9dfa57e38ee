"""The reference pages cannot drift: rules, metrics and file keys are checked against the code."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from auditor.cli.schema import SCHEMAS
from auditor.service.metrics import build_registry
from auditor.service.snapshot import ConsentStatus, JobHealth, Snapshot
from tests.docs.samples import ROOT, example_scrape
from tests.docs.schema_keys import PLACEHOLDER, documented, key_paths

REFERENCE = ROOT / "docs" / "reference"


def table_rows(page: Path) -> list[list[str]]:
    """The cells of every Markdown table row of a page whose first cell is a `code` name."""
    rows = []
    for line in page.read_text().splitlines():
        if line.startswith("| `"):
            cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
            rows.append([cell.strip() for cell in cells])
    return rows


def code(cell: str) -> str:
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match is not None, f"expected one `name` in the cell: {cell!r}"
    return match.group(1)


# -- rules ---------------------------------------------------------------------------------------


def test_every_rule_is_documented_with_its_severity_and_article() -> None:
    """docs/reference/rules.md lists exactly the rules of policies/rules.yaml, each with the
    severity and article the policy data gives it."""
    rules = yaml.safe_load((ROOT / "policies" / "rules.yaml").read_text())["rules"]
    documented_rules = {
        code(row[0]): (row[1], row[2]) for row in table_rows(REFERENCE / "rules.md")
    }

    expected = {rule: (entry["severity"], entry["article"]) for rule, entry in rules.items()}
    assert expected == documented_rules


# -- metrics -------------------------------------------------------------------------------------

AT = datetime(2026, 11, 22, 10, tzinfo=UTC)
EVERYTHING = Snapshot(
    open_findings={("transfer-unsafeguarded", "critical", "crm"): 1},
    waived_findings={("location-drift", "warning"): 1},
    carried_findings={("location-unverified", "warning"): 1},
    waiver_expiry={  # the second cannot be exported: counted in metrics_rows_skipped
        ("location-drift", "warning"): date(2027, 1, 31),
        ("backup-not-offsite", "warning"): "9999-99-99",  # type: ignore[dict-item]
    },
    integrations_by_category={"crm": 1},
    places={("eea", "DE"): 1},
    jobs=(JobHealth("audit", 3600.0, 1, 0, AT, AT, 1.5),),
    dns_queries=3,
    dns_failures=1,
    data_built={("geoip-country", "GeoLite2-Country"): AT},
    last_audit=AT,
    config_reload_at=AT,
    version="1.0.0",
    retention_overdue={"crm-contacts": 2},
    retention_held={"crm-contacts": 1},
    retention_processed={("crm-contacts", "delete"): 5},
    retention_undetermined={"crm-contacts": 0},
    retention_last_enforcement={"crm-contacts": AT},
    consent={"crm": ConsentStatus(10, 2, 1, AT, False)},
    report_last_written=AT,
    web_third_parties={("shop", "accept", "unsafeguarded"): 1},
    web_pages={("shop", "observed"): 1},
    discovery_vendors={"declared": 2, "undeclared": 1},
    inventory_coverage=2 / 3,
)
"""A snapshot with every field set, so that every family has a sample and shows its labels."""


def exported(text: str) -> dict[str, tuple[str, set[str] | None]]:
    """The daemon's families in an exposition: name (as in `# TYPE`) -> type, and the label
    names of its samples (None without samples)."""
    types = dict(re.findall(r"^# TYPE (gdpr_auditor_\S+) (\S+)$", text, re.MULTILINE))
    families = {}
    for family in text_string_to_metric_families(text):
        name = next((n for n in types if n in (family.name, f"{family.name}_total")), None)
        if name is None:
            continue
        labels = {label for sample in family.samples for label in sample.labels}
        families[name] = (types[name], labels if family.samples else None)
    assert set(types) == set(families)
    return families


def documented_metrics() -> dict[str, tuple[str, set[str]]]:
    rows = table_rows(REFERENCE / "metrics.md")
    return {
        code(name): (kind, set(re.findall(r"`([^`]+)`", labels))) for name, kind, labels, _ in rows
    }


def test_every_metric_family_is_documented_with_its_type_and_labels() -> None:
    """docs/reference/metrics.md lists every family the collector yields, with its type and
    labels, and no other."""
    text = generate_latest(build_registry(lambda: EVERYTHING)).decode()
    families = exported(text)
    docs = documented_metrics()

    assert sorted(families) == sorted(docs)
    for name, (kind, labels) in families.items():
        assert kind == docs[name][0], name
        assert labels is not None, f"{name} has no sample: set its field in EVERYTHING"
        assert labels == docs[name][1], name


@pytest.mark.slow
def test_the_daemon_exports_exactly_the_documented_families() -> None:
    """A scrape of the daemon on the offline example has the documented families, no other."""
    families = exported(example_scrape())

    assert sorted(families) == sorted(documented_metrics())


# -- configuration, inventory and retention-policy keys -----------------------------------------

PAGES = {
    "config": ("configuration.md", ""),
    "inventory": ("inventory.md", "integrations[]."),
    "retention-policy": ("retention-policy.md", "policies[]."),
}
"""Each schema's reference page, and the prefix its keys are written without."""


def documented_keys(kind: str) -> set[str]:
    page, _ = PAGES[kind]
    return {code(row[0]) for row in table_rows(REFERENCE / page)}


def schema_keys(kind: str) -> set[str]:
    _, prefix = PAGES[kind]
    return {path.removeprefix(prefix) for path in key_paths(SCHEMAS[kind]())}


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_every_key_is_documented(kind: str) -> None:
    """Each key the file may have is in its reference page's tables (`<...>` stands for a name
    the user chooses)."""
    keys = documented_keys(kind)

    assert [] == sorted(path for path in schema_keys(kind) if not documented(path, keys))


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_every_documented_key_exists(kind: str) -> None:
    """The reference pages document no key the file may not have."""
    paths = schema_keys(kind)

    stale = [key for key in documented_keys(kind) if not any(documented(p, {key}) for p in paths)]
    assert [] == sorted(stale)


def test_placeholders_stand_for_names_only() -> None:
    """A documented `<...>` segment matches one name the user chooses, not a fixed key."""
    assert documented(f"data_sources.{PLACEHOLDER}.url", {"data_sources.<name>.url"})
    assert documented("jobs.audit.cron", {"jobs.<job>.cron"})
    assert not documented("jobs.audit.cron", {"jobs.<job>"})
    assert not documented("transfer.safeguards", {"transfer.<x>[]"})


def test_the_reference_examples_load_and_validate() -> None:
    """The first YAML block of the inventory and retention-policy pages is a valid file."""
    from auditor.core.policies import load_policies
    from auditor.core.yamlsource import YamlDocument
    from auditor.retention.policy import parse_retention
    from tests.docs.test_schemas import validator

    for kind, page in (("inventory", "inventory.md"), ("retention-policy", "retention-policy.md")):
        text = (REFERENCE / page).read_text()
        block = re.search(r"```yaml\n(.*?)```", text, re.DOTALL)
        assert block is not None, page
        data = yaml.safe_load(block.group(1))
        errors = [
            e.message
            for e in validator(kind).iter_errors(json.loads(json.dumps(data, default=str)))
        ]
        assert [] == errors, page
        doc = YamlDocument(page, data)
        if kind == "inventory":
            from auditor.core.inventory import parse_inventory

            assert [] == parse_inventory(doc, load_policies(None))[1]
        else:
            assert [] == parse_retention(doc)[1]
