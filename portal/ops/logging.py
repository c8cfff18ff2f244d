"""Logging: the API key kept out of every line, a request id on every line, JSON on demand.

`RequestIdMiddleware` gives each request an id (a sane incoming X-Request-ID, or a new one)
and returns it in the X-Request-ID header. `RequestContextFilter` puts that id, the signed-in
user, and `object` / `vendor_method` (from `extra=` or from `log_context()`) on each record;
`JsonFormatter` writes a record as one JSON line.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty

REDACTED = "[redacted]"
REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and . _ : - only, so an id pasted from elsewhere cannot forge log fields.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")

_request: ContextVar[HttpRequest | None] = ContextVar("log_request", default=None)
_request_id: ContextVar[str | None] = ContextVar("log_request_id", default=None)
_fields: ContextVar[dict[str, str]] = ContextVar("log_fields", default={})  # noqa: B039

CONTEXT_FIELDS = ("object", "vendor_method")
# What the request log line adds (LOG_REQUESTS).
REQUEST_FIELDS = ("method", "path", "status", "duration_ms")
request_logger = logging.getLogger("portal.request")


def _redact(text: str) -> str:
    key = getattr(settings, "ONEOFFICE_API_KEY", "")
    if key and len(key) >= 8 and key in text:
        return text.replace(key, REDACTED)
    return text


class RedactSecretsFilter(logging.Filter):
    """Replace the API key wherever it appears in a record's message or arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


class NoClientErrorTracebackFilter(logging.Filter):
    """A 403 or 404 is the user's answer, not a fault: log its line, not its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and 400 <= getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Every line logged inside carries these fields (`object`, `vendor_method`)."""
    token = _fields.set({**_fields.get(), **{k: str(v) for k, v in fields.items()}})
    try:
        yield
    finally:
        _fields.reset(token)


def _username(request: HttpRequest | None) -> str | None:
    user = getattr(request, "user", None)
    # Never load the user for a log line: only one the request has already loaded.
    if user is None or getattr(user, "_wrapped", None) is empty:
        return None
    return user.get_username() if user.is_authenticated else None


class RequestContextFilter(logging.Filter):
    """Adds request_id, user, object and vendor_method to every record (None where unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # django.request logs some responses after the middleware has returned, with the
        # request attached to the record.
        request = getattr(record, "request", None) or _request.get()
        record.request_id = getattr(request, "request_id", None) or _request_id.get()
        if getattr(record, "user", None) is None:
            record.user = _username(request)
        fields = _fields.get()
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, fields.get(name))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp (UTC), level, logger, message, request_id, user,
    and object / vendor_method / exception where there are any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "user": getattr(record, "user", None),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = str(value)
        for name in REQUEST_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Exceptions and their tracebacks are not filtered message by message: the whole line is.
        return _redact(json.dumps(entry, default=str, ensure_ascii=False))


class RequestIdMiddleware:
    """Names each request: a sane incoming X-Request-ID is kept, otherwise a new one is made.
    Log lines written while it runs carry the id and the user; the response returns the id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]  # read by views and logs
        id_token = _request_id.set(request_id)
        request_token = _request.set(request)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            if settings.LOG_REQUESTS:
                # The path only: a query string may carry what does not belong in logs.
                request_logger.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round((time.monotonic() - started) * 1000),
                    },
                )
        finally:
            _request.reset(request_token)
            _request_id.reset(id_token)
        response[REQUEST_ID_HEADER] = request_id
        return response
