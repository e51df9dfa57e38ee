"""DNS discovery against a loopback server serving a realistic zone: tokens, SPF, MX, DMARC, CNAMEs."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.config import load_config
from auditor.core.errors import InvalidInputError
from auditor.discovery.catalogue import Catalogue, load_catalogue
from auditor.discovery.config import DiscoverySettings
from auditor.discovery.dns_signals import (
    DnsFindings,
    LookupFailed,
    dmarc_addresses,
    dnspython_lookup,
    scan_domains,
)
from tests.conftest import DnsServerFactory

_OVER = "\n".join(
    f'spf{n}.overlimit.example. 300 IN TXT "v=spf1 include:spf{n + 1}.overlimit.example ~all"'
    for n in range(1, 13)
)

ZONE = f"""
$TTL 300
shop-co.example.        IN TXT "google-site-verification=rXOxyZounnZasA8Z7oaD3c14JdjS9aKSWvsR1EbUSIQ"
shop-co.example.        IN TXT "MS=ms12345678"
shop-co.example.        IN TXT "atlassian-domain-verification=Z8oUd5brL6/RGUMCkxs4U0P/RyhpiNJEIVx9HXJLr3uqEQ1eDmTnj1eq1ObCgY1i"
shop-co.example.        IN TXT "v=spf1 include:_spf.google.com include:spf.shop-co.example ip4:192.0.2.0/24 ~all"
spf.shop-co.example.    IN TXT "v=spf1 include:sendgrid.net include:servers.mcsv.net a mx -all"
shop-co.example.        IN MX 1 aspmx.l.google.com.
shop-co.example.        IN MX 5 alt1.aspmx.l.google.com.
_dmarc.shop-co.example. IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@shop-co.example,mailto:abc123@ag.dmarcian.example!10m; ruf=mailto:forensic@shop-co.example"
www.shop-co.example.    IN CNAME shops.myshopify.com.
help.shop-co.example.   IN CNAME shop-co.zendesk.com.
status.shop-co.example. IN CNAME edge.shop-co.example.
edge.shop-co.example.   IN CNAME d111.unknowncdn.example.
careers.shop-co.example. IN CNAME custom.intercom.help.
go.shop-co.example.     IN A 192.0.2.10
loop.example.           IN TXT "v=spf1 include:spf-a.loop.example -all"
spf-a.loop.example.     IN TXT "v=spf1 include:mail.zendesk.com include:spf-b.loop.example -all"
spf-b.loop.example.     IN TXT "v=spf1 include:spf-a.loop.example -all"
overlimit.example.      IN TXT "v=spf1 include:spf1.overlimit.example -all"
{_OVER}
spf13.overlimit.example. IN TXT "v=spf1 include:spf.mailjet.com -all"
twospf.example.         IN TXT "v=spf1 -all"
twospf.example.         IN TXT "v=spf1 include:sendgrid.net -all"
broken.example.         IN TXT "v=spf1 -all"
"""


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def scan(
    factory: DnsServerFactory, catalogue: Catalogue, domains: tuple[str, ...], **kw: object
) -> DnsFindings:
    server = factory(ZONE)
    for name, behaviour in kw.get("behaviours", {}).items():  # type: ignore[attr-defined]
        server.set_behaviour(name, behaviour)
    settings = DiscoverySettings(domains=domains, subdomains=("careers",))
    return scan_domains(settings, catalogue, dnspython_lookup([server.address], timeout=1.0))


def vendors(found: DnsFindings, kind: str) -> set[str | None]:
    return {signal.vendor for signal in found.signals if signal.evidence.kind == kind}


def test_verification_tokens_name_their_vendors(
    dns_server_factory: DnsServerFactory, catalogue: Catalogue
) -> None:
    """TXT verification tokens at the apex name Google, Microsoft 365 and Atlassian, with the
    record as evidence; the SPF record is not mistaken for a token."""
    found = scan(dns_server_factory, catalogue, ("shop-co.example",))
    assert vendors(found, "txt") == {"google-workspace", "microsoft-365", "atlassian"}
    token = next(s for s in found.signals if s.vendor == "microsoft-365")
    assert token.evidence.name == "shop-co.example"
    assert token.evidence.value == "MS=ms12345678"
    assert token.evidence.matched == "MS="


def test_spf_includes_are_followed_recursively(
    dns_server_factory: DnsServerFactory, catalogue: Catalogue
) -> None:
    """An include of the organisation's own SPF record is followed: the vendors it includes
    (SendGrid, Mailchimp) are found with the nested record as evidence."""
    found = scan(dns_server_factory, catalogue, ("shop-co.example",))
    assert vendors(found, "spf") == {"google-workspace", "sendgrid", "mailchimp"}
    nested = next(s for s in found.signals if s.vendor == "mailchimp")
    assert nested.evidence.name == "spf.shop-co.example"
    assert nested.evidence.matched == "include:servers.mcsv.net"
    assert found.problems == []


def test_mx_dmarc_and_cnames(dns_server_factory: DnsServerFactory, catalogue: Catalogue) -> None:
    """MX hosts name the mail provider; a DMARC rua address at a third party is listed as an
    unknown host (own addresses are not); CNAMEs of common and configured subdomains point at
    Shopify, Zendesk and Intercom, and a chain through the organisation's own name to an unknown
    CDN is listed as unknown."""
    found = scan(dns_server_factory, catalogue, ("shop-co.example",))
    assert vendors(found, "mx") == {"google-workspace"}
    dmarc = [s for s in found.signals if s.evidence.kind == "dmarc"]
    assert [(s.vendor, s.host) for s in dmarc] == [(None, "ag.dmarcian.example")]
    cnames = {(s.vendor, s.host) for s in found.signals if s.evidence.kind == "cname"}
    assert cnames == {
        ("shopify", "shops.myshopify.com"),
        ("zendesk", "shop-co.zendesk.com"),
        ("intercom", "custom.intercom.help"),
        (None, "d111.unknowncdn.example"),
    }


def test_spf_include_loop_is_reported_once_and_stops(
    dns_server_factory: DnsServerFactory, catalogue: Catalogue
) -> None:
    """An SPF include loop is detected (not followed forever) and named as a problem; the
    vendor included inside the loop is still found."""
    found = scan(dns_server_factory, catalogue, ("loop.example",))
    assert vendors(found, "spf") == {"zendesk"}
    assert any("SPF include loop" in p and "spf-a.loop.example" in p for p in found.problems)


def test_spf_over_the_lookup_limit_stops_and_says_so(
    dns_server_factory: DnsServerFactory, catalogue: Catalogue
) -> None:
    """A chain needing more than 10 lookups stops at the limit, as a receiver would: the vendor
    past the limit is not reported, and the problem says "over the limit"."""
    server = dns_server_factory(ZONE)
    lookup = dnspython_lookup([server.address], timeout=1.0)
    settings = DiscoverySettings(domains=("overlimit.example",))
    before = server.query_count
    found = scan_domains(settings, catalogue, lookup)
    assert vendors(found, "spf") == set()
    assert any("over the limit" in p for p in found.problems)
    # 1 apex TXT + 10 followed includes + MX + DMARC + 13 CNAMEs: never past the limit.
    assert server.query_count - before <= 1 + 10 + 2 + 13


def test_two_spf_records_and_failures_are_problems(
    dns_server_factory: DnsServerFactory, catalogue: Catalogue
) -> None:
    """Two SPF records are reported as a permerror; a SERVFAIL on a domain is a problem that
    names the query, and the other domains are still scanned."""
    found = scan(
        dns_server_factory,
        catalogue,
        ("twospf.example", "broken.example"),
        behaviours={"broken.example": "servfail"},
    )
    assert any("more than one SPF record" in p for p in found.problems)
    assert any(p.startswith("broken.example: TXT broken.example") for p in found.problems)


def test_lookup_failures_raise_lookup_failed(dns_server_factory: DnsServerFactory) -> None:
    """A name that never answers raises LookupFailed; NXDOMAIN is simply no records."""
    server = dns_server_factory(ZONE)
    server.set_behaviour("slow.example", "timeout")
    lookup = dnspython_lookup([server.address], timeout=0.3)
    assert lookup("nothing-here.shop-co.example", "TXT") == []
    with pytest.raises(LookupFailed):
        lookup("slow.example", "TXT")


def test_dmarc_addresses_parsing() -> None:
    """rua and ruf tags give their mailto addresses without the size suffix; other URIs are
    ignored."""
    record = (
        "v=DMARC1; p=none; rua=mailto:a@x.example!10m, https://r.example/; ruf=mailto:b@y.example"
    )
    assert dmarc_addresses(record) == ["a@x.example", "b@y.example"]


def test_settings_from_the_configuration(tmp_path: Path) -> None:
    """The discovery section is read from the configuration file with the local vendor file
    resolved against it; subdomain names combine configured, common and full names."""
    config = tmp_path / "auditor.yaml"
    config.write_text(
        "inventory: inv.yaml\ndiscovery:\n  vendors: local-vendors.yaml\n"
        "  domains: [Example.com]\n  subdomains: [careers, jobs.example.com]\n"
        "  pages: ['https://www.example.com/']\n",
        encoding="utf-8",
    )
    settings = load_config(config).discovery
    assert settings.vendors == tmp_path / "local-vendors.yaml"
    assert settings.domains == ("example.com",)
    names = settings.subdomain_names()
    assert names[:3] == ["jobs.example.com", "careers.example.com", "www.example.com"]
    assert "links.example.com" in names
    config.write_text("inventory: inv.yaml\ndiscovery:\n  pages: [ftp://x]\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="http"):
        load_config(config)


def test_local_vendor_file_adds_and_replaces(tmp_path: Path) -> None:
    """A local vendor file adds vendors and replaces shipped ones with the same id; a claim
    without a source is refused."""
    local = tmp_path / "local-vendors.yaml"
    local.write_text(
        "vendors:\n"
        "  - id: acme-crm\n    name: Acme CRM\n    category: crm\n    domains: [acme-crm.example]\n"
        "    sources: {domains: https://acme-crm.example/docs}\n"
        "  - id: hotjar\n    name: Hotjar (ours)\n    category: analytics\n",
        encoding="utf-8",
    )
    catalogue = load_catalogue(local)
    assert catalogue.by_host("eu.acme-crm.example").id == "acme-crm"  # type: ignore[union-attr]
    assert catalogue.vendors["hotjar"].name == "Hotjar (ours)"
    local.write_text(
        "vendors:\n  - id: bad\n    name: Bad\n    category: crm\n    dpf: true\n", encoding="utf-8"
    )
    with pytest.raises(InvalidInputError, match="no source for: dpf"):
        load_catalogue(local)
