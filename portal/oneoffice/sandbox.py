"""A fake OneOffice Enterprise vendor for `make run` and the test suite. Standard library only.

It speaks the vendor's wire format (HTTP GET with a JSON body `{"method", "params"}` and an
`x-api-key` header), applies the vendor's business rules to customers and orders held in memory
(and in a JSON file when `state_path` is given), and can be told to misbehave with `inject()`.
"""

from __future__ import annotations

import calendar
import contextlib
import functools
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

FAULTS = (
    "500-before",
    "500-after",
    "hang-after",
    "drop-before",
    "drop-after",
    "html-502",
    "garbage-200",
    "slow",
    "redirect",
    "429",
    "408",
    "503-retry-after",
    "respond",
)
PRODUCTS = ("oo-lite", "oo-std", "oo-ent", "erp-std", "erp-admin", "erp-lim")
DURATIONS = ("monthly", "yearly")

logger = logging.getLogger("portal.oneoffice.sandbox")

_JSON = "application/json"

# Faults that let the call change state before they misbehave ("respond" decides per injection).
_APPLYING_FAULTS = {
    "500-after",
    "hang-after",
    "drop-after",
    "garbage-200",
    "slow",
    "503-retry-after",
}
_RESPOND_OPTIONS = {"status", "body", "content_type", "apply"}
# "Not now" answers with a Retry-After header (option `retry_after`, default "1"); the 503 one
# is sent after the call was applied, as a vendor failing half-way would.
_NOT_NOW_FAULTS = {"429": 429, "408": 408, "503-retry-after": 503}
_BAD_GATEWAY = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)


class _Refused(Exception):
    """A vendor refusal: status 400 with the message as a bare JSON string."""


def _add_term(start: date, duration: str) -> date:
    """One calendar month or year after `start`, clamped to the end of the target month."""
    years, month0 = divmod(start.month - 1 + (1 if duration == "monthly" else 12), 12)
    year, month = start.year + years, month0 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def _text(params: dict, name: str, label: str | None = None) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise _Refused(f'missing parameter "{label or name}"')
    return value


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64  # the default 5 drops bursts of parallel calls for a second
    sandbox: Sandbox

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("sandbox: unexpected error while handling a request")


