"""Direct webhook notifications of new and resolved critical findings, each sent once.

For organisations without Alertmanager: after an audit, the critical findings' new, reopened and
resolved events in the state store are posted to a webhook, as generic JSON or in Slack's
incoming-webhook form. What was sent is recorded in the store (`notifications_sent`), so a
restart sends nothing twice; events recorded before notifications were first enabled are not sent.
The URL is a secret (it often embeds a token): it is read from an environment variable when
sending and never logged, not even in error messages, which only name the exception class.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
import structlog
from sqlalchemy import (
    func,
    insert,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from auditor.config import NotifyFormat, NotifySettings
from auditor.core.errors import InvalidInputError, Issue, StoreError
from auditor.service.log import register_secret
from auditor.store import StateStore
from auditor.store.records import record_of
from auditor.store.schema import finding_events, findings, notifications_sent

log = structlog.get_logger(__name__)

FIRING = ("new", "reopened")
RESOLVED = ("resolved",)
BASELINE, SENT, REJECTED = "baseline", "sent", "rejected"


@dataclass(frozen=True, slots=True)
class Retry:
    """How often and how patiently a post is tried: `attempts` tries, waits doubling from `backoff`."""

    attempts: int = 4
    backoff_seconds: float = 1.0
    timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class Event:
    """One critical finding event to notify about."""

    event_id: int
    finding_id: int
    change: str
    at: datetime
    rule: str
    integration: str
    severity: str
    facet: str
    place: str
    country: str | None
    message: str

    @property
    def resolved(self) -> bool:
        return self.change in RESOLVED


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one `deliver` call did."""

    sent: int = 0
    rejected: int = 0
    failed: int = 0


def webhook_url(settings: NotifySettings, environ: Mapping[str, str]) -> str:
    """The webhook URL from the environment.

    Raises:
        InvalidInputError: the variable is unset or empty (its name is reported, not a value).
    """
    url = environ.get(settings.webhook_url_env, "").strip()
    if not url:
        raise InvalidInputError(
            [
                Issue(
                    "notify.webhook_url_env",
                    f"environment variable {settings.webhook_url_env} is not set",
                )
            ]
        )
    register_secret(url)  # from now on no log line shows it, a library's debug lines included
    return url


def slack_escape(text: str) -> str:
    """Text for Slack's mrkdwn: `&`, `<` and `>` escaped as Slack asks, so that a name or message
    cannot become a link, a mention (`<!channel>`) or markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(event: Event, form: NotifyFormat) -> dict[str, Any]:
    """The JSON body posted for an event, in the generic or the Slack form."""
    status = "resolved" if event.resolved else "firing"
    if form == "slack":
        mark = "Resolved" if event.resolved else "Critical finding"
        rule, integration = slack_escape(event.rule), slack_escape(event.integration)
        return {
            "text": f"{mark}: {rule} for {integration}",
            "blocks": [
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": f"*{mark}*: `{rule}` for *{integration}*\n"
                        f"{slack_escape(event.message)}",
                    },
                }
            ],
        }
    return {
        "source": "gdpr-auditor",
        "status": status,
        "change": event.change,
        "event_id": event.event_id,
        "finding_id": event.finding_id,
        "rule": event.rule,
        "integration": event.integration,
        "severity": event.severity,
        "facet": event.facet,
        "place": event.place,
        "country": event.country,
        "message": event.message,
        "at": event.at.isoformat(),
    }


def deliver(
    store: StateStore,
    settings: NotifySettings,
    environ: Mapping[str, str],
    clock: Callable[[], datetime],
    retry: Retry = Retry(),
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Post every critical finding event not yet sent, oldest first, and record each one sent.

    A post that still fails after the retries stays pending for the next call; one the receiver
    rejects outright (a 4xx other than 408 and 429) is recorded as rejected and not tried again.

    Raises:
        InvalidInputError: the URL's environment variable is not set.
        StoreError: the state database could not be read or written.
    """
    url = webhook_url(settings, environ)
    try:
        return _deliver(store, settings.format, url, clock, retry, sleep)
    except SQLAlchemyError as exc:
        raise StoreError(f"recording notifications in {store.url}: {type(exc).__name__}") from exc


