"""What the browser recorded of one page in one consent state: requests, cookies, storage keys.

Plain values with their JSON form; what is first or third party, and what that means, is decided
by the web audit, not here. Cookie and storage values are never kept: names say what was set,
values would only be the audit browser's own identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

STATES = ("before", "reject", "accept")
"""The consent states a page is loaded in: before any choice, after reject, after accept."""


@dataclass(frozen=True, slots=True)
class CapturedRequest:
    """One request the page made (a WebSocket included), with who made it and where it went."""

    url: str
    method: str
    resource_type: str  # document, script, image, ping (sendBeacon), fetch, websocket, ...
    frame_url: str | None = None  # the document of the frame that made it
    initiator: str | None = None  # parser | script | preload | redirect | other
    initiator_url: str | None = None  # the document, script or redirecting URL behind it
    status: int | None = None  # the HTTP status, None when no response came
    remote_address: str | None = None  # the address the browser actually connected to
    remote_port: int | None = None
    failure: str | None = None  # why it failed (net::ERR_...), None when it did not
    after_choice: bool = False  # made after the consent banner's button was clicked

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "method": self.method,
            "type": self.resource_type,
            "frame": self.frame_url,
            "initiator": self.initiator,
            "initiator_url": self.initiator_url,
            "status": self.status,
            "remote_address": self.remote_address,
            "remote_port": self.remote_port,
            "failure": self.failure,
            "after_choice": self.after_choice,
        }


@dataclass(frozen=True, slots=True)
class CapturedCookie:
    """A cookie in the browser after the page: where it belongs and how long it lives."""

    name: str
    domain: str  # as the browser keeps it, without a leading dot
    path: str
    expires: float | None  # Unix time; None for a session cookie
    secure: bool = False
    http_only: bool = False
    same_site: str | None = None

    def lifetime_seconds(self, at: datetime) -> float | None:
        """How long after `at` the cookie lives (None: until the browser closes)."""
        return None if self.expires is None else max(0.0, self.expires - at.timestamp())


@dataclass(frozen=True, slots=True)
class StorageKey:
    """A key in an origin's local or session storage."""

    origin: str
    area: str  # local | session
    key: str

    def as_json(self) -> dict[str, str]:
        return {"origin": self.origin, "area": self.area, "key": self.key}


@dataclass(frozen=True, slots=True)
class PageCapture:
    """One page loaded in one consent state in a fresh browser context.

    `failure` says why the page could not be observed completely (it did not load, the banner's
    button was not found, the size cap was reached); what was seen until then is kept.
    """

    url: str
    state: str  # one of STATES
    started_at: datetime
    final_url: str | None = None
    status: int | None = None
    failure: str | None = None
    clicked: bool = False  # the consent banner's button was found and clicked
    requests: tuple[CapturedRequest, ...] = ()
    cookies: tuple[CapturedCookie, ...] = ()
    storage: tuple[StorageKey, ...] = ()
    links: tuple[str, ...] = field(default=(), compare=False)  # the page's links, for crawling
    bytes_received: int = 0

    @property
    def ok(self) -> bool:
        return self.failure is None

    def cookie_json(self, cookie: CapturedCookie) -> dict[str, Any]:
        lifetime = cookie.lifetime_seconds(self.started_at)
        return {
            "name": cookie.name,
            "domain": cookie.domain,
            "path": cookie.path,
            "session": cookie.expires is None,
            "lifetime_days": None if lifetime is None else round(lifetime / 86400, 2),
            "secure": cookie.secure,
            "http_only": cookie.http_only,
            "same_site": cookie.same_site,
        }
