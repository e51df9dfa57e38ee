"""Articles before names: "an Amazon CloudFront edge", never "a Amazon"; and every message that
puts an article before a name it interpolates chooses it with `article`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from auditor.core.wording import article, with_article

PACKAGE = Path(__file__).resolve().parents[2] / "auditor"


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("Amazon CloudFront edge", "an Amazon CloudFront edge"),
        ("Akamai edge", "an Akamai edge"),
        ("Imperva", "an Imperva"),
        ("Edgio", "an Edgio"),
        ("Ozone", "an Ozone"),
        ("Fastly edge", "a Fastly edge"),
        ("Cloudflare edge", "a Cloudflare edge"),
        ("endpoint finding", "an endpoint finding"),
        ("inventory-undeclared finding", "an inventory-undeclared finding"),
        ("transfer-unsafeguarded finding", "a transfer-unsafeguarded finding"),
        ("int", "an int"),
        ("NoneType", "a NoneType"),
        ("unique key", "a unique key"),
        ("European body", "a European body"),
        ("hour", "an hour"),
        ("AWS region", "an AWS region"),
        ("SCC", "an SCC"),
        ("NS1 edge", "an NS1 edge"),
        ("URL", "a URL"),
        ("CDN edge", "a CDN edge"),
        ("8-day", "an 8-day"),
        ("1-day", "a 1-day"),
    ],
)
def test_article_follows_the_sound_of_the_name(phrase: str, expected: str) -> None:
    """Vowel-initial names take "an", consonant sounds "a"; initialisms go by letter names."""
    assert expected.strip() == with_article(phrase).strip()


def test_article_alone() -> None:
    """`article` is the word only."""
    assert ("an", "a") == (article("Amazon"), article("Google"))


ARTICLE_BEFORE_FIELD = re.compile(r"""f["'][^"'\n]*\b[Aa]n? \{""")


def test_no_message_puts_a_fixed_article_before_a_name() -> None:
    """No f-string in the package writes `a {name}` or `an {name}`: a name from data (a CDN
    provider, a rule, a type) may start with either sound, so `with_article` chooses."""
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if ARTICLE_BEFORE_FIELD.search(line)
    ]
    assert [] == offenders
