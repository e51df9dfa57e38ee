"""Direct webhook notifications: new and resolved critical findings posted once, with retries.

A real HTTP receiver on loopback, a real state store (SQLite, and PostgreSQL when configured) and,
at the end, the daemon as a process.
"""

from __future__ import annotations

import io
import json
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from structlog.testing import capture_logs

from auditor.config import NotifySettings, load_config
from auditor.core.errors import InvalidInputError
from auditor.service.log import configure_logging
from auditor.service.notify import Delivery, Retry, deliver
from auditor.store import StateStore
from tests.helpers import free_port
from tests.service.test_daemon import (  # noqa: F401 (the daemon test fixtures)
    FIXED,
    DaemonProcess,
    Workdir,
    _dns,
    _spawn,
    _workdir,
)
from tests.store.test_store import DAY, T0, audit, no_dpa, record, unsafe

SECRET = "T0KEN-s3cr3t"
FAST = Retry(attempts=3, backoff_seconds=0.5, timeout_seconds=5)


class Hook:
    """A webhook receiver answering with scripted status codes (then 200), keeping every body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answers to come, first first; 200 once empty
        self.requests = 0
        self._changed = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hook._changed:
                    hook.requests += 1
                    status = hook.statuses.pop(0) if hook.statuses else 200
                    if status == 200:
                        hook.bodies.append(body)
                    hook._changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{SECRET}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.bodies) >= count, timeout):
                pytest.fail(f"{len(self.bodies)} notifications, not {count}: {self.bodies}")
            return list(self.bodies)


@pytest.fixture(name="hook")
def _hook() -> Iterator[Hook]:
    hook = Hook()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


GENERIC = NotifySettings("AUDITOR_HOOK")


def _no_wait(seconds: float) -> None:
    """Stands in for time.sleep between retries: the tests need not wait."""


def send(
    store: StateStore,
    hook: Hook,
    settings: NotifySettings = GENERIC,
    sleeps: list[float] | None = None,
) -> Delivery:
    waits = [] if sleeps is None else sleeps
    return deliver(store, settings, {"AUDITOR_HOOK": hook.url}, lambda: T0, FAST, waits.append)


def test_new_critical_findings_are_posted_once_then_their_resolution(
    store: StateStore, hook: Hook
) -> None:
    """Each new critical finding is posted as firing once; when resolved, it is posted resolved."""
    assert send(store, hook) == Delivery()  # enabled on an empty history
    record(store, audit(T0, [unsafe("crm"), no_dpa("mail")]))

    assert send(store, hook) == Delivery(sent=2)
    assert send(store, hook) == Delivery()
    record(store, audit(T0 + DAY, [no_dpa("mail")]))
    assert send(store, hook) == Delivery(sent=1)

    first, second, resolved = hook.bodies
    assert {(b["rule"], b["integration"]) for b in (first, second)} == {
        ("transfer-unsafeguarded", "crm"),
        ("contract-dpa-missing", "mail"),
    }
    assert first["status"] == second["status"] == "firing" and first["change"] == "new"
    assert first["severity"] == "critical" and first["source"] == "gdpr-auditor"
    assert resolved["status"] == "resolved"
    assert (resolved["rule"], resolved["integration"]) == ("transfer-unsafeguarded", "crm")
    assert resolved["finding_id"] in {first["finding_id"], second["finding_id"]}


def test_history_from_before_notifications_were_enabled_is_not_sent(
    store: StateStore, hook: Hook
) -> None:
    """Findings recorded before the first delivery are history: nothing is posted for them."""
    record(store, audit(T0, [unsafe("crm")]))
    assert send(store, hook) == Delivery()
    record(store, audit(T0 + DAY, [unsafe("crm"), unsafe("shop")]))
    assert send(store, hook) == Delivery(sent=1)
    assert hook.bodies[0]["integration"] == "shop"


def test_a_reopened_store_sends_nothing_twice(state_url: str, hook: Hook) -> None:
    """What was sent is in the store: a restart (a new connection) does not post it again."""
    store = StateStore.open(state_url)
    send(store, hook)
    record(store, audit(T0, [unsafe("crm")]))
    assert send(store, hook) == Delivery(sent=1)
    store.close()

    again = StateStore.open(state_url)
    try:
        assert send(again, hook) == Delivery()
    finally:
        again.close()
    assert hook.requests == 1


def test_server_errors_are_retried_with_doubling_waits(store: StateStore, hook: Hook) -> None:
    """503, 503, then 200: delivered once, after waits of 0.5 s and 1 s."""
    send(store, hook)
    record(store, audit(T0, [unsafe("crm")]))
    hook.statuses = [503, 503]
    sleeps: list[float] = []

    assert send(store, hook, sleeps=sleeps) == Delivery(sent=1)
    assert sleeps == [0.5, 1.0]
    assert hook.requests == 3 and len(hook.bodies) == 1


def test_an_event_still_failing_after_the_retries_waits_for_the_next_delivery(
    store: StateStore, hook: Hook
) -> None:
    """Retries exhausted: nothing is recorded, and the next delivery posts the event."""
    send(store, hook)
    record(store, audit(T0, [unsafe("crm")]))
    hook.statuses = [500, 500, 500]

    assert send(store, hook) == Delivery(failed=1)
    assert send(store, hook) == Delivery(sent=1)
    assert len(hook.bodies) == 1


def test_a_rejected_post_is_not_retried(store: StateStore, hook: Hook) -> None:
    """A 400 means the receiver will never take it: one request, recorded, not sent again."""
    send(store, hook)
    record(store, audit(T0, [unsafe("crm")]))
    hook.statuses = [400]

    assert send(store, hook) == Delivery(rejected=1)
    assert send(store, hook) == Delivery()
    assert hook.requests == 1


def test_the_slack_form_is_a_text_message(store: StateStore, hook: Hook) -> None:
    """format: slack posts Slack's incoming-webhook body, naming the rule and the integration."""
    slack = NotifySettings("AUDITOR_HOOK", "slack")
    send(store, hook, slack)
    record(store, audit(T0, [unsafe("crm")]))
    send(store, hook, slack)

    [body] = hook.bodies
    assert set(body) == {"text", "blocks"}
    assert "transfer-unsafeguarded" in body["text"] and "crm" in body["text"]


