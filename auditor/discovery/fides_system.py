"""One Fides system (fideslang 3, with fideslang 1 and 2 names) into one inventory entry, every
field with an inventory counterpart mapped and every doubt written down as a TODO."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from auditor.core.durations import Duration
from auditor.core.inventory import DATA_CATEGORIES
from auditor.core.iso3166 import country_code
from auditor.core.yamlsource import YamlDocument
from auditor.discovery import fides_contract as contract
from auditor.discovery import fides_vocabulary as vocab
from auditor.discovery.fides_model import (
    EMPTY,
    Declaration,
    FidesSystem,
    Notes,
    read_declarations,
    strings,
    text,
)
from auditor.discovery.imports import ImportResult, slug, stub

_MAPPED = frozenset({
    "fides_key", "name", "privacy_declarations", "legal_name", "legal_address", "responsibility",
    "joint_controller_info", "does_international_transfers", "legal_basis_for_transfers",
    "dpa_location", "link_to_processor_contract", "processes_personal_data",
    "exempt_from_privacy_regulations", "reason_for_exemption", "egress", "fidesctl_meta",
    # fideslang 1 and 2, removed in 3
    "third_country_transfers", "data_responsibility_title", "joint_controller",
})  # fmt: skip
_BOOKKEEPING = frozenset({
    "organization_fides_key", "system_type", "id", "created_at", "updated_at", "hidden", "user_id",
})  # fmt: skip
"""Keys that say nothing about the data or the vendor: passed over in silence."""
_NO_FIELD = frozenset({
    "description", "tags", "meta", "administrating_department", "vendor_id",
    "previous_vendor_id", "vendor_deleted_date", "dataset_references", "uses_profiling",
    "legal_basis_for_profiling", "requires_data_protection_assessments", "dpa_progress",
    "privacy_policy", "dpo", "data_security_practices", "cookie_max_age_seconds", "uses_cookies",
    "cookie_refresh", "uses_non_cookie_access", "legitimate_interest_disclosure_url", "ingress",
    "data_stewards", "connection_configs", "system_groups", "system_group_fides_key", "cookies",
    "registry_id", "data_protection_impact_assessment", "system_dependencies",
})  # fmt: skip
"""fideslang system fields with no inventory counterpart: named in a note when they hold a value."""
_DECLARATION_MAPPED = frozenset({
    "name", "id", "data_categories", "data_use", "data_subjects", "retention_period",
    "processes_special_category_data", "special_category_legal_basis",
    "data_shared_with_third_parties", "third_parties", "shared_categories", "egress",
    "undeclared_data_categories",
    # whether a privacy notice may override the basis: nothing to check here
    "flexible_legal_basis_for_processing",
})  # fmt: skip
_DECLARATION_NO_FIELD = frozenset({
    "dataset_references", "ingress", "features", "legal_basis_for_processing", "impact_assessment_location", "cookies", "data_qualifier",
})  # fmt: skip
_ORDER = (
    "id", "name", "vendor", "vendor_country", "category", "role", "data_categories", "endpoints", "hosting",
    "retention", "transfer", "_todo", "_note",
)  # fmt: skip
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def map_system(doc: YamlDocument, system: FidesSystem, result: ImportResult) -> None:
    """Add the inventory entry for one system to `result`, with its TODOs."""
    data = system.data
    entry = stub(slug(system.key), text(data.get("name")) or system.key)
    notes = Notes(doc, system, entry)
    legal_name = text(data.get("legal_name"))
    if legal_name:
        entry["vendor"] = legal_name
    declarations = read_declarations(data, notes)
    entry["category"] = _category(declarations, notes)
    entry["role"] = _role(data, notes)
    entry["data_categories"] = _data_categories(data, declarations, notes)
    _endpoints(data, entry, notes)
    entry["hosting"] = _hosting(data, notes)
    period = _retention(declarations, notes)
    if period is not None:
        entry["retention"] = str(period)
    contract.transfer(data, entry, notes)
    contract.contract(data, entry, notes)
    contract.vendor_country(data, entry, notes)
    contract.flows(data, declarations, notes)
    _unmapped_keys(data, declarations, entry, notes)
    for loc, message in system.pending:
        notes.at(loc, message)
    if system.columns:
        entry["_note"].append(f"no inventory field for the columns {', '.join(system.columns)}")
    rank = {key: index for index, key in enumerate(_ORDER)}
    result.entries.append(dict(sorted(entry.items(), key=lambda item: rank.get(item[0], 99))))
    result.unmapped.extend(notes.problems)
    where = f"{doc.source}: system {system.key!r}: "
    result.notes.extend(where + note for note in entry["_note"])


def _category(declarations: list[Declaration], notes: Notes) -> str:
    uses = list(dict.fromkeys(u for d in declarations for u in d.uses))
    category = vocab.inventory_category(uses)
    if category is None:
        shown = ", ".join(uses) or "(none)"
        notes.todo(("privacy_declarations",), f"set the category from the data uses: {shown}")
        return "other"
    return category


def _role(data: dict[str, Any], notes: Notes) -> str:
    titles = strings(data.get("responsibility"), ("responsibility",), notes)
    key = "responsibility"
    if not titles and text(data.get("data_responsibility_title")):
        titles, key = [str(data["data_responsibility_title"])], "data_responsibility_title"
    roles = {vocab.ROLES.get(title.lower()) for title in titles}
    unknown = [title for title in titles if title.lower() not in vocab.ROLES]
    if unknown:
        notes.todo((key,), f"{', '.join(map(repr, unknown))} is no role the inventory knows")
    joint = data.get("joint_controller_info") not in EMPTY or data.get("joint_controller")
    roles.discard(None)
    if roles == {"controller"}:
        if joint:
            return "joint-controller"
        notes.todo((key,), "Fides says the vendor is a controller, so no DPA is checked: "
                   "confirm it does not process the data on your behalf")  # fmt: skip
        return "controller"
    if joint:
        notes.todo(("joint_controller_info",), "a joint controller is recorded: if the vendor "
                   "is one, set role: joint-controller")  # fmt: skip
    if "sub-processor" in {title.lower() for title in titles}:
        notes.todo((key,), "Fides says sub-processor: list this entry under its processor's "
                   "subprocessors")  # fmt: skip
    if roles == {"processor"}:
        return "processor"
    reason = "both controller and processor" if roles else "no role"
    notes.todo((key,), f"Fides records {reason}: processor assumed (a DPA is checked)")
    return "processor"


def _data_categories(
    data: dict[str, Any], declarations: list[Declaration], notes: Notes
) -> list[str]:
    found: dict[str, None] = {}
    unclassified: list[str] = []
    for declaration in declarations:
        for key in ("data_categories", "shared_categories", "undeclared_data_categories"):
            path = declaration.path(key)
            for category in strings(declaration.data.get(key), path, notes):
                if not vocab.is_personal(category):
                    continue
                mapped = vocab.data_category(category)
                if mapped is None:
                    unclassified.append(category)
                    mapped = "unclassified"
                found[mapped] = None
            if key == "undeclared_data_categories" and declaration.data.get(key):
                notes.todo(path, "Fides found these categories in the system's data but no "
                           "declaration names them; they are included")  # fmt: skip
        _special(declaration, found, notes)
    personal = data.get("processes_personal_data")
    if unclassified:
        shown = ", ".join(dict.fromkeys(unclassified))
        notes.todo(("privacy_declarations",), f"personal data of a kind to be confirmed ({shown}):"
                   " replace unclassified with the inventory's categories")  # fmt: skip
    elif not found and personal is not False:
        found["unclassified"] = None
        notes.todo(("processes_personal_data",), "Fides says the system processes personal data "
                   "but declares no personal category: replace unclassified with the kinds it "
                   "holds (an empty list means it holds none)")  # fmt: skip
    if found and personal is False:
        notes.todo(("processes_personal_data",), "Fides says no personal data, but declares "
                   "personal categories: they are kept")  # fmt: skip
    hr = vocab.hr_data(
        [u for d in declarations for u in d.uses], [s for d in declarations for s in d.subjects]
    )
    if hr:
        found["employment"] = None
        notes.todo(("privacy_declarations",), f"staff data ({', '.join(hr)}): employment added, "
                   "which US certifications must cover as HR data")  # fmt: skip
    return [category for category in DATA_CATEGORIES if category in found]


def _special(declaration: Declaration, found: dict[str, None], notes: Notes) -> None:
    """Art. 9 data a declaration says it processes, whatever its categories say."""
    if declaration.data.get("processes_special_category_data") is not True:
        return
    basis = text(declaration.data.get("special_category_legal_basis"))
    if not {"health", "special"} & set(found):
        found["special"] = None
        notes.todo(declaration.path("processes_special_category_data"),
                   "special-category data (Art. 9) without an Art. 9 category: special added"
                   + (f" (basis: {basis})" if basis else ""))  # fmt: skip


def _endpoints(data: dict[str, Any], entry: dict[str, Any], notes: Notes) -> None:
    meta = data.get("fidesctl_meta")
    address = text(meta.get("endpoint_address")) if isinstance(meta, dict) else None
    if address is None:
        return
    host = _hostname(address)
    if host is not None:
        entry["endpoints"] = [host]
    else:
        notes.todo(("fidesctl_meta", "endpoint_address"),
                   f"{address!r} is no hostname: list the vendor's hostnames as endpoints")  # fmt: skip


def _hostname(address: str) -> str | None:
    """The hostname in an address or URL; None for an IP address or anything else."""
    try:
        host = urlsplit(address if "//" in address else f"//{address}").hostname
    except ValueError:
        return None
    labels = (host or "").rstrip(".").split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return None
    return None if all(label.isdigit() for label in labels) else ".".join(labels)


def _hosting(data: dict[str, Any], notes: Notes) -> list[str]:
    hosting: list[str] = []
    path = ("third_country_transfers",)
    for country in strings(data.get("third_country_transfers"), path, notes):
        if country.upper() in ("N/A", "NONE"):
            continue
        code = country_code(country)
        if code is None:
            notes.todo(
                path,
                f"{country!r} is no country code this import knows: add the place by its ISO code",
            )
        elif code not in hosting:
            hosting.append(code)
    if hosting:
        notes.todo(path, "hosting is read from the third-country transfers: add the EEA places "
                   "the data is also kept in")  # fmt: skip
        return hosting
    warning = "until then the audit warns that the location is undisclosed"
    if data.get("does_international_transfers") is True:
        notes.todo(("does_international_transfers",), "Fides says the data goes to other "
                   f"countries but not where: list the places under hosting (and support); {warning}")  # fmt: skip
    else:
        notes.todo(("does_international_transfers",), "Fides records no place: list where the "
                   f"data is hosted; {warning}")  # fmt: skip
    return hosting


def _retention(declarations: list[Declaration], notes: Notes) -> Duration | None:
    periods: list[tuple[Duration, Declaration]] = []
    for declaration in declarations:
        text = declaration.data.get("retention_period")
        path = declaration.path("retention_period")
        if text is None or text == "":
            continue
        if not isinstance(text, str):
            notes.todo(path, "not text, not read")
            continue
        reading = vocab.retention(text)
        if reading.duration is None:
            notes.todo(path, f"{text!r} is no period: set retention as an ISO 8601 duration")
            continue
        for assumption in reading.assumptions:
            notes.todo(path, assumption)
        periods.append((reading.duration, declaration))
    if not periods:
        return None
    shortest = min(periods, key=lambda p: p[0].approx_seconds())[0]
    if len({str(p[0]) for p in periods}) > 1:
        shown = ", ".join(sorted({str(p[0]) for p in periods}))
        notes.todo(("privacy_declarations",), f"the declarations keep data for {shown}: the "
                   f"shortest, {shortest}, was used")  # fmt: skip
    return shortest


def _unmapped_keys(
    data: dict[str, Any], declarations: list[Declaration], entry: dict[str, Any], notes: Notes
) -> None:
    no_field = [k for k in data if k in _NO_FIELD and data[k] not in EMPTY]
    unknown = [str(k) for k in data if k not in _MAPPED | _BOOKKEEPING | _NO_FIELD]
    for declaration in declarations:
        for key, value in declaration.data.items():
            if key in _DECLARATION_NO_FIELD and value not in EMPTY:
                no_field.append(f"privacy_declarations.{key}")
            elif key not in _DECLARATION_MAPPED | _DECLARATION_NO_FIELD:
                unknown.append(f"privacy_declarations.{key}")
    if no_field:
        entry["_note"].append(f"no inventory field for {', '.join(dict.fromkeys(no_field))}")
    if unknown:
        notes.todo((), f"unknown fields, not mapped: {', '.join(dict.fromkeys(unknown))}")
