"""Two loopback websites and their third parties, the auditor's own DNS answers for those, a vendor
file and an inventory: the web audit's test world.

`shop` has a consent banner that works: before any choice it loads only its own files, a font
from a US host and a payment SDK (both listed as essential); its tag manager, and the trackers
the tag manager injects after load, come only after "accept". `blog` has a banner that loads its
trackers anyway: a tag manager, a tracker reached through a redirect chain, an iframe that sets a
cookie and a storage key, a WebSocket; "reject" changes nothing. `shop` also links to a page
that never finishes loading.

The browser reaches every host at 127.0.0.1 (`--host-resolver-rules`); the auditor resolves them
through the loopback DNS server to documentation addresses the test mmdb places: 198.51.100.0/25
in the US, 192.0.2.0/25 in Germany, 203.0.113.192/26 in France on Cloudflare's AS (a CDN edge).
"""

from __future__ import annotations

from pathlib import Path

from tests.webserver import Reply

BANNER = (
    '<div id="banner"><button id="reject">Reject</button><button id="accept">Accept</button></div>'
)

SHOP = f"""<html><head>
<link rel="stylesheet" href="https://fonts.fontcdn-us.test:PORT/font.css">
<script src="https://payments.psp-eu.test:PORT/sdk.js"></script>
<script src="https://static.shop.test:PORT/app.js"></script>
</head><body>{BANNER}
<a href="/about">About</a> <a href="/slow">Slow</a> <a href="/brochure.pdf">Brochure</a>
<a href="https://elsewhere.test/">Elsewhere</a>
<script>
  document.getElementById("accept").onclick = () => {{
    const s = document.createElement("script");
    s.src = "https://tags.tagmgr.test:PORT/tm.js";
    document.head.appendChild(s);
  }};
</script>
</body></html>"""

ABOUT = SHOP.replace('<a href="/slow">Slow</a>', "")

TAG_MANAGER = """setTimeout(() => {
  const s = document.createElement("script");
  s.src = "https://collect.tracker-us.test:PORT/t.js";
  document.head.appendChild(s);
  navigator.sendBeacon("https://beacon.tracker-us.test:PORT/b", "event");
  fetch("https://api.analytics-eu.test:PORT/collect", {mode: "no-cors"});
}, 50);"""

BLOG = f"""<html><head>
<script src="https://tags.tagmgr.test:PORT/tm.js"></script>
</head><body>{BANNER}
<img src="https://r.redirect.test:PORT/r">
<iframe src="https://widget.embed.test:PORT/frame.html"></iframe>
<script>new WebSocket("wss://live.sockets.test:PORT/ws");</script>
</body></html>"""

FRAME = """<html><body><script>localStorage.setItem("widget-id", "x");</script></body></html>"""

ROUTES = {
    "www.shop.test": {
        "/": Reply(SHOP),
        "/about": Reply(ABOUT),
        "/slow": Reply('<html><body><img src="/hang"></body></html>'),
        "/hang": Reply("", "image/gif", hang=True),
    },
    "www.blog.test": {"/": Reply(BLOG)},
    "tags.tagmgr.test": {"/tm.js": Reply(TAG_MANAGER, "application/javascript")},
    "fonts.fontcdn-us.test": {"/font.css": Reply("body {}", "text/css")},
    "r.redirect.test": {
        "/r": Reply("", status=302, headers={"Location": "https://img.tracker-us.test:PORT/i.gif"})
    },
    "widget.embed.test": {
        "/frame.html": Reply(
            FRAME, headers={"Set-Cookie": "wid=1; Max-Age=31536000; SameSite=None; Secure"}
        )
    },
}

ZONE = """
$TTL 300
fonts.fontcdn-us.test.   IN A 198.51.100.10
payments.psp-eu.test.    IN A 192.0.2.10
api.analytics-eu.test.   IN A 192.0.2.11
tags.tagmgr.test.        IN A 203.0.113.200
collect.tracker-us.test. IN A 198.51.100.20
beacon.tracker-us.test.  IN A 198.51.100.21
img.tracker-us.test.     IN A 198.51.100.22
r.redirect.test.         IN A 192.0.2.21
widget.embed.test.       IN A 192.0.2.20
live.sockets.test.       IN A 192.0.2.22
"""

VENDORS = """
vendors:
  - id: test-tagmanager
    name: Tag Manager Test Inc.
    category: analytics
    headquarters: US
    dpf: true
    domains: [tagmgr.test]
    sources: {headquarters: memory, dpf: memory, domains: memory}
  - id: test-tracker
    name: Tracker Test Corp.
    category: analytics
    headquarters: US
    dpf: false
    domains: [tracker-us.test]
    sources: {headquarters: memory, dpf: memory, domains: memory}
"""

INVENTORY = """
integrations:
  - id: psp
    name: Payments EU
    category: webshop
    role: processor
    data_categories: [payment]
    endpoints: [payments.psp-eu.test]
    hosting: [DE]
  - id: eu-analytics
    name: EU Analytics
    category: analytics
    role: processor
    data_categories: [behavioural]
    endpoints: [api.analytics-eu.test]
    hosting: [DE]
"""

SITES = """
websites:
  timeout: 4
  settle: 0.4
  browser_args: {switches}
  sites:
    - id: shop
      start: ["https://www.shop.test:{port}/"]
      max_pages: 5
      reject: "#reject"
      accept: "#accept"
      essential: [fonts.fontcdn-us.test, psp]
    - id: blog
      start: ["https://www.blog.test:{port}/"]
      max_pages: 1
      reject: "#reject"
"""


def write_world(
    directory: Path, port: int, nameserver: str, country_db: Path, asn_db: Path, switches: str,
    sites: str = SITES, jobs: str = "",
) -> Path:  # fmt: skip
    """Write the configuration, inventory and vendor file; return the configuration's path."""
    (directory / "inventory.yaml").write_text(INVENTORY, encoding="utf-8")
    (directory / "vendors.yaml").write_text(VENDORS, encoding="utf-8")
    config = directory / "auditor.yaml"
    config.write_text(
        "inventory: inventory.yaml\n"
        f"dns:\n  nameservers: ['{nameserver}']\n  timeout: 1\n"
        f"geoip:\n  country_db: {country_db}\n  asn_db: {asn_db}\n  max_age_days: 36500\n"
        "database:\n  url: sqlite:///state.db\n"
        "discovery:\n  vendors: vendors.yaml\n" + jobs + sites.format(port=port, switches=switches),
        encoding="utf-8",
    )
    return config
