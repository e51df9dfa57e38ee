"""What discovery saw: one piece of evidence per record or page element, tied to a vendor or not."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Evidence:
    """One trace of a third party: the record type or page element, where, and what it said."""

    kind: str  # txt | spf | mx | dmarc | cname | page
    name: str  # the record's owner name, or the page's URL
    value: str  # the record's value, or the element's URL
    matched: str = ""  # what matched: the SPF include, the host, the TXT prefix...

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "value": self.value, "matched": self.matched}


@dataclass(frozen=True, slots=True)
class Signal:
    """Evidence attributed to a catalogue vendor (vendor id), or to an unknown host (None)."""

    vendor: str | None
    host: str  # the third-party host or domain the evidence points at
    evidence: Evidence
    probe: str = ""  # the probe that saw it: dns_probe(domain or name) or page_probe(url)


def dns_probe(name: str) -> str:
    """The probe scope of one configured domain's records (or one subdomain's CNAME chain)."""
    return f"discovery-dns:{name}"


def page_probe(url: str) -> str:
    """The probe scope of one configured web page."""
    return f"discovery-page:{url}"
