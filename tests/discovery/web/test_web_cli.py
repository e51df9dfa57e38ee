"""`gdpr-auditor web` end to end: JSON output, exit statuses, findings stored with a database,
and the errors for a missing browser, a missing Playwright and an invalid `websites:` section."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from auditor.cli import cli
from auditor.store import StateStore
from tests.discovery.web.conftest import World
from tests.discovery.web.test_web_job import BLOG

WITHOUT_BROWSER = """
websites:
  browser: no-such-dir/chromium
  sites:
    - id: blog
      start: ["https://www.blog.test:{port}/"]
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_web_json_lists_sites_third_parties_and_findings_and_stores_them(
    world: World, tmp_path: Path
) -> None:
    config = world.configure(tmp_path, BLOG)
    result = run("web", "--config", str(config), "--format", "json", "--as-of", "2026-11-22")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["complete"] is True and document["as_of"] == "2026-11-22"
    assert document["sites"][0]["site"] == "blog"
    parties = {party["party"]: party for party in document["third_parties"]}
    assert parties["test-tracker"]["verdict"] == "unsafeguarded"
    assert parties["test-tracker"]["sites"]["blog"]["before_choice"] == ["before"]
    rules = {(f["rule"], f["integration"]) for f in document["findings"]}
    assert ("web-tracking-before-consent", "embed.test") in rules
    assert Path(document["evidence_directory"]).is_dir()
    assert Path(document["evidence_directory"]).parent == tmp_path / "web-evidence"
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        stored = {(f.rule, f.integration) for f in store.open_findings(date(2026, 11, 22))}
    finally:
        store.close()
    assert stored == rules


def test_the_table_names_sites_third_parties_and_findings(world: World, tmp_path: Path) -> None:
    """Without a banner to click, only the state before any choice is loaded; the US font is
    not essential on this site."""
    config = world.configure(tmp_path, BLOG.replace("www.blog.test", "www.shop.test"))
    result = run("web", "--config", str(config), "--fail-on", "critical")
    assert result.exit_code == 1  # the US font
    assert "site blog: 1 of 1 pages observed" in result.output
    assert "web-transfer-unsafeguarded fontcdn-us.test" in result.output


def test_a_browser_that_is_not_there_exits_3_naming_the_setting(
    world: World, tmp_path: Path
) -> None:
    config = world.configure(tmp_path, WITHOUT_BROWSER)
    result = run("web", "--config", str(config))
    assert result.exit_code == 3
    assert "websites.browser:" in result.stderr and "does not exist" in result.stderr


def test_without_playwright_the_error_names_the_extra(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)
    config = world.configure(tmp_path, BLOG)
    result = run("web", "--config", str(config))
    assert result.exit_code == 3
    assert "pip install 'gdpr-auditor[web]'" in result.stderr


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ('  sites:\n    - id: "https://www.example.com/"\n      start: ["https://x.test/"]\n',
         "not a URL"),
        ("  sites:\n    - id: shop\n      start: [ftp://x.test/]\n", "http(s) URL"),
        (("  sites:\n    - id: a\n      start: [https://a.test/]\n"
         "    - id: a\n      start: [https://b.test/]\n"), "unique"),
        ("  timeout: 0\n", "greater than 0"),
    ],
)  # fmt: skip
def test_an_invalid_websites_section_exits_2_naming_the_key(
    world: World, tmp_path: Path, section: str, expected: str
) -> None:
    config = world.configure(tmp_path, "websites:\n" + section)
    result = run("web", "--config", str(config))
    assert result.exit_code == 2
    assert "websites" in result.stderr and expected in result.stderr


def test_no_site_to_look_at_exits_2(world: World, tmp_path: Path) -> None:
    config = world.configure(tmp_path, "")
    result = run("web", "--config", str(config))
    assert result.exit_code == 2 and "names no site" in result.stderr
