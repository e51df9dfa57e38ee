"""The inventory as an Art. 30 record of processing activities, with transfers judged on a date; pure."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from auditor.core.adequacy import Recipient, assess
from auditor.core.jurisdiction import VendorJudgement, judge_vendor
from auditor.core.model import Backups, Certification, Facet, Integration, Place, Verdict
from auditor.core.policies import PolicyData

SPECIAL_CATEGORIES = {"health": "Art. 9", "special": "Art. 9", "criminal": "Art. 10"}
"""Data categories that need more than a transfer tool: special categories and criminal data."""

CSV_COLUMNS = (
    "id",
    "name",
    "vendor",
    "vendor_country",
    "vendor_jurisdiction",
    "role",
    "category",
    "data_categories",
    "special_categories",
    "hosting",
    "support",
    "transfers",
    "retention",
    "backup_locations",
    "backup_retention",
    "backup_type",
    "backup_generations",
    "backup_effective_retention",
    "backup_restore_tested",
    "backup_documented",
    "subprocessors",
    "dpa_signed",
)
"""The register CSV: one row per integration; lists are joined with "; "."""


@dataclass(frozen=True, slots=True)
class RegisterTransfer:
    """One place outside the EEA the data reaches, and what makes the transfer lawful (or not)."""

    facet: Facet
    place: str
    country: str | None
    verdict: Verdict
    basis: str
    decision: str | None  # the adequacy decision's id, when one covers it
    safeguards: tuple[str, ...]  # recorded safeguards of the recipient (scc, bcr)
    certifications: tuple[Certification, ...]  # the recipient's US certifications
    in_scope_of: tuple[str, ...]  # limited decisions the DPO confirmed cover the recipient
    via: str | None  # the sub-processor the data reaches the place through


@dataclass(frozen=True, slots=True)
class RegisterEntry:
    """One processing activity: an integration, its sub-processors, its transfers, and its
    vendor's home country judged where the data rests only in the EEA or adequate places."""

    integration: Integration
    subprocessors: tuple[Integration, ...]
    transfers: tuple[RegisterTransfer, ...]
    vendor: VendorJudgement | None = None
    on: date | None = None  # the day the transfers were judged


def _transfers(
    facet: Facet,
    places: Sequence[Place],
    recipient: Recipient,
    policies: PolicyData,
    on: date,
    via: str | None = None,
) -> Iterator[RegisterTransfer]:
    transfer = recipient.transfer
    for place in places:
        judged = assess(place.country, recipient, policies, on, organisation=place.organisation)
        if judged.verdict is Verdict.EEA:
            continue
        yield RegisterTransfer(
            facet=facet,
            place=place.spec,
            country=place.country,
            verdict=judged.verdict,
            basis=judged.basis,
            decision=judged.decision.id if judged.decision else None,
            safeguards=tuple(sorted(transfer.safeguards)),
            certifications=transfer.certifications,
            in_scope_of=tuple(sorted(transfer.in_scope_of)),
            via=via,
        )


def build_register(
    integrations: Sequence[Integration], policies: PolicyData, on: date
) -> list[RegisterEntry]:
    """One entry per integration, by id, with transfers judged by the decisions in force on `on`.

    A sub-processor's places count as the integration's transfers, under the sub-processor's
    own safeguards (as the transfer rules judge them).
    """
    by_id = {integration.id: integration for integration in integrations}
    entries = []
    for integration in sorted(integrations, key=lambda i: i.id):
        own = Recipient.of(integration)
        found = [
            *_transfers(Facet.HOSTING, integration.hosting, own, policies, on),
            *_transfers(
                Facet.BACKUP,
                integration.backups.regions if integration.backups else (),
                own,
                policies,
                on,
            ),
            *_transfers(Facet.SUPPORT, integration.support, own, policies, on),
        ]
        subs = tuple(by_id[sub] for sub in integration.subprocessors if sub in by_id)
        for sub in subs:
            found += _transfers(
                Facet.SUBPROCESSOR,
                sub.hosting,
                Recipient.of(integration, sub),
                policies,
                on,
                sub.id,
            )
        vendor = judge_vendor(integration, by_id, policies, on)
        entries.append(RegisterEntry(integration, subs, tuple(found), vendor, on))
    return entries


