"""Loopback HTTPS servers standing in for websites and their third parties, by host name.

One threaded server answers for every host name (the browser is sent to 127.0.0.1 by Chromium's
`--host-resolver-rules`; the Host header picks the site), over TLS with a certificate made here
for `*.test` (the test browser ignores certificate errors; nothing else trusts it). Chromium keeps
a cross-site cookie only when it is `SameSite=None; Secure`, which needs HTTPS.
"""

from __future__ import annotations

import datetime as dt
import http.server
import importlib.util
import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from auditor.core.errors import BrowserUnavailableError
from auditor.probes.browser import BrowserSettings, find_executable

TEST_SWITCHES = (
    # Every host name to the loopback servers (the auditor's own resolver asks the loopback DNS
    # server instead), and the test certificate accepted by this browser only.
    "--host-resolver-rules=MAP * 127.0.0.1, EXCLUDE localhost",
    "--ignore-certificate-errors",
)


def browser_settings(timeout: float = 5.0, settle: float = 0.3) -> BrowserSettings:
    """The test browser's settings: the switches above, short waits."""
    return BrowserSettings(args=TEST_SWITCHES, timeout=timeout, settle=settle)


def require_browser() -> None:
    """Skip (or, with GDPR_AUDITOR_REQUIRE_SERVICES=1 as in CI, fail) without Playwright and
    Chromium."""
    reason = ""
    if importlib.util.find_spec("playwright") is None:
        reason = "Playwright is not installed (pip install -e '.[test]')"
    else:
        try:
            find_executable(None)
        except BrowserUnavailableError as exc:
            reason = str(exc)
    if reason:
        if os.environ.get("GDPR_AUDITOR_REQUIRE_SERVICES") == "1":
            pytest.fail(f"GDPR_AUDITOR_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)


@dataclass(frozen=True, slots=True)
class Reply:
    """What a path answers: a body with a content type, headers, a status; `hang` never ends it."""

    body: str = ""
    content_type: str = "text/html"
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for `*.test` and names below; (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loopback test sites")])
    now = dt.datetime.now(dt.UTC)
    names = [x509.DNSName(n) for n in ("*.test", "*.shop.test", "localhost")]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class LoopbackSites:
    """Serves `routes` (host -> path -> Reply) over HTTPS on 127.0.0.1; `PORT` in a body is
    replaced by the server's port. Requests are logged as (host, path) in `seen`."""

    def __init__(self, routes: Mapping[str, Mapping[str, Reply]], directory: Path) -> None:
        self.routes = routes
        self.seen: list[tuple[str, str]] = []
        self.broken: set[tuple[str, str]] = set()  # (host, path) answered 503 while listed
        self._stop = threading.Event()
        cert, key = make_certificate(directory)
        handler = _handler(self)
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, host: str, path: str = "/") -> str:
        return f"https://{host}:{self.port}{path}"

    def reply(self, host: str, path: str) -> Reply:
        if (host, path) in self.broken:
            return Reply("down for maintenance", "text/plain", status=503)
        return self.routes.get(host, {}).get(path, Reply("ok", "text/plain"))

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def hang(self) -> None:
        """Hold a response open until the server stops."""
        self._stop.wait(120)


def _handler(sites: LoopbackSites) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
            path = self.path.split("?", 1)[0]
            sites.seen.append((host, path))
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)  # a beacon's body
            reply = sites.reply(host, path)
            body = reply.body.replace("PORT", str(sites.port)).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value.replace("PORT", str(sites.port)))
            if reply.hang:
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                sites.hang()
                return
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
