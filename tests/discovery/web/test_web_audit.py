"""The web audit end to end in real Chromium: what each site's pages make the browser send where,
in each consent state, attributed, located by the auditor's own DNS and GeoIP, and judged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from auditor.core.model import Finding
from auditor.discovery.web.audit import WebAudit
from auditor.discovery.web.files import prune_runs
from auditor.discovery.web.job import audit_websites
from auditor.service.generation import load_generation
from tests.discovery.web.conftest import World

AS_OF = date(2026, 11, 22)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Run:
    audit: WebAudit
    root: Path
    port: int

    def findings(self, rule: str) -> dict[tuple[str, str | None], Finding]:
        return {(f.integration, f.place): f for f in self.audit.findings if f.rule == rule}


@pytest.fixture(scope="module")
def run(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    directory = tmp_path_factory.mktemp("audit")
    generation = load_generation(world.configure(directory))
    root = directory / "web-evidence"
    audit = audit_websites(
        generation.config, generation.policies, generation.integrations, generation.resolver,
        generation.locator, root=root, as_of=AS_OF, clock=utcnow,
    )  # fmt: skip
    yield Run(audit, root, world.sites.port)


class TestTransfers:
    def test_a_us_vendor_is_an_unlawful_transfer_even_behind_an_eu_edge(self, run: Run) -> None:
        """The tag manager's host resolves to a CDN edge in France; the recipient is the vendor,
        whose catalogue headquarters are in the US, and nothing is recorded for it: its
        catalogue DPF flag is no certification."""
        found = run.findings("web-transfer-unsafeguarded")[("test-tagmanager", "US")]
        assert found.severity.value == "critical" and found.article == "Art. 44"
        assert found.evidence["via"] == ["headquarters (catalogue)"]
        assert "DPF List" in found.message and "certification" in found.message
        assert ("test-tagmanager", "FR") not in run.findings("web-transfer-unsafeguarded")
        assert run.audit.observed["tags.tagmgr.test"].edge

    def test_trackers_injected_after_accept_are_judged_by_where_they_are(self, run: Run) -> None:
        found = run.findings("web-transfer-unsafeguarded")[("test-tracker", "US")]
        assert found.evidence["hosts"] == [
            "beacon.tracker-us.test", "collect.tracker-us.test", "img.tracker-us.test",
        ]  # fmt: skip
        assert "headquarters (catalogue)" in found.evidence["via"]
        assert "address of collect.tracker-us.test" in found.evidence["via"]
        assert sorted(found.evidence["sites"]) == ["blog", "shop"]
        assert "web-host:collect.tracker-us.test" in found.probes

    def test_a_font_from_a_us_host_sends_visitors_ip_addresses_to_the_us(self, run: Run) -> None:
        """Essential or not, an uncatalogued host located in the US is a transfer; the address
        the browser connected to is kept as evidence, the auditor's resolution decides."""
        found = run.findings("web-transfer-unsafeguarded")[("fontcdn-us.test", "US")]
        assert found.evidence["via"] == ["address of fonts.fontcdn-us.test"]
        assert found.evidence["connected"] == {"fonts.fontcdn-us.test": ["127.0.0.1"]}
        assert found.evidence["resolved"] == {"fonts.fontcdn-us.test": ["198.51.100.10"]}

    def test_declared_integrations_hosted_in_the_eea_are_no_transfer(self, run: Run) -> None:
        unlawful = {key[0] for key in run.findings("web-transfer-unsafeguarded")}
        assert unlawful == {"test-tagmanager", "test-tracker", "fontcdn-us.test"}
        verdicts = {j.party.key: j.verdict.value for j in run.audit.parties}
        assert verdicts["psp"] == verdicts["eu-analytics"] == verdicts["embed.test"] == "eea"


