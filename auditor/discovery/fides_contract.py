"""What a Fides system says of its transfers, its DPA, its vendor's country and where its data
goes next: the safeguards it records, and TODOs for the rest."""

from __future__ import annotations

from typing import Any

from auditor.discovery import fides_vocabulary as vocab
from auditor.discovery.fides_model import Declaration, Notes, strings, text


def transfer(data: dict[str, Any], entry: dict[str, Any], notes: Notes) -> None:
    safeguards: list[str] = []
    path = ("legal_basis_for_transfers",)
    for value in strings(data.get("legal_basis_for_transfers"), path, notes):
        basis = vocab.transfer_basis(value)
        if basis.safeguard and basis.safeguard not in safeguards:
            safeguards.append(basis.safeguard)
        if basis.todo:
            notes.todo(path, basis.todo)
    if safeguards:
        entry["transfer"] = {"safeguards": safeguards}


def contract(data: dict[str, Any], entry: dict[str, Any], notes: Notes) -> None:
    if entry["role"] != "processor":
        return
    for key in ("dpa_location", "link_to_processor_contract"):
        if text(data.get(key)):
            notes.todo((key,), "Fides records where the DPA is: set contract.dpa_signed to the "
                       "date it was signed")  # fmt: skip
            return
    notes.todo(("dpa_location",), "Fides records no DPA: set contract.dpa_signed to the date "
               "one was signed (Art. 28)")  # fmt: skip


def vendor_country(data: dict[str, Any], entry: dict[str, Any], notes: Notes) -> None:
    """`vendor_country` from the country the legal address ends with, marked for checking (a
    controlling parent elsewhere decides it); a TODO when the address names no known country."""
    address = text(data.get("legal_address"))
    if address is None:
        return
    country = vocab.address_country(address)
    if country:
        entry["vendor_country"] = country
        notes.todo(("legal_address",), f"vendor_country {country} is the country of the vendor's "
                   "legal address: check it is the headquarters' or controlling parent's")  # fmt: skip
    else:
        notes.todo(("legal_address",), "record the country of the vendor's legal address as "
                   "vendor_country (it could not be read from the address)")  # fmt: skip


def flows(data: dict[str, Any], declarations: list[Declaration], notes: Notes) -> None:
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
            whom = text(declaration.data.get("third_parties"))
            notes.todo(declaration.path("data_shared_with_third_parties"),
                       f"the data is shared with third parties{f' ({whom})' if whom else ''}: "
                       "declare each as an integration")  # fmt: skip
    if data.get("exempt_from_privacy_regulations") is True:
        notes.todo(("exempt_from_privacy_regulations",), "Fides marks the system exempt: the "
                   "audit checks it as declared; remove the entry only if it holds no personal "
                   "data")  # fmt: skip