def test_the_url_is_never_logged(store: StateStore) -> None:
    """A receiver that cannot be reached: the logs name the error class, never the secret URL."""
    record(store, audit(T0, [unsafe("crm")]))
    deliver(store, GENERIC, {"AUDITOR_HOOK": "http://127.0.0.1:1/x"}, lambda: T0, FAST, _no_wait)
    record(store, audit(T0 + DAY, [unsafe("crm"), unsafe("shop")]))
    closed = f"http://127.0.0.1:{free_port()}/hooks/{SECRET}"

    with capture_logs() as logs:
        delivery = deliver(store, GENERIC, {"AUDITOR_HOOK": closed}, lambda: T0, FAST, _no_wait)

    assert delivery == Delivery(failed=1)
    assert logs and all(SECRET not in repr(entry) for entry in logs)
    assert any(entry.get("error") == "ConnectionError" for entry in logs)


def test_an_unset_url_variable_is_an_input_error(store: StateStore) -> None:
    """Without the environment variable nothing is sent; the error names the variable."""
    with pytest.raises(InvalidInputError, match="AUDITOR_HOOK"):
        deliver(store, GENERIC, {}, lambda: T0, FAST, _no_wait)


def test_the_configuration_names_the_variable_and_the_form(tmp_path: Path) -> None:
    """`notify:` takes webhook_url_env and format; a URL where the name belongs is refused."""
    path = tmp_path / "auditor.yaml"
    path.write_text(
        yaml.safe_dump(
            {"inventory": ["i.yaml"], "notify": {"webhook_url_env": "HOOK", "format": "slack"}}
        )
    )
    assert load_config(path).notify == NotifySettings("HOOK", "slack")

    path.write_text(
        yaml.safe_dump({"inventory": ["i.yaml"], "notify": {"webhook_url_env": "https://x/y"}})
    )
    with pytest.raises(InvalidInputError, match="webhook_url_env"):
        load_config(path)


