"""Sites: registrable domains under the Public Suffix List."""

from __future__ import annotations

import pytest

from auditor.core.sites import registrable_domain, same_site


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("www.example.com", "example.com"),
        ("shop.example.co.uk", "example.co.uk"),
        ("WWW.Example.COM.", "example.com"),
        ("user.github.io", "user.github.io"),  # a private suffix: each user is a site
        ("a.b.user.github.io", "user.github.io"),
        ("static.example.com.au", "example.com.au"),
        ("x.example.kawasaki.jp", "x.example.kawasaki.jp"),  # a wildcard rule: *.kawasaki.jp
        ("co.uk", "co.uk"),  # a public suffix has no registrable domain: it is its own site
        ("localhost", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
    ],
)
def test_registrable_domain_follows_the_public_suffix_list(host: str, expected: str) -> None:
    assert expected == registrable_domain(host)


def test_hosts_of_one_registrable_domain_are_the_same_site_and_sibling_suffix_users_are_not() -> (
    None
):
    assert same_site("www.example.co.uk", "cdn.example.co.uk")
    assert not same_site("example.co.uk", "other.co.uk")
    assert not same_site("alice.github.io", "bob.github.io")
    assert not same_site("example.com", "example.com.evil.net")