def _place(place: Place) -> dict[str, Any]:
    return {"place": place.spec, "country": place.country}


def _transfer_json(transfer: RegisterTransfer) -> dict[str, Any]:
    return {
        "facet": transfer.facet.value,
        "place": transfer.place,
        "country": transfer.country,
        "via": transfer.via,
        "verdict": transfer.verdict.value,
        "basis": transfer.basis,
        "decision": transfer.decision,
        "safeguards": list(transfer.safeguards),
        "dpf_certified": any(c.framework == "dpf" for c in transfer.certifications),
        "certifications": [c.describe() for c in transfer.certifications],
        "in_scope_of": list(transfer.in_scope_of),
    }


def _vendor_json(entry: RegisterEntry) -> dict[str, Any] | None:
    """The vendor's home country judged, or None where it is not (see `judge_vendor`)."""
    judged = entry.vendor
    if judged is None:
        return None
    assessment = judged.assessment
    return {
        "verdict": judged.verdict.value,
        "basis": assessment.basis if assessment else None,
        "foreign_jurisdiction": judged.foreign,
        "laws": [law.describe() for law in judged.laws],
    }


def _backups_json(backups: Backups, on: date | None) -> dict[str, Any]:
    effective = backups.effective_retention(on) if on is not None else None
    documented = backups.documented
    return {
        "locations": [_place(p) for p in backups.regions],
        "retention": str(backups.retention) if backups.retention else None,
        "type": backups.kind,
        "generations": {name: str(d) for name, d in backups.generations},
        "effective_retention": str(effective[0]) if effective else None,
        "restore_tested": backups.restore_tested.isoformat() if backups.restore_tested else None,
        "documented": None
        if documented is None
        else {"at": documented.at, "reviewed": documented.reviewed.isoformat()},
    }


def entry_json(entry: RegisterEntry) -> dict[str, Any]:
    """One processing activity as a JSON object."""
    i = entry.integration
    home = i.vendor_country
    return {
        "id": i.id,
        "name": i.name,
        "category": i.category,
        "recipient": {
            "vendor": i.vendor,
            "role": i.role,
            "country": home.code if home else None,
            "country_source": home.source if home else None,
            "jurisdiction": _vendor_json(entry),
        },
        "data_categories": sorted(i.data_categories),
        "special_categories": sorted(c for c in i.data_categories if c in SPECIAL_CATEGORIES),
        "hosting": [_place(p) for p in i.hosting],
        "support": [_place(p) for p in i.support],
        "transfers": [_transfer_json(t) for t in entry.transfers],
        "retention": str(i.retention) if i.retention else None,
        "backups": None if i.backups is None else _backups_json(i.backups, entry.on),
        "subprocessors": [
            {
                "id": sub.id,
                "name": sub.name,
                "vendor": sub.vendor,
                "hosting": [_place(p) for p in sub.hosting],
            }
            for sub in entry.subprocessors
        ],
        "contract": {
            "dpa_signed": i.contract.dpa_signed.isoformat() if i.contract.dpa_signed else None,
            "vendor_may_use_data": i.contract.vendor_may_use_data,
            "data_ownership": i.contract.data_ownership,
        },
    }


def register_json(
    entries: Sequence[RegisterEntry], on: date, policies: PolicyData
) -> dict[str, Any]:
    """The register document: the date transfers were judged on, the policy data, the activities."""
    return {
        "register": "Art. 30 record of processing activities",
        "as_of": on.isoformat(),
        "policy_digest": policies.digest,
        "activities": [entry_json(entry) for entry in entries],
    }


def _places_text(places: Sequence[Place]) -> str:
    return "; ".join(str(place) for place in places)


