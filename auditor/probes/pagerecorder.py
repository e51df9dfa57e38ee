"""Turns one page's browser events into records: Playwright's request events, completed by the
DevTools protocol's initiators and remote addresses, and the storage keys of the page's origins."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from auditor.probes.pagecapture import CapturedRequest, StorageKey

if TYPE_CHECKING:
    from playwright.sync_api import CDPSession, Page, Request, Response, WebSocket

MAX_ORIGINS = 100
"""Origins whose storage is read per page: a bound on DevTools calls for a page of many frames."""
_STEP_MS = 200


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _script_url(initiator: dict[str, Any]) -> str | None:
    """The innermost script URL of an initiator's stack, following async parents."""
    stack = initiator.get("stack")
    while isinstance(stack, dict):
        for frame in stack.get("callFrames", ()):
            if frame.get("url"):
                return str(frame["url"])
        stack = stack.get("parent")
    return None


class Recorder:
    """Collects one page's requests, responses, failures, WebSockets and bytes received.

    Handlers run in the thread driving the browser; nothing here is shared between pages.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.choice_made = False
        self.received = 0
        self.over_cap = False
        self._requests: list[Request] = []
        self._after: dict[Request, bool] = {}
        self._status: dict[Request, int] = {}
        self._failure: dict[Request, str] = {}
        self._sockets: list[tuple[str, bool]] = []
        self._initiators: dict[str, tuple[str | None, str | None]] = {}
        self._addresses: dict[str, tuple[str | None, int | None]] = {}
        self._documents: list[str] = []
        self._devtools: CDPSession | None = None

    # -- Playwright events ------------------------------------------------------------------

    def on_request(self, request: Request) -> None:
        self._requests.append(request)
        self._after[request] = self.choice_made

    def on_response(self, response: Response) -> None:
        self._status[response.request] = response.status

    def on_failed(self, request: Request) -> None:
        self._failure[request] = request.failure or "failed"

    def on_websocket(self, socket: WebSocket) -> None:
        self._sockets.append((socket.url, self.choice_made))

    # -- DevTools events ----------------------------------------------------------------------

    def attach(self, devtools: CDPSession) -> None:
        """Listen to the page's DevTools network events."""
        self._devtools = devtools
        devtools.on("Network.requestWillBeSent", self._will_be_sent)
        devtools.on("Network.responseReceived", self._response_received)
        devtools.on("Network.dataReceived", self._data_received)
        devtools.on("Network.webSocketCreated", self._socket_created)
        devtools.send("Network.enable")

    def _will_be_sent(self, event: dict[str, Any]) -> None:
        url = str(event.get("request", {}).get("url", ""))
        initiator = event.get("initiator", {})
        kind = initiator.get("type")
        source = initiator.get("url") or _script_url(initiator)
        self._initiators.setdefault(url, (kind, source))
        redirect = event.get("redirectResponse")
        if isinstance(redirect, dict):
            self._remember_address(redirect)
        if event.get("type") == "Document":
            self._documents.append(url)

    def _response_received(self, event: dict[str, Any]) -> None:
        response = event.get("response")
        if isinstance(response, dict):
            self._remember_address(response)

    def _remember_address(self, response: dict[str, Any]) -> None:
        address = response.get("remoteIPAddress") or None
        port = response.get("remotePort")
        if address is not None:
            address = str(address).strip("[]")
        self._addresses.setdefault(
            str(response.get("url", "")), (address, int(port) if port else None)
        )

    def _data_received(self, event: dict[str, Any]) -> None:
        self.received += int(event.get("dataLength", 0))
        if self.received > self.max_bytes and not self.over_cap and self._devtools is not None:
            from playwright.sync_api import Error

            self.over_cap = True
            # Nothing more is fetched; what the page got so far stays on record.
            with contextlib.suppress(Error):  # the page may be gone already
                self._devtools.send("Network.setBlockedURLs", {"urls": ["*"]})

    def _socket_created(self, event: dict[str, Any]) -> None:
        initiator = event.get("initiator") or {}
        source = initiator.get("url") or _script_url(initiator)
        self._initiators.setdefault(str(event.get("url", "")), (initiator.get("type"), source))

    # -- waiting and reading ------------------------------------------------------------------

    def settle(self, page: Page, seconds: float) -> None:
        """Wait for late requests (a tag manager's), stopping early once the size cap is hit."""
        from playwright.sync_api import Error

        waited = 0
        try:
            while waited < seconds * 1000 and not self.over_cap:
                step = min(_STEP_MS, int(seconds * 1000) - waited)
                page.wait_for_timeout(step)
                waited += step
        except Error:
            pass  # the page went away: what was recorded stays

    def storage(self, page: Page) -> tuple[StorageKey, ...]:
        """The local and session storage keys of the origins of the page's frames and of every
        document it loaded (values are not kept)."""
        from playwright.sync_api import Error

        if self._devtools is None:
            return ()
        origins = dict.fromkeys(
            origin
            for url in (*(frame.url for frame in page.frames), *self._documents)
            if (origin := _origin(url)) is not None
        )
        keys: list[StorageKey] = []
        for origin in list(origins)[:MAX_ORIGINS]:
            for area, local in (("local", True), ("session", False)):
                storage_id = {"securityOrigin": origin, "isLocalStorage": local}
                try:
                    items = self._devtools.send(
                        "DOMStorage.getDOMStorageItems", {"storageId": storage_id}
                    )
                except Error:
                    continue
                keys += [
                    StorageKey(origin, area, str(entry[0]))
                    for entry in items.get("entries", ())
                    if entry
                ]
        return tuple(keys)

    def records(self) -> tuple[CapturedRequest, ...]:
        """Every request in the order it was made, then the WebSockets."""
        made = [self._record(request) for request in self._requests]
        for url, after in self._sockets:
            kind, source = self._initiators.get(url, (None, None))
            made.append(CapturedRequest(url, "GET", "websocket", None, kind, source,
                                        after_choice=after))  # fmt: skip
        return tuple(made)

    def _record(self, request: Request) -> CapturedRequest:
        from playwright.sync_api import Error

        try:
            frame_url: str | None = request.frame.url
        except Error:  # a service worker's request has no frame
            frame_url = None
        previous = request.redirected_from
        kind: str | None
        source: str | None
        if previous is not None:
            kind, source = "redirect", previous.url
        else:
            kind, source = self._initiators.get(request.url, (None, None))
        address, port = self._addresses.get(request.url, (None, None))
        return CapturedRequest(
            url=request.url,
            method=request.method,
            resource_type=request.resource_type,
            frame_url=frame_url,
            initiator=kind,
            initiator_url=source,
            status=self._status.get(request),
            remote_address=address,
            remote_port=port,
            failure=self._failure.get(request),
            after_choice=self._after.get(request, False),
        )
