"""What "the same site" means for a host: its registrable domain under the Public Suffix List
(`publicsuffixlist`, which ships the list; nothing is downloaded), so that `example.co.uk`,
`shop.example.co.uk` and `user.github.io` are told apart the way browsers tell them apart."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from publicsuffixlist import PublicSuffixList


@lru_cache(maxsize=1)
def _list() -> PublicSuffixList:
    return PublicSuffixList()


def _normal(host: str) -> str:
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


@lru_cache(maxsize=65536)
def registrable_domain(host: str) -> str:
    """The host's registrable domain (eTLD+1): `www.example.co.uk` -> `example.co.uk`.

    An IP address, a single label (`localhost`) or a public suffix itself (`co.uk`) has none: it
    is its own site, and the normalised host is returned."""
    name = _normal(host)
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return name
    return _list().privatesuffix(name) or name


def same_site(host: str, other: str) -> bool:
    """Whether two hosts share a registrable domain (first-party to each other)."""
    return registrable_domain(host) == registrable_domain(other)


def first_party(host: str, own: Iterable[str]) -> bool:
    """Whether a host shares a registrable domain with any of the organisation's own hosts or
    domains: `mail.example.co.uk` is first-party to `www.example.co.uk`, `other.github.io` is
    not to `mine.github.io`."""
    site = registrable_domain(host)
    return any(site == registrable_domain(name) for name in own)