def _transfer_text(transfer: RegisterTransfer) -> str:
    where = f"{transfer.via}: " if transfer.via else ""
    place = transfer.place
    if transfer.country and transfer.country != place:
        place += f" ({transfer.country})"
    basis = transfer.basis
    if transfer.verdict is Verdict.UNSAFEGUARDED:
        basis = "no adequacy in scope and no safeguard"
    return f"{where}{transfer.facet.value} {place}: {transfer.verdict.value}, {basis}"


def _vendor_text(entry: RegisterEntry) -> str:
    """The vendor's country judged, in words: "unsafeguarded, none; CLOUD Act (...); ..."."""
    judged = entry.vendor
    if judged is None:
        return ""
    if judged.assessment is None:
        return "unknown: vendor country not declared, nor in the vendor catalogue"
    text = f"{judged.verdict.value}, {judged.assessment.basis}"
    if judged.foreign:
        laws = "; ".join(law.describe() for law in judged.laws) or "no law in the policy data"
        text += f"; can be compelled under: {laws}"
    return text


def _backup_cells(backups: Backups | None, on: date | None) -> dict[str, str]:
    if backups is None:
        return dict.fromkeys(("type", "generations", "effective", "tested", "documented"), "")
    effective = backups.effective_retention(on) if on is not None else None
    documented = backups.documented
    return {
        "type": backups.kind or "",
        "generations": "; ".join(f"{name} {d}" for name, d in backups.generations),
        "effective": str(effective[0]) if effective else "",
        "tested": backups.restore_tested.isoformat() if backups.restore_tested else "",
        "documented": ""
        if documented is None
        else f"{documented.at} (reviewed {documented.reviewed.isoformat()})",
    }


def entry_row(entry: RegisterEntry) -> dict[str, str]:
    """One processing activity as a CSV row (CSV_COLUMNS)."""
    i = entry.integration
    special = sorted(c for c in i.data_categories if c in SPECIAL_CATEGORIES)
    home = i.vendor_country
    backup = _backup_cells(i.backups, entry.on)
    return {
        "id": i.id,
        "name": i.name,
        "vendor": i.vendor,
        "vendor_country": ""
        if home is None
        else home.code + (" (vendor catalogue)" if home.source == "catalogue" else ""),
        "vendor_jurisdiction": _vendor_text(entry),
        "role": i.role,
        "category": i.category,
        "data_categories": "; ".join(sorted(i.data_categories)),
        "special_categories": "; ".join(f"{c} ({SPECIAL_CATEGORIES[c]})" for c in special),
        "hosting": _places_text(i.hosting),
        "support": _places_text(i.support),
        "transfers": "; ".join(_transfer_text(t) for t in entry.transfers),
        "retention": str(i.retention) if i.retention else "",
        "backup_locations": _places_text(i.backups.regions) if i.backups else "",
        "backup_retention": str(i.backups.retention) if i.backups and i.backups.retention else "",
        "backup_type": backup["type"],
        "backup_generations": backup["generations"],
        "backup_effective_retention": backup["effective"],
        "backup_restore_tested": backup["tested"],
        "backup_documented": backup["documented"],
        "subprocessors": "; ".join(f"{sub.id} ({sub.vendor})" for sub in entry.subprocessors),
        "dpa_signed": i.contract.dpa_signed.isoformat() if i.contract.dpa_signed else "",
    }


def register_csv(entries: Sequence[RegisterEntry]) -> str:
    """The register as CSV, one row per integration."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for entry in entries:
        writer.writerow(_guarded(entry_row(entry)))
    return buffer.getvalue()


def _guarded(row: Mapping[str, str]) -> dict[str, str]:
    # A cell a spreadsheet would run as a formula gets a leading apostrophe.
    return {k: "'" + v if v[:1] in {"=", "+", "-", "@"} else v for k, v in row.items()}


def render_register(
    entries: Sequence[RegisterEntry], on: date, policies: PolicyData, output_format: str
) -> str:
    """The register as `csv` or `json` text."""
    if output_format == "csv":
        return register_csv(entries)
    return json.dumps(register_json(entries, on, policies), indent=2, ensure_ascii=False) + "\n"
