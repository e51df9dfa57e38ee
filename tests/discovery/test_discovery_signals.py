"""Every TXT prefix of the catalogue found in real DNS, and first-party decisions under the Public
Suffix List (co.uk, com.au, github.io), against a loopback DNS server."""

from __future__ import annotations

import pytest

from auditor.discovery.catalogue import Catalogue, load_catalogue
from auditor.discovery.config import DiscoverySettings
from auditor.discovery.dns_signals import DnsFindings, dnspython_lookup, scan_domains
from tests.conftest import DnsServerFactory


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def _txt(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_every_txt_prefix_is_found_at_a_domain_apex(
    dns_server_factory: DnsServerFactory, catalogue: Catalogue
) -> None:
    """One domain per catalogue TXT prefix, each with a token record beginning with it (every
    other one in another case) beside an SPF record: scanning them names each prefix's vendor,
    with the prefix as the catalogue writes it, and nothing else from TXT."""
    table = [(prefix, vendor.id) for vendor in catalogue.vendors.values() for prefix in vendor.txt]
    assert len(table) >= 40
    lines = ["$TTL 300"]
    for number, (prefix, _) in enumerate(table):
        written = prefix.swapcase() if number % 2 else prefix
        lines.append(f"t{number}.tokens.example. IN TXT {_txt(written + f'token{number}')}")
        lines.append(f't{number}.tokens.example. IN TXT "v=spf1 -all"')
    server = dns_server_factory("\n".join(lines) + "\n")
    settings = DiscoverySettings(domains=tuple(f"t{n}.tokens.example" for n in range(len(table))))
    found = scan_domains(settings, catalogue, dnspython_lookup([server.address], timeout=2.0))
    assert found.problems == []
    seen = {
        signal.evidence.name: (signal.evidence.matched, signal.vendor)
        for signal in found.signals
        if signal.evidence.kind == "txt"
    }
    assert seen == {f"t{n}.tokens.example": row for n, row in enumerate(table)}


ZONE = """
$TTL 300
shop.example.co.uk.        IN TXT "v=spf1 include:_spf.example.co.uk include:spf.mailhost.example -all"
_spf.example.co.uk.        IN TXT "v=spf1 include:sendgrid.net include:_spf.partner.example -all"
spf.mailhost.example.      IN TXT "v=spf1 include:_spf.deeper.example -all"
_spf.partner.example.      IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
_spf.deeper.example.       IN TXT "v=spf1 ip4:198.51.100.0/24 -all"
shop.example.co.uk.        IN MX 10 mx1.example.co.uk.
shop.example.co.uk.        IN MX 20 mx.backup-mail.co.uk.
_dmarc.shop.example.co.uk. IN TXT "v=DMARC1; p=reject; rua=mailto:d@example.co.uk,mailto:r@reports.example.co.uk,mailto:x@dmarc.other.co.uk"
www.shop.example.co.uk.    IN CNAME edge.example.co.uk.
edge.example.co.uk.        IN CNAME d1234.cloudfront.net.
help.shop.example.co.uk.   IN CNAME help.provider.co.uk.
www.example.com.au.        IN MX 10 mail.example.com.au.
www.example.com.au.        IN MX 20 mail.other.com.au.
www.example.com.au.        IN MX 30 aspmx.l.google.com.
mine.github.io.            IN MX 10 mx.mine.github.io.
mine.github.io.            IN MX 20 mx.other.github.io.
mine.github.io.            IN MX 30 .
www.mine.github.io.        IN CNAME elsewhere.github.io.
"""


@pytest.fixture
def psl_found(dns_server_factory: DnsServerFactory, catalogue: Catalogue) -> DnsFindings:
    server = dns_server_factory(ZONE)
    settings = DiscoverySettings(domains=("shop.example.co.uk", "www.example.com.au",
                                          "mine.github.io"))  # fmt: skip
    return scan_domains(settings, catalogue, dnspython_lookup([server.address], timeout=2.0))


def _signals(found: DnsFindings, kind: str) -> set[tuple[str | None, str]]:
    return {(s.vendor, s.host) for s in found.signals if s.evidence.kind == kind}


def test_mail_hosts_of_the_organisations_registrable_domain_are_its_own(
    psl_found: DnsFindings,
) -> None:
    """An MX host under the configured domain's registrable domain (example.co.uk for
    shop.example.co.uk, example.com.au for www.example.com.au) is the organisation's own; one
    at another name under the same public suffix is a third party, listed as unknown; a sibling
    under a private suffix (other.github.io beside mine.github.io) is a third party too; a null
    MX names nobody."""
    assert _signals(psl_found, "mx") == {
        (None, "mx.backup-mail.co.uk"),
        (None, "mail.other.com.au"),
        ("google-workspace", "aspmx.l.google.com"),
        (None, "mx.other.github.io"),
    }
    assert not any("mine.github.io" in p or "example" in p for p in psl_found.problems)


def test_senders_the_organisation_authorises_are_listed(psl_found: DnsFindings) -> None:
    """Includes in the organisation's own SPF records (the apex's, and _spf.example.co.uk's, its
    own by registrable domain) name a known vendor or an unknown sender; what a third party's
    record includes in turn is that party's business, not listed."""
    assert _signals(psl_found, "spf") == {
        ("sendgrid", "sendgrid.net"),
        (None, "spf.mailhost.example"),
        (None, "_spf.partner.example"),
    }


def test_dmarc_and_cname_targets_follow_the_registrable_domain(psl_found: DnsFindings) -> None:
    """DMARC reports to the organisation's registrable domain are its own; to another name under
    co.uk, a third party. A CNAME chain through the organisation's own name (edge.example.co.uk)
    is followed to its vendor without listing the own name; a CNAME to a sibling github.io site
    is GitHub's, and one to another co.uk name is unknown."""
    assert _signals(psl_found, "dmarc") == {(None, "dmarc.other.co.uk")}
    assert _signals(psl_found, "cname") == {
        ("aws", "d1234.cloudfront.net"),
        (None, "help.provider.co.uk"),
        ("github", "elsewhere.github.io"),
    }
