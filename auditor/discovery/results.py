"""Discovery results: vendors found with their evidence, declared or not, as findings and stubs."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from auditor.core.model import Finding, Integration
from auditor.core.policies import PolicyData
from auditor.discovery.catalogue import Catalogue, Vendor
from auditor.discovery.config import DiscoverySettings
from auditor.discovery.dns_signals import Lookup, scan_domains
from auditor.discovery.evidence import Evidence, Signal
from auditor.discovery.pages import scan_pages

RULE = "inventory-undeclared"
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True, slots=True)
class FoundVendor:
    """A catalogue vendor seen in use, the evidence for it, and the integration declaring it."""

    vendor: Vendor
    evidence: tuple[Evidence, ...]
    hosts: tuple[str, ...]  # the vendor's hosts seen (page hosts, CNAME targets, ...)
    declared_as: str | None  # the inventory integration id, None when undeclared
    probes: tuple[str, ...] = ()  # the domains and pages whose scan saw it (probe scopes)


@dataclass(frozen=True, slots=True)
class Discovery:
    """Everything one discovery run found; `problems` are what could not be checked."""

    vendors: tuple[FoundVendor, ...]
    unknown: dict[str, tuple[Evidence, ...]]  # third-party host -> evidence, no catalogue match
    problems: tuple[str, ...]
    failures: int = 0  # lookups and pages that could not be read: some vendors may be missing
    probes: tuple[str, ...] = ()  # every domain, CNAME name and page scanned (probe scopes)
    failed: dict[str, str] = field(default_factory=dict)  # probe -> why it showed nothing

    @property
    def declared(self) -> list[FoundVendor]:
        return [found for found in self.vendors if found.declared_as is not None]

    @property
    def undeclared(self) -> list[FoundVendor]:
        return [found for found in self.vendors if found.declared_as is None]

    @property
    def complete(self) -> bool:
        """Whether every domain and page could be scanned."""
        return not self.failed and not self.failures

    @property
    def nothing_checked(self) -> bool:
        """Whether every domain and page failed: the run saw nothing at all."""
        return bool(self.probes) and all(probe in self.failed for probe in self.probes)

    @property
    def coverage(self) -> float | None:
        """Declared vendors over discovered ones (1.0 when nothing was discovered), or None when
        unknown: a source that could not be scanned may hide undeclared vendors."""
        if not self.complete:
            return None
        return len(self.declared) / len(self.vendors) if self.vendors else 1.0


def declared_by(vendor: Vendor, integrations: Sequence[Integration]) -> str | None:
    """The integration that declares a vendor: same id, an endpoint under the vendor's domains,
    or the same vendor or product name (case ignored)."""
    names = {vendor.name.lower(), vendor.id}
    for integration in integrations:
        if integration.id == vendor.id:
            return integration.id
    for integration in integrations:
        if any(vendor.owns(endpoint) for endpoint in integration.endpoints):
            return integration.id
        if {integration.vendor.lower(), integration.name.lower()} & names:
            return integration.id
    return None


def collect(
    signals: Sequence[Signal],
    problems: Sequence[str],
    catalogue: Catalogue,
    integrations: Sequence[Integration],
    failures: int = 0,
    probes: Sequence[str] = (),
    failed: Mapping[str, str] | None = None,
) -> Discovery:
    """Group signals by vendor (catalogue order) and by unknown host; match the inventory.
    `probes` are the sources scanned, `failed` those that showed nothing, with why."""
    evidence: dict[str, list[Evidence]] = {}
    seen_by: dict[str, list[str]] = {}
    hosts: dict[str, list[str]] = {}
    unknown: dict[str, list[Evidence]] = {}
    for signal in signals:
        if signal.vendor is None:
            unknown.setdefault(signal.host, []).append(signal.evidence)
            continue
        evidence.setdefault(signal.vendor, []).append(signal.evidence)
        if signal.probe:
            seen_by.setdefault(signal.vendor, []).append(signal.probe)
        vendor = catalogue.vendors[signal.vendor]
        if vendor.owns(signal.host) and signal.evidence.kind in ("page", "cname"):
            hosts.setdefault(signal.vendor, []).append(signal.host)
    found = tuple(
        FoundVendor(
            vendor=vendor,
            evidence=tuple(dict.fromkeys(evidence[vendor.id])),
            hosts=tuple(dict.fromkeys(hosts.get(vendor.id, []))),
            declared_as=declared_by(vendor, integrations),
            probes=tuple(sorted(set(seen_by.get(vendor.id, [])))),
        )
        for vendor in catalogue.vendors.values()
        if vendor.id in evidence
    )
    return Discovery(
        vendors=found,
        unknown={host: tuple(dict.fromkeys(items)) for host, items in sorted(unknown.items())},
        problems=tuple(problems),
        failures=failures,
        probes=tuple(probes),
        failed=dict(failed or {}),
    )


def discover(
    settings: DiscoverySettings,
    catalogue: Catalogue,
    integrations: Sequence[Integration],
    lookup: Lookup,
) -> Discovery:
    """Scan the configured domains' DNS and the configured pages; see `collect`."""
    dns = scan_domains(settings, catalogue, lookup)
    pages = scan_pages(
        settings.pages,
        settings.domains,
        catalogue,
        timeout=settings.timeout,
        max_bytes=settings.max_page_bytes,
    )
    return collect(
        [*dns.signals, *pages.signals],
        [*dns.problems, *pages.problems],
        catalogue,
        integrations,
        failures=dns.failures + len(pages.problems),  # every page problem is a page not read
        probes=[*dns.probes, *pages.probes],
        failed={**dns.failed, **pages.failed},
    )


