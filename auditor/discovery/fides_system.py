"""One Fides system (fideslang 3, with fideslang 1 and 2 names) into one inventory entry, every
field with an inventory counterpart mapped and every doubt written down as a TODO."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from auditor.core.durations import Duration
from auditor.core.errors import Issue
from auditor.core.inventory import DATA_CATEGORIES
from auditor.core.yamlsource import Loc, YamlDocument
from auditor.discovery import fides_vocabulary as vocab
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
})  # fmt: skip
_DECLARATION_NO_FIELD = frozenset({
    "dataset_references", "ingress", "features", "flexible_legal_basis_for_processing",
    "legal_basis_for_processing", "impact_assessment_location", "cookies", "data_qualifier",
})  # fmt: skip
_ORDER = (
    "id", "name", "vendor", "category", "role", "data_categories", "endpoints", "hosting",
    "retention", "transfer", "_todo", "_note",
)  # fmt: skip
_EMPTY: tuple[object, ...] = (None, "", [], {}, False, "Not defined")
"""Values that hold nothing (fideslang's default department is the text "Not defined")."""


@dataclass(frozen=True, slots=True)
class FidesSystem:
    """A system in fideslang's shape, and where in the document each part of it was read."""

    key: str
    data: dict[str, Any]
    origin: dict[Loc, Loc] = field(default_factory=dict)
    columns: dict[str, None] = field(default_factory=dict)  # report columns with no counterpart
    pending: list[tuple[Loc, str]] = field(default_factory=list)  # (document location, TODO)

    def loc(self, path: Loc) -> Loc:
        """The document location a path inside `data` was read from."""
        for end in range(len(path), -1, -1):
            base = self.origin.get(path[:end])
            if base is not None:
                return (*base, *path[end:])
        return path


class _Notes:
    """Collects one system's TODOs and notes, each naming file, line, system and field."""

    def __init__(self, doc: YamlDocument, system: FidesSystem, entry: dict[str, Any]) -> None:
        self.doc, self.system, self.entry = doc, system, entry
        self.problems: list[str] = []

    def todo(self, path: Loc, message: str) -> None:
        """A TODO about the value at `path` in the system."""
        self.at(self.system.loc(path), message)

    def at(self, loc: Loc, message: str) -> None:
        """A TODO about the value at `loc` in the document."""
        where = _dotted(loc)
        self.entry["_todo"].append(f"{where}: {message}" if where else message)
        issue = Issue(
            self.doc.source,
            message,
            entry=f"system {self.system.key!r}",
            field=where or None,
            line=self.doc.line_of(loc),
        )
        self.problems.append(str(issue))


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def map_system(doc: YamlDocument, system: FidesSystem, result: ImportResult) -> None:
    """Add the inventory entry for one system to `result`, with its TODOs."""
    data = system.data
    entry = stub(slug(system.key), _text(data.get("name")) or system.key)
    notes = _Notes(doc, system, entry)
    legal_name = _text(data.get("legal_name"))
    if legal_name:
        entry["vendor"] = legal_name
    declarations = _declarations(data, notes)
    entry["category"] = _category(declarations, notes)
    entry["role"] = _role(data, notes)
    entry["data_categories"] = _data_categories(data, declarations, notes)
    _endpoints(data, entry, notes)
    entry["hosting"] = _hosting(data, notes)
    period = _retention(declarations, notes)
    if period is not None:
        entry["retention"] = str(period)
    _transfer(data, entry, notes)
    _contract(data, entry, notes)
    _vendor_country(data, notes)
    _flows(data, declarations, notes)
    _unmapped_keys(data, declarations, entry, notes)
    for loc, message in system.pending:
        notes.at(loc, message)
    if system.columns:
        entry["_note"].append(f"no inventory field for the columns {', '.join(system.columns)}")
    result.entries.append({key: entry[key] for key in _ORDER if key in entry})
    result.unmapped.extend(notes.problems)
    where = f"{doc.source}: system {system.key!r}: "
    result.notes.extend(where + note for note in entry["_note"])


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _strings(value: Any, path: Loc, notes: _Notes) -> list[str]:
    """A list of strings (a datamap cell may hold one string); anything else is a TODO."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    notes.todo(path, "not a list of text, not read")
    return []


@dataclass(frozen=True, slots=True)
class _Declaration:
    index: int
    data: dict[str, Any]
    uses: tuple[str, ...]
    subjects: tuple[str, ...]

    def path(self, *rest: str | int) -> Loc:
        return ("privacy_declarations", self.index, *rest)


def _declarations(data: dict[str, Any], notes: _Notes) -> list[_Declaration]:
    raw = data.get("privacy_declarations")
    if raw is None:
        return []
    if not isinstance(raw, list):
        notes.todo(("privacy_declarations",), "not a list, not read")
        return []
    found = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            notes.todo(("privacy_declarations", index), "not a mapping, not read")
            continue
        path: Loc = ("privacy_declarations", index)
        uses = _strings(item.get("data_use"), (*path, "data_use"), notes)
        subjects = _strings(item.get("data_subjects"), (*path, "data_subjects"), notes)
        found.append(_Declaration(index, item, tuple(uses), tuple(subjects)))
    return found


def _category(declarations: list[_Declaration], notes: _Notes) -> str:
    uses = list(dict.fromkeys(u for d in declarations for u in d.uses))
    category = vocab.inventory_category(uses)
    if category is None:
        shown = ", ".join(uses) or "(none)"
        notes.todo(("privacy_declarations",), f"set the category from the data uses: {shown}")
        return "other"
    return category


def _role(data: dict[str, Any], notes: _Notes) -> str:
    titles = _strings(data.get("responsibility"), ("responsibility",), notes)
    key = "responsibility"
    if not titles and _text(data.get("data_responsibility_title")):
        titles, key = [str(data["data_responsibility_title"])], "data_responsibility_title"
    roles = {vocab.ROLES.get(title.lower()) for title in titles}
    unknown = [title for title in titles if title.lower() not in vocab.ROLES]
    if unknown:
        notes.todo((key,), f"{', '.join(map(repr, unknown))} is no role the inventory knows")
    joint = data.get("joint_controller_info") not in _EMPTY or data.get("joint_controller")
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
    data: dict[str, Any], declarations: list[_Declaration], notes: _Notes
) -> list[str]:
    found: dict[str, None] = {}
    unclassified: list[str] = []
    for declaration in declarations:
        for key in ("data_categories", "shared_categories", "undeclared_data_categories"):
            path = declaration.path(key)
            for category in _strings(declaration.data.get(key), path, notes):
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


def _special(declaration: _Declaration, found: dict[str, None], notes: _Notes) -> None:
    """Art. 9 data a declaration says it processes, whatever its categories say."""
    if declaration.data.get("processes_special_category_data") is not True:
        return
    basis = _text(declaration.data.get("special_category_legal_basis"))
    if not {"health", "special"} & set(found):
        found["special"] = None
        notes.todo(declaration.path("processes_special_category_data"),
                   "special-category data (Art. 9) without an Art. 9 category: special added"
                   + (f" (basis: {basis})" if basis else ""))  # fmt: skip


def _endpoints(data: dict[str, Any], entry: dict[str, Any], notes: _Notes) -> None:
    meta = data.get("fidesctl_meta")
    address = _text(meta.get("endpoint_address")) if isinstance(meta, dict) else None
    if address is None:
        return
    host = (urlsplit(address).hostname if "//" in address else address.split(":")[0]) or ""
    path = ("fidesctl_meta", "endpoint_address")
    if "." in host and not host.replace(".", "").isdigit() and ":" not in host:
        entry["endpoints"] = [host.lower().rstrip(".")]
    else:
        notes.todo(path, f"{address!r} is no hostname: list the vendor's hostnames as endpoints")


def _hosting(data: dict[str, Any], notes: _Notes) -> list[str]:
    hosting: list[str] = []
    path = ("third_country_transfers",)
    for country in _strings(data.get("third_country_transfers"), path, notes):
        if country.upper() in ("N/A", "NONE"):
            continue
        code = vocab.country_code(country)
        if code is None:
            notes.todo(path, f"{country!r} is not a known country code, not mapped")
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


def _retention(declarations: list[_Declaration], notes: _Notes) -> Duration | None:
    periods: list[tuple[Duration, _Declaration]] = []
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


def _transfer(data: dict[str, Any], entry: dict[str, Any], notes: _Notes) -> None:
    safeguards: list[str] = []
    path = ("legal_basis_for_transfers",)
    for value in _strings(data.get("legal_basis_for_transfers"), path, notes):
        basis = vocab.transfer_basis(value)
        if basis.safeguard and basis.safeguard not in safeguards:
            safeguards.append(basis.safeguard)
        if basis.todo:
            notes.todo(path, basis.todo)
    if safeguards:
        entry["transfer"] = {"safeguards": safeguards}


def _contract(data: dict[str, Any], entry: dict[str, Any], notes: _Notes) -> None:
    if entry["role"] != "processor":
        return
    for key in ("dpa_location", "link_to_processor_contract"):
        if _text(data.get(key)):
            notes.todo((key,), "Fides records where the DPA is: set contract.dpa_signed to the "
                       "date it was signed")  # fmt: skip
            return
    notes.todo(("dpa_location",), "Fides records no DPA: set contract.dpa_signed to the date "
               "one was signed (Art. 28)")  # fmt: skip


def _vendor_country(data: dict[str, Any], notes: _Notes) -> None:
    address = _text(data.get("legal_address"))
    if address is None:
        return
    country = vocab.address_country(address)
    if country:
        notes.todo(("legal_address",), f"the vendor's legal address is in {country}: record it "
                   f"as vendor_country: {country}")  # fmt: skip
    else:
        notes.todo(("legal_address",), "record the country of the vendor's legal address as "
                   "vendor_country (it could not be read from the address)")  # fmt: skip


def _flows(data: dict[str, Any], declarations: list[_Declaration], notes: _Notes) -> None:
    """Where the data goes next: other systems, and third parties a declaration names."""
    egress = data.get("egress")
    targets = []
    if isinstance(egress, list):
        for flow in egress:
            if isinstance(flow, dict) and flow.get("type") == "system":
                targets.append(str(flow.get("fides_key")))
            elif isinstance(flow, str):
                targets.append(flow)  # a datamap cell names the systems
    if targets:
        notes.todo(("egress",), f"sends data to {', '.join(targets)}: if one processes it for this"
                   " vendor, list it under subprocessors")  # fmt: skip
    for declaration in declarations:
        if declaration.data.get("data_shared_with_third_parties") is True:
            whom = _text(declaration.data.get("third_parties"))
            notes.todo(declaration.path("data_shared_with_third_parties"),
                       f"the data is shared with third parties{f' ({whom})' if whom else ''}: "
                       "declare each as an integration")  # fmt: skip
    if data.get("exempt_from_privacy_regulations") is True:
        notes.todo(("exempt_from_privacy_regulations",), "Fides marks the system exempt: the "
                   "audit checks it as declared; remove the entry only if it holds no personal "
                   "data")  # fmt: skip


def _unmapped_keys(
    data: dict[str, Any], declarations: list[_Declaration], entry: dict[str, Any], notes: _Notes
) -> None:
    no_field = [k for k in data if k in _NO_FIELD and data[k] not in _EMPTY]
    unknown = [str(k) for k in data if k not in _MAPPED | _BOOKKEEPING | _NO_FIELD]
    for declaration in declarations:
        for key, value in declaration.data.items():
            if key in _DECLARATION_NO_FIELD and value not in _EMPTY:
                no_field.append(f"privacy_declarations.{key}")
            elif key not in _DECLARATION_MAPPED | _DECLARATION_NO_FIELD:
                unknown.append(f"privacy_declarations.{key}")
    if no_field:
        entry["_note"].append(f"no inventory field for {', '.join(dict.fromkeys(no_field))}")
    if unknown:
        notes.todo((), f"unknown fields, not mapped: {', '.join(dict.fromkeys(unknown))}")
