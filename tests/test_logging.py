"""Logs: a request id on every response and line, JSON lines with LOG_FORMAT=json, and never
the API key or a password in any line."""

import copy
import io
import json
import logging
import logging.config
import uuid

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from customers.models import Customer
from portal.ops.logging import JsonFormatter, RequestContextFilter, log_context
from tests.admin_urls import button_url
from tests.factories import CustomerFactory

ORDERS = reverse("admin:orders_order_changelist")


@pytest.fixture
def json_logs():
    """The production logging configuration with LOG_FORMAT=json, writing to a buffer.

    Returns a function giving every line written so far."""
    config = copy.deepcopy(django_settings.LOGGING)
    buffer = io.StringIO()
    config["handlers"]["console"]["formatter"] = "json"
    config["handlers"]["console"]["stream"] = buffer
    config["root"]["level"] = "DEBUG"
    logging.config.dictConfig(config)
    yield lambda: buffer.getvalue().splitlines()
    logging.config.dictConfig(django_settings.LOGGING)


def parsed(lines: list[str]) -> list[dict]:
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    for entry in entries:
        assert {"timestamp", "level", "logger", "message", "request_id", "user"} <= set(entry)
    return entries


# Request ids ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_response_carries_a_new_request_id(client):
    first = client.get(reverse("readyz"))["X-Request-ID"]
    second = client.get(reverse("admin:login"))["X-Request-ID"]

    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("abc-123_X.y:z", True),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("a" * 100, True),
        ("a" * 101, False),
        ("", False),
        ("-starts-with-dash", False),
        ("has space", False),
        ('x", "level": "CRITICAL', False),
        ("line\nbreak", False),
        ("ünïcode", False),
    ],
)
def test_incoming_request_id_is_kept_only_when_sane(client, incoming, kept):
    response = client.get(reverse("readyz"), HTTP_X_REQUEST_ID=incoming)

    assert (response["X-Request-ID"] == incoming) is kept
    assert len(response["X-Request-ID"]) <= 100


# The JSON lines ------------------------------------------------------------------------------


def _record(message="hello %s", args=("world",), **extra) -> logging.LogRecord:
    record = logging.LogRecord("portal.test", logging.INFO, __file__, 1, message, args, None)
    for name, value in extra.items():
        setattr(record, name, value)
    RequestContextFilter().filter(record)
    return record


def test_json_line_has_the_fields_and_nothing_unset():
    entry = json.loads(JsonFormatter().format(_record()))

    assert entry["message"] == "hello world"
    assert (entry["level"], entry["logger"]) == ("INFO", "portal.test")
    assert entry["timestamp"].endswith("+00:00")
    assert entry["request_id"] is None and entry["user"] is None
    assert "object" not in entry and "vendor_method" not in entry


def test_json_line_takes_object_and_vendor_method_from_extra_or_context():
    from_extra = _record(object="ORD-1", vendor_method="cancelOrder")
    with log_context(object="C-9", vendor_method="createCustomer"):
        from_context = _record()
        overridden = _record(object="ORD-2")

    assert json.loads(JsonFormatter().format(from_extra))["vendor_method"] == "cancelOrder"
    assert json.loads(JsonFormatter().format(from_context))["object"] == "C-9"
    entry = json.loads(JsonFormatter().format(overridden))
    assert (entry["object"], entry["vendor_method"]) == ("ORD-2", "createCustomer")
    assert "object" not in json.loads(JsonFormatter().format(_record()))


def test_json_line_is_one_line_even_with_a_traceback():
    try:
        raise ValueError("line one\nline two")
    except ValueError:
        import sys

        record = _record("failed", (), exc_info=sys.exc_info())

    line = JsonFormatter().format(record)

    assert "\n" not in line
    assert "line two" in json.loads(line)["exception"]


