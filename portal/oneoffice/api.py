"""HTTP client for the OneOffice Enterprise API.

It knows the vendor's wire format and HTTP, nothing about our models: every call is a GET to
one URL with a JSON body `{"method", "params"}` and an `x-api-key` header. Each failure is
raised as one of four classes, which decide what the portal may do next:

- `VendorRefusedError`: OneOffice answered "no" (4xx); nothing happened there. Carries its words.
- `VendorConfigError`: our settings are wrong (bad key, bad URL, a redirect); nothing happened.
- `VendorNotSentError`: the request never left (connection refused, DNS); safe to send again.
- `VendorNotNowError`: OneOffice said "not now" (429, 408); nothing was applied; try again after
  `retry_after`.
- `VendorOutcomeUnknownError`: it may or may not have been applied (timeout after sending,
  reset, 5xx, an unreadable success body). Only a retry with the same ids can settle it.

An error is `abandoned` when the portal stopped waiting while OneOffice may still be working on
the call: our timeout, a dropped connection, or a gateway's timeout (504).
"""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError

BODY_CAP = 10_000
REDACTED = "[redacted]"
MESSAGE_CAP = 500
_BAD_URL = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
)
_MESSAGE_KEYS = ("message", "error", "detail", "msg", "errors", "description")


class VendorError(Exception):
    """Base of every failure of a call; `status` and `body` are what came back, if anything."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str = "",
        duration_ms: int = 0,
        retry_after: datetime | None = None,
        abandoned: bool = False,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.duration_ms = duration_ms
        # When the vendor asked us to try again (its Retry-After header), if it did.
        self.retry_after = retry_after
        # The vendor may still be working on the call: nobody waits for its answer any more.
        self.abandoned = abandoned


class VendorRefusedError(VendorError):
    """OneOffice refused the call; `message` is its own words."""


class VendorConfigError(VendorError):
    """The portal's OneOffice settings are wrong; retrying will not help."""


class VendorNotSentError(VendorError):
    """The request never reached OneOffice; sending it again is safe."""


class VendorNotNowError(VendorError):
    """OneOffice asked to be called again later (429, 408); the call was not applied."""


class VendorOutcomeUnknownError(VendorError):
    """The request may have been applied; only a retry with the same ids can tell."""


class Method(StrEnum):
    """OneOffice's methods, by the name each is called with: the call log records them, and
    what an answer means is looked up by them."""

    CREATE_CUSTOMER = "createCustomer"
    CREATE_FIRST_ORDER = "createFirstOrder"
    CREATE_RENEWAL_ORDER = "createRenewalOrder"
    CANCEL_ORDER = "cancelOrder"
    SUSPEND_ORDER = "suspendOrder"


@dataclass(frozen=True)
class Request:
    """One call, built before it is sent so the caller can record exactly what goes out."""

    method: Method
    params: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    data: Any
    duration_ms: int


@dataclass(frozen=True)
class RemoteCustomer:
    """What `createCustomer` returns, in both documented shapes (integer or string ids)."""

    vendor_id: str
    partner: str
    created_at: datetime | None
    is_active: bool | None
    onboarding_url: str


def create_customer(
    *, customer_id: str, name: str, email: str, phone: str, display_name: str
) -> Request:
    return Request(
        Method.CREATE_CUSTOMER,
        {
            "id": customer_id,
            "name": name,
            "admin": {"email": email, "phone": phone, "displayName": display_name},
        },
    )


def create_first_order(
    *, customer_id: str, order_id: str, product: str, licenses: int, duration: str
) -> Request:
    return Request(
        Method.CREATE_FIRST_ORDER,
        {
            "customer": customer_id,
            "id": order_id,
            "product": product,
            "licenses": licenses,
            "duration": duration,
        },
    )


def create_renewal_order(*, parent_id: str, order_id: str) -> Request:
    return Request(Method.CREATE_RENEWAL_ORDER, {"parent": parent_id, "id": order_id})


def cancel_order(*, order_id: str) -> Request:
    return Request(Method.CANCEL_ORDER, {"id": order_id})


def suspend_order(*, order_id: str) -> Request:
    return Request(Method.SUSPEND_ORDER, {"id": order_id})


class OneOfficeClient:
    """Sends `Request`s to OneOffice over one pooled session."""

    def __init__(
        self, *, url: str, api_key: str, connect_timeout: float = 5.0, read_timeout: float = 30.0
    ):
        if not url:
            raise VendorConfigError("ONEOFFICE_URL is not set.")
        if not api_key:
            raise VendorConfigError("ONEOFFICE_API_KEY is not set.")
        self.url = url
        self.timeout = (connect_timeout, read_timeout)
        self._api_key = api_key
        self.session = requests.Session()
        # Requests would otherwise pick up proxies and .netrc credentials from the environment.
        self.session.trust_env = False
        self.session.headers.update(
            {"x-api-key": api_key, "Content-Type": "application/json", "Accept": "application/json"}
        )

    def send(self, request: Request) -> Reply:
        """Send one call; return the reply to a 2xx or raise a `VendorError` subclass."""
        payload = json.dumps({"method": request.method, "params": request.params})
        started = time.monotonic()
        try:
            response = self.session.request(
                "GET",
                self.url,
                data=payload.encode(),
                timeout=self.timeout,
                allow_redirects=False,
            )
            body = response.text
        except requests.RequestException as exc:
            raise _transport_error(exc, _elapsed_ms(started)) from None
        if len(self._api_key) >= 8:
            # A vendor may quote a rejected key back; bodies go to the call log, messages and logs.
            body = body.replace(self._api_key, REDACTED)
        return _read_reply(response.status_code, response.headers, body, _elapsed_ms(started))

    def close(self) -> None:
        self.session.close()


