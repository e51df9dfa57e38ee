"""Test helpers: inventories and configuration sections from YAML text, the shipped policy data
loaded once."""

from __future__ import annotations

import functools
import socket
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import yaml

from auditor.consent.config import ConsentSettings, parse_consent
from auditor.core.errors import InvalidInputError
from auditor.core.inventory import check_references, parse_inventory
from auditor.core.model import Integration
from auditor.core.policies import PolicyData, load_policies
from auditor.core.yamlsource import YamlDocument, parse_yaml
from auditor.sources.config import parse_data_sources

shipped_policies = functools.cache(load_policies)


GEODB_RANGES = Path(__file__).resolve().parent.parent / "geodb" / "ip-ranges"
"""The IP range files the project ships."""


def free_port() -> int:
    """A loopback TCP port nothing listens on (free when this returns)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def integrations_from(text: str, policies: PolicyData | None = None) -> list[Integration]:
    """Parse inventory YAML text that must be valid."""
    doc = parse_yaml(textwrap.dedent(text), "inventory.yaml")
    found, issues = parse_inventory(doc, policies or shipped_policies())
    issues += check_references(found)
    assert not issues, "\n".join(map(str, issues))
    return found


BACKUP_PRACTICE: dict[str, object] = {
    "restore_tested": "2025-12-01",
    "documented": {"at": "runbooks/backups.md", "reviewed": "2025-12-01"},
}
"""A restore test and a documentation review recent enough (P12M) for the fixed days the tests
audit on, 2025-12-01 to 2026-12-01 (without them, every entry has info findings). Tests that
audit on today's date see them go stale: those check exit statuses at `critical` only."""


def minimal(ident: str = "vendor", **overrides: object) -> dict[str, object]:
    """A valid integration entry as a dict, with keys overridden; clean, by an EEA vendor."""
    entry: dict[str, object] = {
        "id": ident,
        "name": ident.title(),
        "vendor_country": "DE",
        "category": "crm",
        "role": "processor",
        "data_categories": ["contact"],
        "hosting": ["DE"],
        "backups": {"regions": ["aws:eu-west-1"], "retention": "P30D", **BACKUP_PRACTICE},
        "retention": "P1Y",
        "contract": {"dpa_signed": "2024-01-01"},
    }
    entry.update(overrides)
    return entry


def entry(ident: str, **overrides: object) -> dict[str, object]:
    """A valid integration entry as a dict (backups in Ireland), with keys overridden: the
    command-line and evidence tests' inventories are built from it."""
    backups = {"regions": ["IE"], "retention": "P30D", **BACKUP_PRACTICE}
    return minimal(ident, **{"backups": backups, **overrides})


SAMPLE_VENDORS: dict[str, dict[str, object]] = {
    "crm": {
        "name": "CRM",
        "vendor": "Example CRM GmbH",
        "support": ["IN"],
        "transfer": {"safeguards": ["scc"]},
    },
    "mail": {"vendor": "Mailer Inc.", "category": "email-marketing", "retention": "P2Y"},
    "stats": {
        "vendor": "Stats Corp",
        "category": "analytics",
        "hosting": ["US"],
        "transfer": {"dpf_certified": True},
    },
    "helpdesk": {
        "vendor": "Helpdesk LLC",
        "category": "support",
        "hosting": ["US"],
        "data_categories": ["contact", "health"],
    },
    "cloud": {"vendor": "Cloud Provider", "vendor_country": "US", "hosting": ["aws:eu-central-1"]},
}
"""The vendors the register and evidence tests' inventories share: an EEA CRM with support in
India, a US mailer, DPF-certified US statistics, a US helpdesk holding health data and a US
cloud hosting in Frankfurt."""


def sample(
    ident: str, build: Callable[..., dict[str, object]] = minimal, **overrides: object
) -> dict[str, object]:
    """One of SAMPLE_VENDORS as `build` (`minimal` or `entry`) makes it, with keys overridden."""
    return build(ident, **{**SAMPLE_VENDORS[ident], **overrides})


def consent_settings(doc: YamlDocument, base: Path | None = None) -> ConsentSettings:
    """The `data_sources:` and `consent:` sections of a configuration document, validated as
    `load_config` validates them.

    Raises:
        InvalidInputError: every problem of the two sections.
    """
    sources, issues = parse_data_sources(doc, base)
    mappings, more = parse_consent(doc, sources)
    if issues + more:
        raise InvalidInputError(issues + more)
    return ConsentSettings(data_sources=sources, consent=mappings)


def write_config(
    directory: Path,
    integrations: Sequence[Mapping[str, object]] | str | None = None,
    **sections: object,
) -> Path:
    """Write `auditor.yaml` (its `sections`, `inventory: [inventory.yaml]` unless given) into
    `directory`, and `inventory.yaml` from `integrations` (entries, or YAML text) when given;
    return the configuration's path."""
    if integrations is not None:
        inventory = (
            integrations
            if isinstance(integrations, str)
            else yaml.safe_dump({"integrations": list(map(dict, integrations))})
        )
        (directory / "inventory.yaml").write_text(inventory, encoding="utf-8")
    path = directory / "auditor.yaml"
    path.write_text(yaml.safe_dump({"inventory": ["inventory.yaml"], **sections}), encoding="utf-8")
    return path
