"""Logging: JSON lines or console output, run_id from contextvars, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from auditor.service.log import configure_logging, get_logger, redact_secrets, redact_text


class FakeTty(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put structlog and the root logger back as they were after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_timestamp_level_event_and_logger() -> None:
    """Off a terminal each event is one JSON object with a UTC ISO timestamp, level and event."""
    stream = io.StringIO()
    configure_logging("info", "auto", stream)

    get_logger("auditor.daemon").info("audit_finished", findings=3)

    [line] = lines(stream)
    assert "audit_finished" == line["event"]
    assert "info" == line["level"]
    assert "auditor.daemon" == line["logger"]
    assert 3 == line["findings"]
    assert line["timestamp"].endswith("Z")
    assert ["timestamp", "level", "event", "logger"] == list(line)[:4]


def test_run_id_bound_through_contextvars_appears_on_every_event() -> None:
    """A run_id bound in contextvars is added to each event logged while it is bound."""
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    log = get_logger("auditor.daemon")

    with structlog.contextvars.bound_contextvars(run_id="run-42"):
        log.info("audit_started")
        logging.getLogger("apscheduler.scheduler").info("Job executed")
    log.info("idle")

    started, scheduler, idle = lines(stream)
    assert "run-42" == started["run_id"]
    assert "run-42" == scheduler["run_id"]
    assert "run_id" not in idle


def test_a_database_password_in_a_url_is_redacted_wherever_it_appears() -> None:
    """`scheme://user:password@host` keeps the user and host and loses the password."""
    stream = io.StringIO()
    configure_logging("info", "json", stream)

    get_logger("auditor.store").warning(
        "store_unreachable",
        url="postgresql+psycopg://auditor:s3cr3t@db.example:5432/audit",
        detail="could not connect to mysql://root:hunter2@127.0.0.1/x, retrying",
        attempts=[{"dsn": "host=db password='pa ss' user=auditor"}],
    )

    [line] = lines(stream)
    assert "postgresql+psycopg://auditor:***@db.example:5432/audit" == line["url"]
    assert "could not connect to mysql://root:***@127.0.0.1/x, retrying" == line["detail"]
    assert [{"dsn": "host=db password=*** user=auditor"}] == line["attempts"]
    assert "s3cr3t" not in stream.getvalue()
    assert "hunter2" not in stream.getvalue()


def test_values_under_secret_keys_are_replaced_whole() -> None:
    """Keys named password, secret, token, authorization (and variants) log as `***`."""
    event = redact_secrets(
        None,
        "info",
        {
            "event": "notify",
            "password": "x",
            "api_token": "abc",
            "Authorization": "Bearer abc",
            "client-secret": "y",
            "headers": {"authorization": "Basic Zm9v"},
            "tokens_used": 3,
            "secretary": "not a secret key",
        },
    )

    assert {
        "event": "notify",
        "password": "***",
        "api_token": "***",
        "Authorization": "***",
        "client-secret": "***",
        "headers": {"authorization": "***"},
        "tokens_used": 3,
        "secretary": "not a secret key",
    } == event


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sqlite:///state.db", "sqlite:///state.db"),
        ("https://user@host/path", "https://user@host/path"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://:only@h/db", "postgresql://:***@h/db"),
        ("a=https://x:y@h?q=1 b=ftp://x:z@h", "a=https://x:***@h?q=1 b=ftp://x:***@h"),
        ("mailto:someone@example.org", "mailto:someone@example.org"),
        ("https://h/?user=a&password=b&x=1", "https://h/?user=a&password=***&x=1"),
    ],
)
def test_redact_text_touches_only_passwords(text: str, expected: str) -> None:
    """URL passwords and `password=` values go; users, hosts and everything else stay."""
    assert expected == redact_text(text)


def test_redaction_does_not_change_the_callers_objects() -> None:
    """Redacting builds new containers: a dict the caller still holds keeps its secret."""
    settings = {"password": "kept"}

    redact_secrets(None, "info", {"event": "x", "settings": settings})

    assert {"password": "kept"} == settings


def test_exceptions_render_as_dict_tracebacks_without_locals_and_redacted() -> None:
    """JSON exceptions are structured, carry no local variables, and their text is redacted."""
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    url = "postgresql://auditor:topsecret@db/audit"

    try:
        raise ConnectionError(f"cannot reach {url}")
    except ConnectionError:
        get_logger("auditor.store").exception("store_failed")

    [line] = lines(stream)
    [exception] = line["exception"]
    assert "ConnectionError" == exception["exc_type"]
    assert "cannot reach postgresql://auditor:***@db/audit" == exception["exc_value"]
    assert all("locals" not in frame for frame in exception["frames"])
    assert "topsecret" not in stream.getvalue()


def test_console_format_on_a_terminal() -> None:
    """On a terminal, auto picks the console renderer: not JSON, event and keys readable."""
    stream = FakeTty()
    configure_logging("info", "auto", stream)

    get_logger("auditor.daemon").info("daemon_started", url="postgresql://u:pw@h/db")

    text = stream.getvalue()
    assert "daemon_started" in text
    assert "postgresql://u:***@h/db" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_json_format_can_be_forced_on_a_terminal() -> None:
    """An explicit json format wins over the terminal check."""
    stream = FakeTty()
    configure_logging("info", "json", stream)

    get_logger("auditor.daemon").info("daemon_started")

    assert "daemon_started" == lines(stream)[0]["event"]


def test_level_filters_structlog_and_standard_library_records() -> None:
    """Events below the configured level are dropped from both sources."""
    stream = io.StringIO()
    configure_logging("warning", "json", stream)

    get_logger("auditor.daemon").info("quiet")
    logging.getLogger("sqlalchemy.engine").info("quiet too")
    get_logger("auditor.daemon").warning("loud")

    assert ["loud"] == [line["event"] for line in lines(stream)]


def test_reconfiguring_replaces_the_handler_and_reaches_existing_loggers() -> None:
    """A second call (a reload) changes the level for loggers already created, with no duplicates."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "json", first)
    log = get_logger("auditor.daemon")
    configure_logging("debug", "json", second)

    log.debug("after_reload")

    assert "" == first.getvalue()
    assert ["after_reload"] == [line["event"] for line in lines(second)]


@pytest.mark.parametrize(("level", "fmt"), [("loud", "json"), ("info", "xml")])
def test_unknown_level_or_format_is_refused(level: str, fmt: str) -> None:
    """A level or format outside the documented choices raises ValueError."""
    with pytest.raises(ValueError, match="unknown log"):
        configure_logging(level, fmt, io.StringIO())
