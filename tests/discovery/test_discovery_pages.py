"""Page discovery against a loopback HTTP server: realistic pages, and huge, slow, non-HTML ones."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from auditor.core.sites import registrable_domain
from auditor.discovery.catalogue import Catalogue, load_catalogue
from auditor.discovery.pages import extract_urls, page_signals, scan_pages

HOME = """<!doctype html>
<html lang="en"><head>
<meta charset="utf-8"><title>Shop Co</title>
<link rel="stylesheet" href="/static/site.css">
<link rel="preconnect" href="https://fonts.gstatic.example">
<!-- Google Tag Manager -->
<script>(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':
new Date().getTime(),event:'gtm.js'});var f=d.getElementsByTagName(s)[0],
j=d.createElement(s),dl=l!='dataLayer'?'&l='+l:'';j.async=true;j.src=
'https://www.googletagmanager.com/gtm.js?id='+i+dl;f.parentNode.insertBefore(j,f);
})(window,document,'script','dataLayer','GTM-XXXX');</script>
<script async src="https://www.google-analytics.com/analytics.js"></script>
<script>(function(h,o,t,j,a,r){h.hj=h.hj||function(){(h.hj.q=h.hj.q||[]).push(arguments)};
h._hjSettings={hjid:123,hjsv:6};r=o.createElement('script');r.async=1;
r.src=t+h._hjSettings.hjid+j+h._hjSettings.hjsv;a.appendChild(r);
})(window,document,'https://static.hotjar.com/c/hotjar-','.js?sv=');</script>
<script type="text/javascript" id="hs-script-loader" async defer src="//js.hs-scripts.com/123.js"></script>
</head><body>
<img src="https://cdn.shop-co.example/logo.png" srcset="https://img.unknown-cdn.example/a.png 2x">
<a href="https://twitter.example/shopco">not loaded: a link</a>
<iframe src="https://form.typeform.com/to/abc123"></iframe>
<form action="https://shopco.us1.list-manage.com/subscribe/post?u=1&amp;id=2" method="post">
<input type="email" name="EMAIL"></form>
<script>window.intercomSettings = {app_id: "abc"};</script>
<script src="https://widget.intercom.io/widget/abc"></script>
<script src="/js/app.js"></script>
<script src="https://static.shop-co.example/js/vendor.js"></script>
</body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/":
            self._send(200, "text/html; charset=utf-8", HOME.encode())
        elif self.path == "/huge":
            self._send(200, "text/html", b"<html><body>" + b"<p>x</p>" * 200_000)
        elif self.path == "/slow":
            time.sleep(1.0)
            self._send(200, "text/html", b"<html></html>")
        elif self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            for _ in range(12):
                self.wfile.write(b"<p>" + b"x" * 100 + b"</p>")
                self.wfile.flush()
                time.sleep(0.1)
        elif self.path == "/data.json":
            self._send(200, "application/json", b'{"src": "https://js.stripe.com/v3"}')
        else:
            self._send(404, "text/html", b"<html>not found</html>")

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # The client may stop reading at its size limit: that is the point.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def test_realistic_page_names_its_vendors(site: str, catalogue: Catalogue) -> None:
    """A page with a tag manager, analytics, a heatmap, a chat widget, an embedded form and a
    newsletter form yields those vendors, with the element as evidence; unknown third-party
    hosts are listed too, and first-party hosts and plain links are not."""
    found = scan_pages([f"{site}/"], ["shop-co.example"], catalogue, timeout=2, max_bytes=10**6)
    assert found.problems == []
    by_host = {signal.host: signal for signal in found.signals}
    assert {s.vendor for s in found.signals} == {
        "google-tag-manager", "google-analytics", "hotjar", "hubspot", "typeform", "mailchimp",
        "intercom", None,
    }  # fmt: skip
    assert by_host["www.googletagmanager.com"].evidence.matched == "inline script"
    assert by_host["js.hs-scripts.com"].evidence.matched == "script src"
    assert by_host["form.typeform.com"].evidence.matched == "iframe src"
    assert by_host["shopco.us1.list-manage.com"].evidence.matched == "form action"
    unknown = {s.host for s in found.signals if s.vendor is None}
    assert unknown == {"fonts.gstatic.example", "img.unknown-cdn.example"}
    assert "twitter.example" not in by_host


