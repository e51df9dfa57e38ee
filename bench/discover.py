"""Benchmark of DNS discovery over many domains against a bare dnspython loop of the same queries."""

# Usage: python bench/discover.py [--domains 200] [--subdomains 30]
#
# Serves, on loopback, a zone of N domains each with verification tokens, an SPF record with two
# includes, MX, DMARC and S subdomains (a third of them CNAMEs to vendor domains), then times
# auditor.discovery.dns_signals.scan_domains over every domain (the subdomains configured), and
# a bare dnspython loop asking exactly the queries discovery asked (counted by the server), in
# the same run. Prints domains per second for both and the ratio; target: ratio >= 0.5. Exit
# status: 0 target met, 1 missed.

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import dns.resolver

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditor.discovery.catalogue import load_catalogue
from auditor.discovery.config import DiscoverySettings
from auditor.discovery.dns_signals import dnspython_lookup, scan_domains
from tests.dnsserver import LoopbackDnsServer

TARGETS = ("shops.myshopify.com.", "acme.zendesk.com.", "ghs.googlehosted.com.")


def zone(domains: int, subdomains: int) -> str:
    lines = ["$TTL 300", 'spf.vendor.example. IN TXT "v=spf1 ip4:192.0.2.0/24 -all"']
    for n in range(domains):
        d = f"org{n}.example."
        lines += [
            f'{d} IN TXT "google-site-verification=token{n}"',
            f'{d} IN TXT "v=spf1 include:_spf.google.com include:spf.vendor.example -all"',
            f"{d} IN MX 1 aspmx.l.google.com.",
            f'_dmarc.{d} IN TXT "v=DMARC1; p=none; rua=mailto:d@reports.example"',
        ]
        for s in range(subdomains):
            if s % 3 == 0:
                lines.append(f"sub{s}.{d} IN CNAME {TARGETS[s % len(TARGETS)]}")
            else:
                lines.append(f"sub{s}.{d} IN A 192.0.2.{s % 250 + 1}")
    return "\n".join(lines) + "\n"


def queries(settings: DiscoverySettings) -> list[tuple[str, str]]:
    """The queries discovery asks for this zone (no includes beyond spf.vendor.example)."""
    asked: list[tuple[str, str]] = []
    for domain in settings.domains:
        asked += [(domain, "TXT"), ("_spf.google.com", "TXT"), ("spf.vendor.example", "TXT"),
                  (domain, "MX"), (f"_dmarc.{domain}", "TXT")]  # fmt: skip
    asked += [(name, "CNAME") for name in settings.subdomain_names()]
    return asked


def bare(address: str, asked: list[tuple[str, str]]) -> None:
    host, _, port = address.rpartition(":")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)
    for name, rdtype in asked:
        with contextlib.suppress(dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            resolver.resolve(name, rdtype, search=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domains", type=int, default=200)
    parser.add_argument("--subdomains", type=int, default=30)
    args = parser.parse_args()
    catalogue = load_catalogue()
    settings = DiscoverySettings(
        domains=tuple(f"org{n}.example" for n in range(args.domains)),
        subdomains=tuple(f"sub{s}" for s in range(args.subdomains)),
    )
    with LoopbackDnsServer(zone(args.domains, args.subdomains)) as server:
        lookup = dnspython_lookup([server.address], timeout=5.0)
        started = time.perf_counter()
        found = scan_domains(settings, catalogue, lookup)
        ours = time.perf_counter() - started
        asked = queries(settings)
        started = time.perf_counter()
        bare(server.address, asked)
        baseline = time.perf_counter() - started
    ratio = baseline / ours
    print(f"discovery: {args.domains / ours:8.1f} domains/s ({len(found.signals)} signals, "
          f"{len(found.problems)} problems)")  # fmt: skip
    print(f"bare loop: {args.domains / baseline:8.1f} domains/s ({len(asked)} queries)")
    print(f"ratio {ratio:.2f} (target >= 0.5): {'PASS' if ratio >= 0.5 else 'FAIL'}")
    return 0 if ratio >= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