class TestConsent:
    def test_a_banner_that_loads_trackers_anyway_is_tracking_before_consent(self, run: Run) -> None:
        """Declared or not, lawful transfer or not: the EU analytics the tag manager calls is
        declared and hosted in Germany, and still must wait for consent."""
        found = run.findings("web-tracking-before-consent")
        on_blog = {ident for ident, place in found if place == "blog"}
        assert on_blog == {"test-tagmanager", "test-tracker", "eu-analytics", "embed.test",
                           "redirect.test", "sockets.test"}  # fmt: skip
        tracker = found[("test-tracker", "blog")]
        assert set(tracker.evidence["states"]) == {"before", "reject"}
        assert "before the visitor chose and after they rejected" in tracker.message
        assert tracker.severity.value == "critical"

    def test_a_third_party_cookie_and_storage_key_before_consent_are_named(self, run: Run) -> None:
        widget = run.findings("web-tracking-before-consent")[("embed.test", "blog")]
        before = widget.evidence["states"]["before"]
        assert [c["name"] for c in before["cookies"]] == ["wid"]
        assert before["cookies"][0]["lifetime_days"] == pytest.approx(365, abs=0.01)
        assert any(key.endswith("localStorage widget-id") for key in before["storage"])
        assert "sets cookies and sets storage keys" in widget.message

    def test_a_banner_that_waits_for_accept_and_essential_hosts_raise_nothing(
        self, run: Run
    ) -> None:
        found = run.findings("web-tracking-before-consent")
        assert not [key for key in found if key[1] == "shop"]
        shop = {j.party.key: s for j in run.audit.parties for s in j.sightings if s.site == "shop"}
        assert set(shop["test-tracker"].states) == {"accept"}
        assert shop["fontcdn-us.test"].essential == {"fonts.fontcdn-us.test"}
        assert shop["fontcdn-us.test"].states["before"].contacted

    def test_the_redirect_chain_is_attributed_hop_by_hop(self, run: Run) -> None:
        parties = {j.party.key: j for j in run.audit.parties}
        assert parties["redirect.test"].hosts == ["r.redirect.test"]
        assert "img.tracker-us.test" in parties["test-tracker"].hosts


class TestInventory:
    def test_third_parties_the_inventory_does_not_declare(self, run: Run) -> None:
        found = run.findings("web-third-party-undeclared")
        assert {ident for ident, _ in found} == {
            "test-tagmanager", "test-tracker", "fontcdn-us.test", "embed.test", "redirect.test",
            "sockets.test",
        }  # fmt: skip
        assert all(f.severity.value == "warning" and f.article == "Art. 30" for f in found.values())


class TestVisit:
    def test_the_site_is_crawled_by_its_own_links_only(self, run: Run) -> None:
        shop = next(v for v in run.audit.visits if v.site.id == "shop")
        paths = sorted(page.url.split(str(run.port))[1] for page in shop.pages)
        assert paths == ["/", "/about", "/slow"]
        assert [state.capture.state for state in shop.pages[0].states] == [
            "before", "reject", "accept",
        ]  # fmt: skip

    def test_a_page_that_never_finishes_loading_is_a_failed_probe(self, run: Run) -> None:
        failed = run.audit.failed_probes
        slow = f"web-page:shop:https://www.shop.test:{run.port}/slow"
        assert failed[slow].startswith("before: did not finish loading within 4 s")
        assert failed["web-site:shop"] == "1 of 3 pages not observed completely"
        assert "web-site:blog" not in failed
        assert not run.audit.complete and not run.audit.nothing_observed

    def test_every_page_and_state_has_its_record_screenshot_and_har(self, run: Run) -> None:
        record = run.audit.chain_record()
        files = [
            files
            for site in record["sites"]
            for page in site["pages"]
            for state in page["states"].values()
            for files in [state["files"]]
        ]
        assert len(files) == 3 * 3 + 1 * 2
        for entry in files:
            written = json.loads((run.root / entry["record"]["name"]).read_text())
            assert written["record"] == "gdpr-auditor web page"
            assert entry["har"] is not None
        blog = next(s for s in record["sites"] if s["site"] == "blog")["pages"][0]["states"]
        document = json.loads((run.root / blog["before"]["files"]["record"]["name"]).read_text())
        hosts = {r["host"]: r for r in document["requests"]}
        assert hosts["img.tracker-us.test"]["initiator"] == "redirect"
        assert hosts["img.tracker-us.test"]["party"] == "test-tracker"
        assert not hosts["www.blog.test"]["third_party"]
        assert [c["domain"] for c in document["cookies"]] == ["widget.embed.test"]

    def test_metrics_count_third_parties_by_site_state_and_verdict(self, run: Run) -> None:
        counts = run.audit.third_parties()
        assert counts[("shop", "accept", "unsafeguarded")] == 3
        assert counts[("shop", "before", "unsafeguarded")] == 1  # the font
        assert counts[("shop", "accept", "eea")] == 2  # the payment SDK, the EU analytics
        assert counts[("blog", "reject", "unsafeguarded")] == 2
        assert run.audit.pages() == {("shop", "observed"): 2, ("shop", "failed"): 1,
                                     ("blog", "observed"): 1}  # fmt: skip


def test_old_runs_are_pruned_and_other_files_left_alone(tmp_path: Path) -> None:
    for name in ("20260101T000000Z", "20261120T000000Z", "notes"):
        (tmp_path / name).mkdir()
    removed = prune_runs(tmp_path, datetime(2026, 11, 1, tzinfo=UTC))
    assert removed == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20261120T000000Z", "notes"]