@pytest.mark.django_db
def test_lines_of_a_request_carry_its_id_and_user(client, json_logs, sandbox, sales_user):
    client.force_login(sales_user)
    customer = CustomerFactory()

    response = client.post(button_url(customer, "register"), HTTP_X_REQUEST_ID="req-42")

    assert response["X-Request-ID"] == "req-42"
    assert Customer.objects.get(pk=customer.pk).status == Customer.Status.REGISTERED
    done = [e for e in parsed(json_logs()) if e["logger"] == "portal.provisioning"]
    assert done, json_logs()
    assert {(e["request_id"], e["user"]) for e in done} == {("req-42", "sally")}


@pytest.mark.django_db
def test_vendor_call_lines_name_the_object_and_method(client, json_logs, sandbox, sales_user):
    client.force_login(sales_user)
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-after")

    client.post(button_url(customer, "register"))

    lines = [e for e in parsed(json_logs()) if e["logger"] == "portal.provisioning"]
    assert lines, json_logs()
    assert {(e["object"], e["vendor_method"]) for e in lines} == {
        (f"customer {customer.code}", "createCustomer")
    }


# No key, no password -------------------------------------------------------------------------


@pytest.fixture
def canary_key(sandbox, settings):
    """A unique API key on both sides; the sandbox gets its own back afterwards."""
    key = f"canary-key-{uuid.uuid4()}"
    original = sandbox.api_key
    settings.ONEOFFICE_API_KEY = sandbox.api_key = key
    yield key
    sandbox.api_key = original


@pytest.mark.django_db
def test_no_log_line_holds_the_api_key_or_a_password(
    json_logs,
    canary_key,
    sandbox,
    settings,
    superuser,
    sales_user,
    django_capture_on_commit_callbacks,
):
    key = canary_key
    password = f"canary-password-{uuid.uuid4()}"
    settings.ONEOFFICE_TIMEOUT = 0.5
    settings.DEBUG = False
    client = Client(raise_request_exception=False)

    # A login with a wrong password, then a right one.
    login = reverse("admin:login")
    refused = client.post(login, {"username": "sally", "password": password, "next": ORDERS})
    assert refused.status_code == 200
    client.force_login(superuser)
    # Vendor calls: one that works, one whose refusal quotes the key, one that times out.
    assert client.post(button_url(CustomerFactory(), "register")).status_code == 302
    sandbox.inject("createCustomer", "respond", status=400, body=f'"invalid key {key}"')
    client.post(button_url(CustomerFactory(), "register"))
    sandbox.inject("createCustomer", "hang-after")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(button_url(CustomerFactory(), "register"))
    # An error nobody expected: a broken setting makes the HTTP library raise, a 500.
    settings.ONEOFFICE_TIMEOUT = -1.0
    crashed = client.post(button_url(CustomerFactory(), "register"))
    assert crashed.status_code == 500

    lines = json_logs()
    entries = parsed(lines)
    # The checks below can fail: the key did go out, and each kind of line was written.
    assert any(r["headers"].get("x-api-key") == key for r in sandbox.requests)
    loggers = {e["logger"] for e in entries}
    assert {"axes.handlers.database", "portal.provisioning", "django.request"} <= loggers
    failure = next(e for e in entries if "login failure" in e["message"])
    assert failure["request_id"]
    assert any(e["level"] == "ERROR" and "exception" in e for e in entries)
    assert any("[redacted]" in e["message"] for e in entries)
    for line in lines:
        assert key not in line
        assert password not in line


@pytest.mark.django_db
def test_request_line_when_log_requests_is_on(client, json_logs, settings, sales_user):
    settings.LOG_REQUESTS = True
    client.force_login(sales_user)

    client.get(ORDERS + "?q=secret-search", HTTP_X_REQUEST_ID="req-7")

    line = next(e for e in parsed(json_logs()) if e["logger"] == "portal.request")
    assert (line["method"], line["path"], line["status"]) == ("GET", ORDERS, 200)
    assert (line["request_id"], line["user"]) == ("req-7", "sally")
    assert isinstance(line["duration_ms"], int)
    assert "secret-search" not in json.dumps(line)


@pytest.mark.django_db
def test_no_request_line_when_log_requests_is_off(client, json_logs, settings):
    settings.LOG_REQUESTS = False

    client.get(reverse("readyz"))

    assert not [e for e in parsed(json_logs()) if e["logger"] == "portal.request"]