def undeclared_findings(discovery: Discovery, policies: PolicyData) -> list[Finding]:
    """One `inventory-undeclared` finding per vendor in use that the inventory does not list
    (Art. 30); its integration and place are the vendor id, its evidence the signals, its
    probes the domains and pages that showed them (while one of those fails, it is carried)."""
    return [
        policies.finding(
            RULE,
            found.vendor.id,
            (f"{found.vendor.name} is in use ({_kinds(found)}) but no inventory entry declares it"),
            place=found.vendor.id,
            evidence={"signals": [item.as_json() for item in found.evidence]},
            probes=found.probes,
        )
        for found in discovery.undeclared
    ]


def _kinds(found: FoundVendor) -> str:
    kinds = dict.fromkeys(item.kind for item in found.evidence)
    return ", ".join(kind.upper() if kind != "page" else "web page" for kind in kinds)


def discovery_json(discovery: Discovery) -> dict[str, Any]:
    """The JSON form of a discovery run, for `discover --format json`."""
    return {
        "vendors": [
            {
                "id": found.vendor.id,
                "name": found.vendor.name,
                "category": found.vendor.category,
                "declared": found.declared_as is not None,
                "integration": found.declared_as,
                "hosts": list(found.hosts),
                "evidence": [item.as_json() for item in found.evidence],
            }
            for found in discovery.vendors
        ],
        "unknown_hosts": [
            {"host": host, "evidence": [item.as_json() for item in items]}
            for host, items in discovery.unknown.items()
        ],
        "coverage": None if discovery.coverage is None else round(discovery.coverage, 4),
        "complete": discovery.complete,
        "problems": list(discovery.problems),
    }


def render_table(discovery: Discovery) -> str:
    """A plain-text listing for people: vendors, evidence, unknown hosts, problems."""
    found_count, missing = len(discovery.vendors), len(discovery.undeclared)
    summary = f"{found_count} vendors found, {missing} not in the inventory"
    if discovery.nothing_checked:
        coverage = "coverage unknown: no domain or page could be checked"
    elif discovery.coverage is None:
        coverage = "coverage unknown: some domains or pages could not be checked"
    else:
        coverage = f"coverage {discovery.coverage:.0%}"
    lines = [f"{summary} ({coverage})"]
    for found in discovery.vendors:
        state = f"declared as {found.declared_as}" if found.declared_as else "NOT DECLARED"
        lines.append(f"\n{found.vendor.name} ({found.vendor.id}, {found.vendor.category}): {state}")
        lines.extend(f"  {_evidence_line(item)}" for item in found.evidence)
    if discovery.unknown:
        lines.append("\nThird-party hosts not in the vendor catalogue:")
        for host, items in discovery.unknown.items():
            lines.append(f"  {host}: {_evidence_line(items[0])}")
    if discovery.problems:
        lines.append("\nCould not check:")
        lines.extend(f"  {problem}" for problem in discovery.problems)
    return "\n".join(lines) + "\n"