class Sandbox:
    """The fake vendor: construct (binds the port), then `start()` or `serve_forever()`."""

    hang_seconds: float = 3.0
    slow_seconds: float = 0.3
    order_body: object = True
    # Every answer takes at least this long, as a distant vendor's would (benchmarks).
    latency: float = 0.0

    def __init__(
        self,
        *,
        api_key: str,
        state_path: str | os.PathLike | None = None,
        renewal_window_days: int = 15,
        tz: str = "UTC",
        host: str = "127.0.0.1",
        port: int = 0,
        response_style: str = "old",
    ) -> None:
        if response_style not in ("old", "new"):
            raise ValueError(f"response_style must be 'old' or 'new', not {response_style!r}")
        self.api_key = api_key
        self.renewal_window_days = renewal_window_days
        self.tz = ZoneInfo(tz)
        self.response_style = response_style
        self.requests: list[dict] = []
        # Requests being worked on now, those whose client stopped waiting included, and the
        # most there ever were at once.
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._faults: list[dict] = []
        self._state_path = Path(state_path) if state_path is not None else None
        self._state = self._load()
        self._rpc: dict[str, Callable[[dict, date], object]] = {
            "createCustomer": self._create_customer,
            "createFirstOrder": self._create_first_order,
            "createRenewalOrder": self._create_renewal_order,
            "cancelOrder": self._cancel_order,
            "suspendOrder": self._suspend_order,
        }
        self._server: _Server | None = self._bind(host, port)
        bound_host, bound_port = self._server.server_address[:2]
        # An AF_INET server's address is (host, port); typeshed allows bytes for AF_UNIX.
        self._address: tuple[str, int] = (str(bound_host), int(bound_port))
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._address[1]

    @property
    def url(self) -> str:
        host = self._address[0]
        return f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{self.port}/"

    def _bind(self, host: str, port: int) -> _Server:
        server = _Server((host, port), _Handler)
        server.sandbox = self
        return server

    def start(self) -> Sandbox:
        """Serve in a daemon thread."""
        if self._server is not None and self._thread is None:
            # A short poll interval keeps stop() and refuse_connections() quick.
            serve = functools.partial(self._server.serve_forever, poll_interval=0.05)
            self._thread = threading.Thread(target=serve, name="oneoffice-sandbox", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve until `stop()` (or Ctrl-C in the caller)."""
        self.start()
        try:
            while not self._stopped.wait(0.1):  # a timed wait lets Ctrl-C through
                pass
        finally:
            self.stop()

    def stop(self) -> None:
        self._stopped.set()
        self._close_server()

    def refuse_connections(self) -> None:
        """Close the listening socket, so clients get ECONNREFUSED."""
        self._close_server()

    def accept_connections(self) -> None:
        """Listen on the same port again and keep serving (a stopped sandbox stays stopped)."""
        if self._server is None and not self._stopped.is_set():
            self._server = self._bind(*self._address)
            self.start()

    def _close_server(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        if thread is not None:
            server.shutdown()
        # Handler threads are daemons, so this does not wait for a hanging response.
        server.server_close()

    # -- state and faults -----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget all customers, orders, faults and logged requests; persist the empty state."""
        with self._lock:
            self._state = {"customers": {}, "orders": {}}
            self._faults.clear()
            self.requests.clear()
            self.max_in_flight = self.in_flight
            self._save()

    def snapshot(self) -> dict:
        """A deep copy of {"customers": {...}, "orders": {...}}, keyed by our ids."""
        with self._lock:
            return json.loads(json.dumps(self._state))

    def inject(self, method: str, fault: str, *, times: int = 1, **options: Any) -> None:
        """Make the next `times` requests for rpc `method` ("*" = any) misbehave as `fault`."""
        if method != "*" and method not in self._rpc:
            raise ValueError(f"unknown rpc method {method!r}")
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {FAULTS}")
        allowed = _RESPOND_OPTIONS if fault == "respond" else set()
        if fault in _NOT_NOW_FAULTS:
            allowed = {"retry_after"}
        if set(options) - allowed or times < 1:
            raise ValueError(f"bad fault options {options!r} (times={times})")
        with self._lock:
            self._faults.append(
                {"method": method, "fault": fault, "remaining": times, "options": options}
            )

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, rpc: str) -> dict | None:
        with self._lock:
            for fault in self._faults:
                if fault["method"] in ("*", rpc):
                    fault["remaining"] -= 1
                    if fault["remaining"] == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _load(self) -> dict:
        if self._state_path is not None and self._state_path.exists():
            state = json.loads(self._state_path.read_text())
            return {"customers": state["customers"], "orders": state["orders"]}
        return {"customers": {}, "orders": {}}

    def _save(self) -> None:
        """Write the state atomically (a crash never leaves half a file). Caller holds the lock."""
        if self._state_path is None:
            return
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path.with_name(f".{self._state_path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(json.dumps(self._state, indent=2, sort_keys=True))
        os.replace(tmp, self._state_path)

    # -- the vendor's methods -------------------------------------------------------------------

    def _call(self, rpc: str, params: dict) -> tuple[int, object]:
        """Run one rpc method against the state: (200, result) or (400, refusal message)."""
        try:
            with self._lock:
                result = self._rpc[rpc](params, datetime.now(self.tz).date())
                self._save()
        except _Refused as exc:
            return 400, str(exc)
        return 200, result

    def _create_customer(self, params: dict, today: date) -> object:
        our_id, name = _text(params, "id"), _text(params, "name")
        admin = params.get("admin")
        if not isinstance(admin, dict):
            raise _Refused('missing parameter "admin"')
        admin = {k: _text(admin, k, f"admin.{k}") for k in ("email", "phone", "displayName")}
        if our_id in self._state["customers"]:
            raise _Refused(
                'duplicate key value violates unique constraint "customers_remote_id_key"'
            )
        # The vendor's older page shows integer keys, the newer one random strings.
        if self.response_style == "old":
            vendor_id: int | str = len(self._state["customers"]) + 1
            partner: int | str = 0
        else:
            vendor_id, partner = secrets.token_hex(6), secrets.token_hex(6)
        customer = {
            "id": our_id,
            "name": name,
            "admin": admin,
            "vendor_id": vendor_id,
            "partner": partner,
            "createdAt": int(time.time()),
            "isActive": True,
        }
        self._state["customers"][our_id] = customer
        body = {
            "name": name,
            "partner": partner,
            "createdAt": customer["createdAt"],
            "id": vendor_id,
            "isActive": True,
            "admin": {"email": admin["email"]},
            "remoteId": our_id,
        }
        if self.response_style == "new":
            body["url"] = f"https://onboarding.oneoffice.invalid/{vendor_id}"
        return body

    def _check_new_order_id(self, order_id: str) -> None:
        if order_id in self._state["orders"]:
            raise _Refused('duplicate key value violates unique constraint "orders_remote_id_key"')

    def _first_order(self, order_id: str) -> dict:
        order = self._state["orders"].get(order_id)
        if order is None:
            raise _Refused(f"order {order_id} not found")
        if order["parent"] is not None:
            raise _Refused(f"order {order_id} is not a first order")
        return order

    def _create_first_order(self, params: dict, today: date) -> object:
        customer, order_id = _text(params, "customer"), _text(params, "id")
        product, duration = _text(params, "product"), _text(params, "duration")
        licenses = params.get("licenses")
        if licenses is None:
            raise _Refused('missing parameter "licenses"')
        self._check_new_order_id(order_id)
        if customer not in self._state["customers"]:
            raise _Refused(f"customer {customer} not found")
        if product not in PRODUCTS:
            raise _Refused(f'invalid product "{product}"')
        if duration not in DURATIONS:
            raise _Refused(f'invalid duration "{duration}"')
        if isinstance(licenses, bool) or not isinstance(licenses, int) or licenses < 1:
            shown = licenses if isinstance(licenses, str) else json.dumps(licenses)
            raise _Refused(f'invalid licenses "{shown}"')
        end = _add_term(today, duration).isoformat()
        self._state["orders"][order_id] = {
            "id": order_id,
            "customer": customer,
            "parent": None,
            "product": product,
            "licenses": licenses,
            "duration": duration,
            "status": "active",
            "term_start": today.isoformat(),
            "term_end": end,
            "current_term_end": end,
        }
        return self.order_body

    def _create_renewal_order(self, params: dict, today: date) -> object:
        parent_id, order_id = _text(params, "parent"), _text(params, "id")
        self._check_new_order_id(order_id)
        parent = self._first_order(parent_id)
        if parent["status"] == "cancelled":
            raise _Refused(f"order {parent_id} is cancelled")
        current_end = date.fromisoformat(parent["current_term_end"])
        if (current_end - today).days > self.renewal_window_days:
            raise _Refused(
                f"cannot renew: more than {self.renewal_window_days} days left on current term"
            )
        start = max(current_end, today)  # an expired term restarts today
        end = _add_term(start, parent["duration"]).isoformat()
        self._state["orders"][order_id] = {
            "id": order_id,
            "customer": parent["customer"],
            "parent": parent_id,
            "product": parent["product"],
            "licenses": parent["licenses"],
            "duration": parent["duration"],
            "status": "active",
            "term_start": start.isoformat(),
            "term_end": end,
        }
        parent["current_term_end"] = end
        parent["status"] = "active"  # renewing a suspended subscription reactivates it
        return self.order_body

    def _cancel_order(self, params: dict, today: date) -> object:
        order_id = _text(params, "id")
        order = self._first_order(order_id)
        if order["status"] == "cancelled":
            raise _Refused(f"order {order_id} is already cancelled")
        order["status"] = "cancelled"
        return self.order_body

    def _suspend_order(self, params: dict, today: date) -> object:
        order_id = _text(params, "id")
        order = self._first_order(order_id)
        if order["status"] == "cancelled":
            raise _Refused(f"order {order_id} is cancelled")
        if order["status"] == "suspended":
            raise _Refused(f"order {order_id} is already suspended")
        order["status"] = "suspended"
        return self.order_body


class _Handler(BaseHTTPRequestHandler):
    """HTTP in and out: envelope and key checks, faults, and one log line per request."""

    server: _Server
    server_version = "OneOfficeSandbox/1.0"

    def _handle(self) -> None:
        """Any HTTP method: only GET gets past the first check, as with the vendor."""
        sandbox = self.server.sandbox
        with sandbox._lock:
            sandbox.in_flight += 1
            sandbox.max_in_flight = max(sandbox.max_in_flight, sandbox.in_flight)
        try:
            if sandbox.latency:
                time.sleep(sandbox.latency)
            self._answer(sandbox)
        finally:
            with sandbox._lock:
                sandbox.in_flight -= 1

    def _answer(self, sandbox: Sandbox) -> None:
        payload = self._read_and_record(sandbox)
        envelope = payload if isinstance(payload, dict) else {}
        rpc = envelope.get("method") if isinstance(envelope.get("method"), str) else None
        # A missing "params" reads as {}, so the caller hears which parameter is missing.
        params = envelope.get("params", {})
        our_id = params.get("id") if isinstance(params, dict) else None
        self._summary, self._fault_note = f"{rpc or '-'} id={our_id or '-'}", ""
        if self.command != "GET":
            self._send_json(405, "method not allowed")
        elif not secrets.compare_digest(
            self.headers.get("x-api-key", "").encode(), sandbox.api_key.encode()
        ):
            self._send_json(401, "invalid API key")
        elif rpc is None or not isinstance(params, dict):
            self._send_json(400, "invalid request body")
        elif rpc not in sandbox._rpc:
            self._send_json(400, f'unknown method "{rpc}"')
        else:
            self._respond(sandbox, rpc, params, sandbox._take_fault(rpc))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def _read_and_record(self, sandbox: Sandbox) -> Any:
        """Read the body by Content-Length, log the request in `sandbox.requests`, parse JSON."""
        try:
            length = max(0, int(self.headers.get("Content-Length") or 0))
        except ValueError:
            length = 0
        body = self.rfile.read(length)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        rpc = payload.get("method") if isinstance(payload, dict) else None
        entry = {
            "http_method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "json": payload,
            "rpc_method": rpc if isinstance(rpc, str) else None,
            "at": time.monotonic(),
        }
        with sandbox._lock:
            sandbox.requests.append(entry)
        return payload

    def _respond(self, sandbox: Sandbox, rpc: str, params: dict, fault: dict | None) -> None:
        kind = fault["fault"] if fault else None
        options = fault["options"] if fault else {}
        self._fault_note = f" [{kind}]" if kind else ""
        applies = kind is None or kind in _APPLYING_FAULTS or options.get("apply")
        status, result = sandbox._call(rpc, params) if applies else (0, None)
        if kind is None:
            self._send_json(status, result)
        elif kind in ("500-before", "500-after"):
            self._send_json(500, "internal server error")
        elif kind in ("slow", "hang-after"):
            time.sleep(sandbox.slow_seconds if kind == "slow" else sandbox.hang_seconds)
            try:
                self._send_json(status, result)
            except OSError:  # the client gave up waiting, as intended
                self.close_connection = True
        elif kind in ("drop-before", "drop-after"):
            self._log("dropped")
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        elif kind == "html-502":
            self._send(502, _BAD_GATEWAY, content_type="text/html")
        elif kind == "garbage-200":
            self._send(200, b'{"name": "ABC')
        elif kind in _NOT_NOW_FAULTS:
            self._send(
                _NOT_NOW_FAULTS[kind],
                json.dumps("too many requests, try again later").encode(),
                retry_after=str(options.get("retry_after", "1")),
            )
        elif kind == "redirect":
            self._send(302, b"", content_type="", location="http://127.0.0.1:9/elsewhere")
        else:  # "respond"
            body = options.get("body", b"")
            body = body.encode() if isinstance(body, str) else body
            content_type = options.get("content_type", _JSON)
            self._send(options.get("status", 200), body, content_type=content_type)

    def _send_json(self, status: int, value: object) -> None:
        # order_body None stands for an empty 200 body.
        self._send(status, b"" if value is None else json.dumps(value).encode())

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = _JSON,
        location: str = "",
        retry_after: str = "",
    ) -> None:
        self._log(status)
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if location:
            self.send_header("Location", location)
        if retry_after:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _log(self, outcome: int | str) -> None:
        # Logged before any byte goes out, so a client holding its answer can already see it.
        logger.info("%s -> %s%s", self._summary, outcome, self._fault_note)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: `_log` writes the one line per request."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.warning("%s " + format, self.address_string(), *args)