def test_huge_page_stops_at_the_size_limit(site: str, catalogue: Catalogue) -> None:
    """A page larger than the limit is refused after reading just past the limit."""
    found = scan_pages([f"{site}/huge"], [], catalogue, timeout=2, max_bytes=100_000)
    assert found.signals == []
    assert found.problems == [f"{site}/huge: larger than the limit of 100000 bytes"]


def test_slow_and_trickling_pages_time_out(site: str, catalogue: Catalogue) -> None:
    """A page that does not answer in time, and one that trickles past the overall timeout,
    are problems, quickly."""
    started = time.monotonic()
    found = scan_pages([f"{site}/slow", f"{site}/trickle"], [], catalogue, timeout=0.4,
                       max_bytes=10**6)  # fmt: skip
    assert time.monotonic() - started < 2.0
    assert found.problems[0] == f"{site}/slow: no answer within 0.4 s"
    assert found.problems[1] == f"{site}/trickle: not complete within 0.4 s"


def test_non_html_and_missing_pages_are_refused(site: str, catalogue: Catalogue) -> None:
    """A JSON response is not scanned for URLs; a 404 is a problem; an unreachable port too."""
    found = scan_pages([f"{site}/data.json", f"{site}/gone", "http://127.0.0.1:9/"], [],
                       catalogue, timeout=1, max_bytes=10**6)  # fmt: skip
    assert found.signals == []
    assert found.problems[0] == f"{site}/data.json: not HTML (application/json)"
    assert found.problems[1] == f"{site}/gone: HTTP 404"
    assert found.problems[2].startswith("http://127.0.0.1:9/: unreachable")


def test_extraction_uses_a_real_parser() -> None:
    """URLs inside comments and attribute-looking text are ignored; entities in attributes are
    decoded; relative URLs are made absolute; srcset lists give every URL."""
    html = (
        '<!-- <script src="https://commented.example/x.js"></script> -->'
        "<p>src=https://text.example/x</p>"
        '<img srcset="https://a.example/1.png 1x, https://b.example/2.png 2x">'
        '<form action="/send?a=1&amp;b=2"></form>'
    )
    urls = extract_urls(html, "https://www.shop.example/page")
    assert urls == [
        ("img srcset", "https://a.example/1.png"),
        ("img srcset", "https://b.example/2.png"),
        ("form action", "https://www.shop.example/send?a=1&b=2"),
    ]


def test_first_party_is_the_registrable_domain(catalogue: Catalogue) -> None:
    """Hosts under the page's registrable domain (co.uk aware) are first-party."""
    assert registrable_domain("www.shop.co.uk") == "shop.co.uk"
    assert registrable_domain("a.b.shop.example") == "shop.example"
    html = '<script src="https://cdn.shop.co.uk/a.js"></script><script src="https://js.stripe.com/v3"></script>'
    signals = page_signals("https://www.shop.co.uk/", html, [], catalogue)
    assert [(s.vendor, s.host) for s in signals] == [("stripe", "js.stripe.com")]


@pytest.mark.parametrize(
    ("page", "own", "hosts", "third_parties"),
    [
        # A configured name below the registrable domain makes the whole site first-party.
        ("https://shop.example.com.au/", ["www.example.com.au"],
         ["static.example.com.au", "cdn.other.com.au"], [(None, "cdn.other.com.au")]),
        # Sites under a private suffix are third parties to each other, GitHub Pages included.
        ("https://mine.github.io/", [],
         ["assets.mine.github.io", "other.github.io"], [("github", "other.github.io")]),
        # A page on a configured domain's other site: both the page's and the domain's are own.
        ("https://www.shop.co.uk/", ["example.co.uk"],
         ["img.example.co.uk", "cdn.shop.co.uk", "example.co.uk.evil.example"],
         [(None, "example.co.uk.evil.example")]),
    ],
)  # fmt: skip
def test_first_party_follows_the_public_suffix_list(
    catalogue: Catalogue,
    page: str,
    own: list[str],
    hosts: list[str],
    third_parties: list[tuple[str | None, str]],
) -> None:
    """A page's host and the configured domains are first-party by registrable domain (Public
    Suffix List, private suffixes such as github.io included); any other host is a third party."""
    html = "".join(f'<script src="https://{host}/a.js"></script>' for host in hosts)
    signals = page_signals(page, html, own, catalogue)
    assert [(s.vendor, s.host) for s in signals] == third_parties