def _deliver(
    store: StateStore,
    form: NotifyFormat,
    url: str,
    clock: Callable[[], datetime],
    retry: Retry,
    sleep: Callable[[float], None],
) -> Delivery:
    ensure_baseline(store, clock)
    sent = rejected = failed = 0
    with requests.Session() as session:
        for event in pending(store):
            outcome = _post(session, url, payload(event, form), retry, sleep)
            if outcome is None:
                failed += 1
                log.warning("notification_failed", event_id=event.event_id, rule=event.rule)
                break  # keep the order: later events wait for this one
            _record(store, event, SENT if outcome else REJECTED, clock())
            if outcome:
                sent += 1
                log.info(
                    "notification_sent",
                    event_id=event.event_id,
                    change=event.change,
                    rule=event.rule,
                    integration=event.integration,
                )
            else:
                rejected += 1
    return Delivery(sent, rejected, failed)


def prepare(store: StateStore, clock: Callable[[], datetime]) -> None:
    """Record the baseline now if there is none: later events are notified, earlier ones not.

    The daemon calls it at start, so that its first audit's findings are notified too.

    Raises:
        StoreError: the state database could not be read or written.
    """
    try:
        ensure_baseline(store, clock)
    except SQLAlchemyError as exc:
        raise StoreError(f"preparing notifications in {store.url}: {type(exc).__name__}") from exc


def ensure_baseline(store: StateStore, clock: Callable[[], datetime]) -> None:
    """Record the baseline row of the sent-notifications table if it is not there yet."""
    with store.engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(notifications_sent)).scalar_one():
            return
        last = conn.execute(select(func.coalesce(func.max(finding_events.c.id), 0))).scalar_one()
        conn.execute(
            insert(notifications_sent).values(
                event_id=int(last), finding_id=None, status=BASELINE, at=clock()
            )
        )


def pending(store: StateStore) -> list[Event]:
    """Critical finding events after the baseline with no row in `notifications_sent`, in order."""
    with store.engine.connect() as conn:
        baseline = conn.execute(
            select(func.min(notifications_sent.c.event_id)).where(
                notifications_sent.c.status == BASELINE
            )
        ).scalar_one()
        handled = select(notifications_sent.c.event_id)
        rows = conn.execute(
            select(
                finding_events.c.id,
                finding_events.c.change,
                finding_events.c.at,
                findings.c.id.label("finding_id"),
                findings.c.rule,
                findings.c.integration,
                findings.c.severity,
                findings.c.facet,
                findings.c.place,
                findings.c.country,
                findings.c.message,
            )
            .join(findings, findings.c.id == finding_events.c.finding_id)
            .where(
                finding_events.c.id > (baseline or 0),
                finding_events.c.change.in_(FIRING + RESOLVED),
                findings.c.severity == "critical",
                finding_events.c.id.not_in(handled),
            )
            .order_by(finding_events.c.id)
        ).all()
    return list(_events(rows))


def _events(rows: Any) -> Iterator[Event]:
    for row in rows:
        yield record_of(Event, row, event_id=int(row.id), finding_id=int(row.finding_id))


def _record(store: StateStore, event: Event, status: str, at: datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            insert(notifications_sent).values(
                event_id=event.event_id, finding_id=event.finding_id, status=status, at=at
            )
        )


def _post(
    session: requests.Session,
    url: str,
    body: dict[str, Any],
    retry: Retry,
    sleep: Callable[[float], None],
) -> bool | None:
    """True once delivered, False when rejected for good, None when the retries ran out."""
    wait = retry.backoff_seconds
    for attempt in range(1, retry.attempts + 1):
        try:
            response = session.post(url, json=body, timeout=retry.timeout_seconds)
        except requests.RequestException as exc:
            # str(exc) would quote the URL: the class name says enough.
            log.warning("notification_attempt_failed", attempt=attempt, error=type(exc).__name__)
        else:
            status = response.status_code
            response.close()
            if 200 <= status < 300:
                return True
            if 400 <= status < 500 and status not in (408, 429):
                log.error("notification_rejected", status=status)
                return False
            log.warning("notification_attempt_failed", attempt=attempt, status=status)
        if attempt < retry.attempts:
            sleep(wait)
            wait *= 2
    return None