def _evidence_line(item: Evidence) -> str:
    if item.kind == "page":
        return f"page {item.name}: {item.matched} {item.value}"
    if item.kind in ("spf", "dmarc"):  # a long record: say which part of it matched first
        return f"{item.kind.upper()} {item.name}: {item.matched} in {item.value!r}"
    return f"{item.kind.upper()} {item.name}: {item.value}"


_HEADER = """\
# Integrations found in use but missing from the inventory (gdpr-auditor discover).
# Complete every TODO, then move the entries into an inventory file.
integrations:
"""


def inventory_stubs(discovery: Discovery) -> str:
    """Inventory YAML for the undeclared vendors, with TODO comments for what only people know.

    The catalogue's hosting places and DPF status are starting points, not facts about the
    organisation's contract: each is marked for checking.
    """
    if not discovery.undeclared:
        return "# Every vendor found is already in the inventory.\nintegrations: []\n"
    return _HEADER + "\n".join(_stub(found) for found in discovery.undeclared)


def _flow(values: Sequence[str]) -> str:
    return "[" + ", ".join(_scalar(value) for value in values) + "]"


def _scalar(value: str) -> str:
    return yaml.safe_dump(value, default_style=None).removesuffix("\n...\n").strip()


def _stub(found: FoundVendor) -> str:
    vendor = found.vendor
    endpoints = [host for host in found.hosts if all(_LABEL.match(p) for p in host.split("."))]
    # Whitespace folded: a record with a line break must not end the YAML comment early.
    lines = [f"  # Found: {' '.join(_evidence_line(e).split())}" for e in found.evidence[:5]]
    lines += [
        f"  - id: {vendor.id}",
        f"    name: {_scalar(vendor.name)}",
        f"    vendor: {_scalar(vendor.name)}  # TODO: the legal entity you contract with",
        _vendor_country(vendor),
        f"    category: {_category(vendor)}",
        "    role: processor  # TODO: processor, controller or joint-controller?",
        "    data_categories: []  # TODO: which personal data does it receive?",
        f"    endpoints: {_flow(endpoints)}",
        f"    hosting: {_flow(vendor.hosting)}  # TODO: check the contract (catalogue default)",
        "    support: []  # TODO: where is support given from?",
        "    transfer:",
        *_transfer_hints(vendor),
        "    # TODO: contract.dpa_signed, retention, subprocessors, backups",
    ]
    return "\n".join(lines) + "\n"


def _category(vendor: Vendor) -> str:
    """The inventory category, noting the catalogue's own where the inventory has no word for it."""
    if vendor.inventory_category == vendor.category:
        return vendor.category
    return f"{vendor.inventory_category}  # the catalogue says {vendor.category}"


def _vendor_country(vendor: Vendor) -> str:
    """The catalogue's headquarters as `vendor_country`, marked for checking (a controlling
    parent elsewhere decides it), or a TODO when the catalogue does not know them."""
    if vendor.headquarters is None:
        return (
            "    # TODO: vendor_country: the ISO code of the vendor's headquarters or "
            "controlling parent"
        )
    source = " ".join(vendor.sources.get("headquarters", "unknown").split())
    return (
        f"    vendor_country: {_scalar(vendor.headquarters)}  # TODO: check (catalogue "
        f"headquarters, source: {source}); a controlling parent elsewhere decides it"
    )


def _transfer_hints(vendor: Vendor) -> list[str]:
    """The catalogue's DPF status and usual adequacy scope as comments, never as active keys.

    A catalogue entry is a hint: only the DPO's own check of the DPF List, or of the recipient's
    status under a limited decision, may become a certification or an `in_scope_of` entry.
    """
    lines = []
    if vendor.dpf:
        lines += [
            "      # TODO: the catalogue says this vendor is on the DPF List (unchecked). Check",
            "      # dataprivacyframework.gov/list, then record the certification, e.g.",
            "      # certifications: [{framework: dpf, since: YYYY-MM-DD, until: null, hr: false}]",
        ]
    else:
        lines.append("      # TODO: record US framework certifications here, if any (DPF List)")
    lines.append("      certifications: []")
    if vendor.adequacy_scope:
        scopes = ", ".join(vendor.adequacy_scope)
        lines += [
            f"      # TODO: the catalogue says this vendor is usually within {scopes} (unchecked).",
            "      # Confirm it for this contract before recording it, e.g.",
            f"      # in_scope_of: [{scopes}]",
        ]
    lines.append("      in_scope_of: []")
    return lines