def read_customer(data: Any) -> RemoteCustomer:
    """Read a `createCustomer` reply; unexpected shapes give blanks, not errors."""
    data = data if isinstance(data, dict) else {}
    return RemoteCustomer(
        vendor_id=_text(data.get("id")),
        partner=_text(data.get("partner")),
        created_at=_timestamp(data.get("createdAt")),
        is_active=data["isActive"] if isinstance(data.get("isActive"), bool) else None,
        onboarding_url=_text(data.get("url")),
    )


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _transport_error(exc: requests.RequestException, duration_ms: int) -> VendorError:
    if isinstance(exc, requests.ConnectTimeout):
        return VendorNotSentError(
            "OneOffice did not accept the connection in time.", duration_ms=duration_ms
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return VendorConfigError(
            f"The TLS handshake with OneOffice failed: {exc}", duration_ms=duration_ms
        )
    if isinstance(exc, _BAD_URL):
        return VendorConfigError(f"ONEOFFICE_URL is not usable: {exc}", duration_ms=duration_ms)
    if isinstance(exc, requests.ConnectionError) and _never_connected(exc):
        return VendorNotSentError(
            "OneOffice could not be reached; nothing was sent.", duration_ms=duration_ms
        )
    if isinstance(exc, requests.ReadTimeout):
        return VendorOutcomeUnknownError(
            "OneOffice did not answer in time; the call may have been applied.",
            duration_ms=duration_ms,
            abandoned=True,
        )
    return VendorOutcomeUnknownError(
        f"The connection to OneOffice broke ({type(exc).__name__}); "
        "the call may have been applied.",
        duration_ms=duration_ms,
        abandoned=True,
    )


def _never_connected(exc: requests.ConnectionError) -> bool:
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, NewConnectionError)


def _read_reply(status: int, headers: Any, body: str, duration_ms: int) -> Reply:
    capped = body[:BODY_CAP]
    if 200 <= status < 300:
        readable, data = _parse_success(headers.get("Content-Type", ""), body)
        if not readable:
            raise VendorOutcomeUnknownError(
                "OneOffice answered with a body that cannot be read; "
                "the call may have been applied.",
                status=status,
                body=capped,
                duration_ms=duration_ms,
            )
        return Reply(status=status, body=capped, data=data, duration_ms=duration_ms)
    if 300 <= status < 400:
        target = urlsplit(headers.get("Location", "")).netloc or "another address"
        raise VendorConfigError(
            f"OneOffice redirected the call to {target}; it was not followed. Check ONEOFFICE_URL.",
            status=status,
            body=capped,
            duration_ms=duration_ms,
        )
    message = error_message(body) or f"HTTP {status}"
    if status in (401, 403):
        raise VendorConfigError(
            f"OneOffice refused the API key (HTTP {status}: {message}). Check ONEOFFICE_API_KEY.",
            status=status,
            body=capped,
            duration_ms=duration_ms,
        )
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if status in (408, 429):
        raise VendorNotNowError(
            f"OneOffice asked to try again later (HTTP {status}: {message}); nothing was applied.",
            status=status,
            body=capped,
            duration_ms=duration_ms,
            retry_after=retry_after,
        )
    if 400 <= status < 500:
        raise VendorRefusedError(message, status=status, body=capped, duration_ms=duration_ms)
    raise VendorOutcomeUnknownError(
        f"OneOffice failed with HTTP {status} ({message}); the call may have been applied.",
        status=status,
        body=capped,
        duration_ms=duration_ms,
        retry_after=retry_after,
        # A gateway in front of OneOffice stopped waiting for it, as our own timeout would.
        abandoned=status == 504,
    )


# A Retry-After further away than this is read as this: a retry is never put off for weeks.
RETRY_AFTER_CAP = timedelta(days=1)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """The moment a Retry-After header names: delay seconds or an HTTP date; None if unreadable."""
    if not value or not value.strip():
        return None
    now = now or datetime.now(UTC)
    value = value.strip()
    if value.isascii() and value.isdigit():
        return now + min(timedelta(seconds=int(value[:9])), RETRY_AFTER_CAP)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(when, now), now + RETRY_AFTER_CAP)


def _parse_success(content_type: str, body: str) -> tuple[bool, Any]:
    """(readable, data): empty, JSON of any kind, or plain text; an HTML page is not a reply."""
    if not body.strip():
        return True, None
    try:
        return True, json.loads(body)
    except ValueError:
        pass
    media = content_type.split(";")[0].strip().lower()
    if media == "text/plain":
        return True, body.strip()
    return False, None


def error_message(body: str) -> str:
    """The vendor's words from an error body: a JSON string, a JSON object, or text/HTML."""
    try:
        data = json.loads(body)
    except ValueError:
        return _plain_text(body)
    return _message_from(data)[:MESSAGE_CAP]


def _message_from(data: Any) -> str:
    if isinstance(data, str):
        return data.strip()
    if isinstance(data, dict):
        for key in _MESSAGE_KEYS:
            if key in data and data[key] not in (None, "", [], {}):
                return _message_from(data[key])
        return json.dumps(data, sort_keys=True)
    if isinstance(data, list):
        return "; ".join(filter(None, (_message_from(item) for item in data)))
    return "" if data is None else json.dumps(data)


def _plain_text(body: str) -> str:
    body = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", body)
    title = re.search(r"(?is)<title>(.*?)</title>", body)
    text = title.group(1) if title else re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()[:MESSAGE_CAP]


def _text(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return ""
    return str(value)


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