@pytest.mark.slow
def test_the_daemon_posts_a_finding_and_its_resolution_once_across_a_restart(
    workdir: Workdir, spawn: Callable[..., DaemonProcess], hook: Hook
) -> None:
    """The daemon posts the unlawful transfer, then its resolution after the fix; a restart
    posts nothing again, and the URL is not in its log."""
    config = yaml.safe_load(workdir.config.read_text())
    config["notify"] = {"webhook_url_env": "AUDITOR_HOOK"}
    workdir.config.write_text(yaml.safe_dump(config))
    env = {"AUDITOR_HOOK": hook.url}
    first = spawn(workdir.config, env)

    first.wait_for("audit_finished", nth=2)  # the first audit's posts are done by then
    firing = hook.wait_for(1)
    assert {b["status"] for b in firing} == {"firing"}
    assert ("transfer-unsafeguarded", "shop") in {(b["rule"], b["integration"]) for b in firing}
    workdir.write_inventory([FIXED])
    first.send(signal.SIGHUP)
    resolved = hook.wait_for(2 * len(firing))[len(firing) :]
    assert {b["status"] for b in resolved} == {"resolved"}
    assert sorted(b["finding_id"] for b in resolved) == sorted(b["finding_id"] for b in firing)
    first.send(signal.SIGTERM)
    assert first.exit_status(timeout=10) == 0

    second = spawn(workdir.config, env)
    second.wait_for("audit_finished")
    second.wait_for("audit_finished", nth=2)
    second.send(signal.SIGTERM)
    assert second.exit_status(timeout=10) == 0
    assert len(hook.bodies) == 2 * len(firing)
    assert SECRET not in first.log_text() + second.log_text()


@pytest.mark.slow
def test_a_daemon_logging_at_debug_never_logs_the_secret_url(
    workdir: Workdir, spawn: Callable[..., DaemonProcess], hook: Hook
) -> None:
    """A real daemon at log level debug posting to a real receiver: the libraries' debug lines
    (urllib3's connection pool) are in its log, the webhook's path and token are not."""
    config = yaml.safe_load(workdir.config.read_text())
    config["notify"] = {"webhook_url_env": "AUDITOR_HOOK"}
    config["log"] = {"level": "debug", "format": "json"}
    workdir.config.write_text(yaml.safe_dump(config))
    daemon = spawn(workdir.config, {"AUDITOR_HOOK": hook.url})

    daemon.wait_for("audit_finished", nth=2)
    hook.wait_for(1)
    daemon.send(signal.SIGTERM)
    assert daemon.exit_status(timeout=10) == 0

    log = daemon.log_text()
    assert "urllib3.connectionpool" in log, log[-2000:]
    assert SECRET not in log
    assert "/hooks/" not in log


def test_the_secret_url_never_reaches_any_log_at_debug_level(
    store: StateStore, hook: Hook, capfd: pytest.CaptureFixture[str]
) -> None:
    """Debug logging, a real receiver: urllib3's connection-pool lines are there, the webhook's
    path and token are not, in structlog's lines or the libraries' (redacted at the handler)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        configure_logging("debug", "json", stream=stream)
        send(store, hook)
        record(store, audit(T0, [unsafe("crm")]))
        send(store, hook)
        logging.getLogger("urllib3.connectionpool").debug("again: %s", hook.url)
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)

    hook.wait_for(1)
    output = stream.getvalue() + "".join(capfd.readouterr())
    pool = [line for line in output.splitlines() if "urllib3.connectionpool" in line]
    assert any("POST" in line for line in pool), output
    assert SECRET not in output
    assert "/hooks/" not in output


def test_slack_payloads_escape_angle_brackets_and_ampersands() -> None:
    """A message naming `<!channel>` or a `<url|link>` reaches Slack as text, not as markup."""
    from datetime import UTC, datetime

    from auditor.service.notify import Event, payload

    event = Event(
        event_id=1, finding_id=1, change="new", at=datetime(2026, 1, 1, tzinfo=UTC),
        rule="transfer-unsafeguarded", integration="crm", severity="critical", facet="hosting",
        place="US", country="US", message="hosted <!channel> at <https://x.example|here> & more",
    )  # fmt: skip

    body = payload(event, "slack")

    text = body["blocks"][0]["text"]["text"]
    assert "&lt;!channel&gt;" in text
    assert "&lt;https://x.example|here&gt; &amp; more" in text
    assert "<" not in json.dumps(body).replace("\\u003c", "")
