"""Structured logging: JSON lines for the journal, a console renderer on a terminal, secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Mapping
from typing import Any, TextIO
from urllib.parse import urlsplit

import structlog
from structlog.processors import ExceptionRenderer
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

REDACTED = "***"

# Keys whose values are secrets whatever they look like; `-` counts as `_`.
_SECRET_KEY = re.compile(
    r"(?:^|_)(?:password|passwd|pwd|secret|token|authorization|api_?key|cookie|credentials?)(?:$|_)",
    re.IGNORECASE,
)
# `scheme://user:password@host`: the authority runs to the first `/`, `?`, `#` or blank, and the
# greedy match backtracks to its last `@`, so a password containing `@` is redacted whole.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s]*)@")
# libpq key/value strings and query strings: `password=secret`.
_PASSWORD_PAIR = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd)\s*=\s*)(?P<value>'[^']*'|\"[^\"]*\"|[^\s&;,]+)",
    re.IGNORECASE,
)

# Secret values known at run time (a webhook URL and its path, which carries the token): redacted
# wherever they appear, in structlog events and in every library's records (urllib3 logs the
# request line at debug). Kept longest first, so that a URL goes before its own path.
_SECRETS: tuple[str, ...] = ()
_SECRETS_LOCK = threading.Lock()
MIN_SECRET_CHARS = 8
"""Shorter values are not registered: redacting them would garble ordinary text."""

_FIRST_KEYS = ("timestamp", "level", "event", "logger")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS |= {"error": logging.ERROR, "critical": logging.CRITICAL}


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO = sys.stderr) -> None:
    """Send structlog events, and records of the standard library's `logging`, to `stream`.

    `fmt` is "json", "console", or "auto": console when `stream` is a terminal, JSON lines
    otherwise (under systemd the journal). Calling it again replaces the previous set-up, so a
    reload can change the level.

    Raises:
        ValueError: an unknown level or format.
    """
    if level.lower() not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(_LEVELS)}")
    if fmt not in {"auto", "json", "console"}:
        raise ValueError(f"unknown log format {fmt!r}; expected auto, json or console")
    number = _LEVELS[level.lower()]
    console = fmt == "console" or (fmt == "auto" and _isatty(stream))
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Locals stay out of tracebacks: they may hold connection URLs or personal data.
        structlog.processors.format_exc_info
        if console
        else ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
        redact_secrets,
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=_isatty(stream))
        if console
        else structlog.processors.JSONRenderer()
    )
    rendering = [structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]
    if not console:
        rendering.insert(1, _leading_keys)
    # structlog events travel as standard-library records, so one handler renders both them and
    # the records of libraries that log through `logging` (APScheduler, SQLAlchemy).
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Not cached: a reload that reconfigures must reach loggers already handed out.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=rendering,
    )
    handler = _StructlogHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(_redact_record)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StructlogHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)


def get_logger(name: str) -> FilteringBoundLogger:
    """Return a structlog logger whose events carry `name` in the `logger` key."""
    logger: FilteringBoundLogger = structlog.get_logger(name)
    return logger


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Replace secrets in an event: values under secret-named keys, passwords inside strings."""
    return {key: _redact_item(key, value) for key, value in event_dict.items()}


def register_secret(value: str) -> None:
    """Redact `value` from every log line from now on; for a URL, its path and query too (a
    webhook's token is in its path, and HTTP libraries log the request line without the host)."""
    parts = {value.strip()}
    if "://" in value:
        url = urlsplit(value.strip())
        parts.add(url.path + (f"?{url.query}" if url.query else ""))
        parts.add(url.path)
    global _SECRETS
    with _SECRETS_LOCK:
        known = set(_SECRETS) | {p for p in parts if len(p) >= MIN_SECRET_CHARS}
        _SECRETS = tuple(sorted(known, key=len, reverse=True))


def redact_text(text: str) -> str:
    """Return `text` with registered secrets, URL passwords and `password=` values replaced by
    `***`."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _URL_USERINFO.sub(_without_password, text)
    return _PASSWORD_PAIR.sub(lambda m: f"{m['key']}{REDACTED}", text)


def _redact_record(record: logging.LogRecord) -> bool:
    """The root handler's filter: a library's record (not structlog's, which the processors
    redact) has its message redacted before any formatter sees it; never drops a record."""
    if isinstance(record.msg, dict):
        return True
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        return True  # a malformed record: the formatter reports it as logging does
    redacted = redact_text(message)
    if redacted != message:
        record.msg, record.args = redacted, None
    return True


def _redact_item(key: object, value: object) -> Any:
    if isinstance(key, str) and value is not None and _SECRET_KEY.search(key.replace("-", "_")):
        return REDACTED
    return _redact_value(value)


def _redact_value(value: object) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {key: _redact_item(key, item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(item) for item in value]
    return value


def _leading_keys(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Put when, how bad and what first, so a JSON line reads well in `journalctl`."""
    ordered = {key: event_dict[key] for key in _FIRST_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _without_password(match: re.Match[str]) -> str:
    user, colon, _ = match["userinfo"].partition(":")
    if not colon:
        return match[0]  # no password: `https://user@host` names only a user
    return f"{match['scheme']}{user}:{REDACTED}@"


class _StructlogHandler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs, told apart so a reconfiguration replaces it."""


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False
