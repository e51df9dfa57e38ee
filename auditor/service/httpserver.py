"""The HTTP endpoint Prometheus scrapes: `/metrics`, a `/healthz` check and a landing page at `/`."""

from __future__ import annotations

import contextlib
import html
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

import structlog

from auditor import __version__

Health = Callable[[], tuple[bool, str]]
"""Says whether the daemon is healthy, and if not why."""
Landing = Callable[[], str]
"""Renders the landing page at `/` (HTML) from what the daemon holds; never audits."""
Render = Callable[[str, bool], tuple[str, bytes]]
"""Renders `/metrics` for an `Accept` header, gzip-compressed if the flag says so: (content type,
body). `auditor.service.metrics.Exposition.render` is one."""

log = structlog.get_logger(__name__)

_FALLBACK = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>gdpr-auditor</title></head>
<body>
<h1>gdpr-auditor {version}</h1>
<p>GDPR compliance auditing daemon. Metrics show the results of the last completed audit run.</p>
<ul>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="/healthz">/healthz</a>: health check</li>
</ul>
</body>
</html>
"""


class MetricsServer:
    """Serves rendered metrics over HTTP from a background thread; `port` 0 picks a free port."""

    def __init__(
        self, host: str, port: int, render: Render, health: Health, landing: Landing | None = None
    ) -> None:
        self.host = host
        self._requested_port = port
        self._render = render
        self._health = health
        self._landing = landing
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on, known once started (useful when 0 was asked for)."""
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    def start(self) -> Self:
        """Bind and serve in a daemon thread; return self.

        Raises:
            OSError: the address cannot be bound (in use, not local, no permission).
        """
        if self._server is not None:
            return self
        server = _Server((self.host, self._requested_port), _Handler, ipv6=":" in self.host)
        server.render = self._render
        server.health = self._health
        server.landing = self._landing
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="metrics-http", daemon=True
        )
        self._thread.start()
        log.info("metrics_listening", host=self.host, port=self.port)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting requests, close the socket and wait for the serving thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        # serve_forever() notices a shutdown request only when select() returns, every half
        # second when idle; knocking on the socket makes it return now.
        shutter = threading.Thread(target=server.shutdown, name="metrics-http-stop", daemon=True)
        shutter.start()
        deadline = time.monotonic() + timeout
        while shutter.is_alive() and time.monotonic() < deadline:
            _knock(server)
            shutter.join(0.02)
        server.server_close()
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    render: Render
    health: Health
    landing: Landing | None

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *, ipv6: bool
    ) -> None:
        # Read by the base class when it creates the socket, so it must be set first.
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One structured line for a request that failed, never a traceback on stderr with the
        client's address (socketserver's default)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            # The client went away (closed early, reset, timed out): nothing to fix here.
            log.debug("http_client_disconnected", error=type(exc).__name__)
            return
        log.error(
            "http_request_failed",
            error=f"{type(exc).__name__}: {exc}" if exc is not None else "unknown",
        )

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look the host up with getfqdn(), a DNS query at start-up
        # that can hang without a resolver; the name is only used in CGI environments.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = f"gdpr-auditor/{__version__}"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30  # a stalled client must not hold a thread for ever
    # A request line that cannot be parsed (junk, a TLS ClientHello) still gets a status line.
    default_request_version = "HTTP/1.0"
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def _respond(self, *, head: bool) -> None:
        path = urlsplit(self.path).path
        compress = path == "/metrics" and _accepts_gzip(self.headers)
        if path == "/metrics":
            status, content_type, body = self._metrics(compress)
        elif path == "/healthz":
            status, content_type, body = self._healthz()
        elif path == "/":
            status, content_type, body = HTTPStatus.OK, _HTML, self._landing().encode()
        else:
            status, content_type, body = HTTPStatus.NOT_FOUND, _TEXT, b"not found\n"
        headers = {"Content-Type": content_type}
        if compress and status == HTTPStatus.OK:
            headers["Content-Encoding"] = "gzip"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _metrics(self, compress: bool) -> tuple[HTTPStatus, str, bytes]:
        try:
            content_type, body = self.server.render(self.headers.get("Accept", ""), compress)
        except Exception:
            # A broken snapshot must show as a failed scrape (`up` 0), not as an empty one.
            log.exception("metrics_collection_failed")
            return HTTPStatus.INTERNAL_SERVER_ERROR, _TEXT, b"metrics collection failed\n"
        return HTTPStatus.OK, content_type, body

    def _landing(self) -> str:
        fallback = _FALLBACK.format(version=html.escape(__version__))
        if self.server.landing is None:
            return fallback
        try:
            return self.server.landing()
        except Exception:
            # The links still help; the log says what went wrong.
            log.exception("landing_page_failed")
            return fallback

    def _healthz(self) -> tuple[HTTPStatus, str, bytes]:
        try:
            healthy, reason = self.server.health()
        except Exception:
            log.exception("health_check_failed")
            healthy, reason = False, "health check failed"
        if healthy:
            return HTTPStatus.OK, _TEXT, b"ok\n"
        return HTTPStatus.SERVICE_UNAVAILABLE, _TEXT, f"{reason}\n".encode()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The client's address stays out of the log: it says nothing useful about the audit.
        path = getattr(self, "path", None)
        if path is None:
            return  # a request line that could not be parsed: `log_error` said so already
        status = code.value if isinstance(code, HTTPStatus) else code
        log.debug("http_request", method=self.command, path=urlsplit(path).path, status=status)

    def log_error(self, format: str, *args: Any) -> None:
        # send_error() (a 400 for junk or a TLS handshake, a 408, ...) reports here, once.
        log.info("http_bad_request", reason=_printable(format % args))

    def log_message(self, format: str, *args: Any) -> None:
        # The base class writes other notes to stderr; route them here.
        log.debug("http_error", message=_printable(format % args))


_TEXT = "text/plain; charset=utf-8"
_HTML = "text/html; charset=utf-8"


def _printable(text: str, limit: int = 200) -> str:
    """A client's bytes made safe for a log line: control characters escaped, length bounded."""
    escaped = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return escaped if len(escaped) <= limit else escaped[:limit] + "..."


def _knock(server: _Server) -> None:
    host, port = server.server_address[:2]
    # Already closed, or not reachable from here: then the poll interval still applies.
    with contextlib.suppress(OSError):
        socket.create_connection((str(host), int(port)), timeout=0.2).close()


def _accepts_gzip(headers: Any) -> bool:
    accept = str(headers.get("Accept-Encoding", ""))
    return any(part.split(";")[0].strip() == "gzip" for part in accept.split(","))
