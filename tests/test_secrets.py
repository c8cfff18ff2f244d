"""Secrets and access: the API key never leaks, logins are throttled, every provisioning URL
needs its permission and a CSRF token, and production settings pass `check --deploy`."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.management import call_command, get_commands
from django.db import connection
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.views.debug import SafeExceptionReporterFilter

from customers.models import Customer
from orders.models import Order
from portal import provisioning
from portal.models import ProvisioningCall
from tests.factories import CustomerFactory, OrderFactory, UserFactory

BASE_DIR = Path(__file__).resolve().parent.parent


# The canary key --------------------------------------------------------------------------------


@pytest.fixture
def canary(settings, sandbox):
    """A unique API key, set on both sides; whatever text it turns up in has leaked it."""
    key = f"canary-{uuid.uuid4()}"
    settings.ONEOFFICE_API_KEY = key
    settings.ONEOFFICE_TIMEOUT = 0.3
    settings.ONEOFFICE_RENEWAL_WINDOW_DAYS = 40
    settings.ONEOFFICE_RETRY_MAX_ATTEMPTS = 2
    settings.ADMINS = [("Ops", "ops@reseller.example")]
    sandbox.renewal_window_days = 40
    sandbox.hang_seconds = 1.0
    original = sandbox.api_key
    sandbox.api_key = key
    yield key
    sandbox.api_key = original


def database_text() -> str:
    """Every row of every table, as text."""
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                parts.append(f"{table}: {row!r}")
                parts.extend(v.decode("latin-1") for v in row if isinstance(v, bytes | memoryview))
    return "\n".join(parts)


def mail_text() -> str:
    parts = []
    for message in mail.outbox:
        parts += [message.subject, message.body, *message.to]
        parts += [content for content, _ in getattr(message, "alternatives", [])]
    return "\n".join(parts)


def _button(obj, name: str) -> tuple[str, dict]:
    """The URL of an object's provisioning button, and what its confirmation posts."""
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_provision", args=[obj.pk, name])
    return url, {"post": "yes"}


def _post(client: Client, obj, name: str):
    return client.post(*_button(obj, name))


def _run_every_flow(client: Client, sandbox, canary: str, capture) -> dict[str, str]:
    """Every provisioning flow through the admin, good and bad; returns the pages seen, each
    as the person reads it after the click (with its messages)."""
    pages: dict[str, str] = {}

    def page(name: str, response, shows: str) -> None:
        """Keep the page, which must show `shows`: a page that shows nothing proves nothing."""
        pages[name] = response.content.decode(errors="replace")
        assert response.status_code < 500, (name, response.status_code)
        assert shows in pages[name], (name, shows)

    def click(obj, button: str) -> object:
        return client.post(*_button(obj, button), follow=True)

    # The happy path, by the buttons.
    customer = CustomerFactory()
    page("register", click(customer, "register"), customer.code)
    order = OrderFactory(customer=customer)
    page("place", click(order, "place"), order.number)
    page("renew", click(order, "renew"), order.number)
    page("suspend", click(order, "suspend"), order.number)
    page("cancel", click(order, "cancel"), order.number)
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED

    # Every kind of failure, on a customer of its own each.
    failures = [
        ("500-after", {}),
        ("html-502", {}),
        ("garbage-200", {}),
        ("hang-after", {}),
        ("drop-after", {}),
        ("redirect", {}),
        # A vendor that quotes the key back in its error bodies.
        ("respond", {"status": 400, "body": f'"invalid key {canary}"'}),
        ("respond", {"status": 500, "body": f"<h1>key {canary} rejected</h1>"}),
        ("respond", {"status": 401, "body": f'{{"message": "bad x-api-key {canary}"}}'}),
        ("respond", {"status": 200, "body": f"<html>{canary}</html>", "content_type": "text/html"}),
    ]
    for fault, options in failures:
        failing = CustomerFactory()
        sandbox.inject("createCustomer", fault, **options)
        with capture(execute=True):
            page(f"register {fault} {options}", click(failing, "register"), failing.code)
    # Nothing listening, then a key the vendor does not accept.
    sandbox.refuse_connections()
    with capture(execute=True):
        refused = CustomerFactory()
        page("register refused", click(refused, "register"), refused.code)
    sandbox.accept_connections()
    sandbox.api_key = "another-key"
    with capture(execute=True):
        unknown_key = CustomerFactory()
        page("register wrong key", click(unknown_key, "register"), unknown_key.code)
    sandbox.api_key = canary

    # Retries by hand until automatic retries are used up: the managers' email.
    for pending in Customer.objects.filter(status=Customer.Status.PENDING):
        sandbox.inject("createCustomer", "500-before")
        with capture(execute=True):
            page(f"retry {pending.pk}", click(pending, "retry"), pending.code)
    assert mail.outbox, "retries were not exhausted; the email path was not exercised"

    # The pages where calls, errors and mirrored data are shown.
    calls = reverse("admin:portal_provisioningcall_changelist")
    page("call log", client.get(calls), "createCustomer")
    for call in ProvisioningCall.objects.all():
        url = reverse("admin:portal_provisioningcall_change", args=[call.pk])
        page(f"call {call.pk}", client.get(url), call.method)
    for obj in [*Customer.objects.all(), *Order.objects.all()]:
        opts = obj._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        shows = obj.code if isinstance(obj, Customer) else obj.number
        page(f"{obj} page", client.get(url), shows)
    customers = reverse("admin:customers_customer_changelist")
    page("customers", client.get(customers), customer.code)
    page("attention", client.get(customers + "?attention=yes"), "attention")
    page("orders", client.get(reverse("admin:orders_order_changelist")), order.number)
    # What the vendor quoted back was shown, with the key taken out.
    assert any("[redacted]" in text for text in pages.values())
    return pages


@pytest.mark.django_db
def test_canary_key_appears_nowhere(
    client, sandbox, canary, superuser, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    client.force_login(superuser)

    pages = _run_every_flow(client, sandbox, canary, django_capture_on_commit_callbacks)

    # The canary did reach the vendor, as its header, so the checks below can fail.
    assert any(r["headers"].get("x-api-key") == canary for r in sandbox.requests)
    assert sandbox.snapshot()["customers"]
    assert ProvisioningCall.objects.filter(outcome=ProvisioningCall.Outcome.CONFIG_ERROR).exists()
    for name, text in pages.items():
        assert canary not in text, f"key on the page {name!r}"
    assert canary not in database_text()
    assert canary not in caplog.text
    assert all(canary not in record.getMessage() for record in caplog.records)
    assert canary not in mail_text()


@pytest.mark.django_db
def test_vendor_redirect_is_not_followed(client, sandbox, canary, superuser):
    client.force_login(superuser)
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "redirect")

    with pytest.raises(provisioning.ConfigurationProblem, match="not followed"):
        provisioning.customer_register(customer=customer)

    # Followed, the call would have gone on to 127.0.0.1:9 and failed as "not sent".
    assert len(sandbox.requests) == 1
    call = ProvisioningCall.objects.get()
    assert (call.outcome, call.http_status) == (ProvisioningCall.Outcome.CONFIG_ERROR, 302)
    customer.refresh_from_db()
    assert customer.status == Customer.Status.DRAFT


@pytest.mark.django_db
def test_canary_key_not_in_exports(client, sandbox, canary, manager_user):
    customer = provisioning.customer_register(customer=CustomerFactory())
    provisioning.order_place(order=OrderFactory(customer=customer))
    try:
        url = reverse("admin:orders_order_export")
    except NoReverseMatch:
        pytest.skip("the order list has no CSV export URL yet")
    client.force_login(manager_user)

    response = client.get(url)

    assert response.status_code == 200
    body = b"".join(response.streaming_content if response.streaming else [response.content])
    assert customer.code in body.decode()
    assert canary not in body.decode()
    if "renewals_due" in get_commands():
        out = StringIO()
        call_command("renewals_due", "--days", "60", "--format", "csv", stdout=out)
        assert canary not in out.getvalue()


def _crash_url(order: Order) -> str:
    return reverse("admin:orders_order_provision", args=[order.pk, "renew"])


@pytest.fixture
def crashing_renewal(canary, settings, sandbox):
    """A renew button whose vendor call dies of an unexpected error: an HTTP 500."""
    customer = provisioning.customer_register(customer=CustomerFactory())
    order = provisioning.order_place(order=OrderFactory(customer=customer))
    # A broken setting makes the HTTP library, deep in the call, raise an error nobody expects.
    settings.ONEOFFICE_TIMEOUT = -1.0
    return order


@pytest.mark.django_db
def test_canary_key_not_on_the_technical_500_page(
    crashing_renewal, canary, settings, superuser, caplog
):
    caplog.set_level(logging.DEBUG)
    settings.DEBUG = True
    client = Client(raise_request_exception=False)
    client.force_login(superuser)

    response = client.post(_crash_url(crashing_renewal))

    assert response.status_code == 500
    page = response.content.decode()
    assert "ValueError" in page and "OneOfficeClient" in page
    assert "ONEOFFICE_API_KEY" in page
    assert canary not in page
    assert canary not in caplog.text


@pytest.mark.django_db
def test_canary_key_not_on_the_500_page_nor_in_the_error_email(
    crashing_renewal, canary, settings, superuser, caplog
):
    caplog.set_level(logging.DEBUG)
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    client.force_login(superuser)

    response = client.post(_crash_url(crashing_renewal))

    assert response.status_code == 500
    assert "Server Error" in response.content.decode()
    assert canary not in response.content.decode()
    # Django mails the full error report to ADMINS; the filter must cleanse it there too.
    assert [m.to for m in mail.outbox] == [["ops@reseller.example"]]
    assert "ValueError" in mail_text()
    assert canary not in mail_text()
    assert canary not in caplog.text


def test_error_reports_cleanse_every_setting_named_key(settings):
    settings.ONEOFFICE_API_KEY = f"canary-{uuid.uuid4()}"
    safe = SafeExceptionReporterFilter().get_safe_settings()

    keys = [name for name in dir(django_settings) if name.isupper() and "KEY" in name]

    assert "ONEOFFICE_API_KEY" in keys and "SECRET_KEY" in keys
    for name in keys:
        assert safe[name] == SafeExceptionReporterFilter.cleansed_substitute, name


# Login throttling ------------------------------------------------------------------------------


def _login(client: Client, password: str):
    return client.post(
        reverse("admin:login"),
        {"username": "sally", "password": password, "next": reverse("admin:index")},
    )


@pytest.mark.django_db
def test_admin_login_locked_after_five_failures(client, sales_user, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _ in range(5):
        assert _login(client, "wrong password").status_code in (200, 429)

    response = _login(client, "correct horse battery staple")

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_admin_login_four_failures_still_let_the_right_password_in(client, sales_user):
    for _ in range(4):
        assert _login(client, "wrong password").status_code == 200

    response = _login(client, "correct horse battery staple")

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(sales_user.pk)


# Permissions and CSRF on every provisioning URL -----------------------------------------------

BUTTONS = [
    ("customer", "draft", "register"),
    ("customer", "pending", "retry"),
    ("order", "draft", "place"),
    ("order", "active", "renew"),
    ("order", "active", "suspend"),
    ("order", "active", "cancel"),
    ("order", "pending", "retry"),
]


def _target(kind: str, status: str):
    if kind == "customer":
        return CustomerFactory(status=status)
    customer = CustomerFactory(status=Customer.Status.REGISTERED)
    extra = {"pending_action": Order.Action.PLACE} if status == "pending" else {}
    return OrderFactory(customer=customer, status=status, **extra)


def _unchanged(obj) -> bool:
    fresh = type(obj).objects.get(pk=obj.pk)
    return (fresh.status, fresh.attempts) == (obj.status, obj.attempts)


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["manager", "staff without groups"])
@pytest.mark.parametrize(("kind", "status", "name"), BUTTONS)
def test_provisioning_url_refuses_without_permission(
    client, sandbox, manager_user, who, kind, status, name
):
    obj = _target(kind, status)
    client.force_login(manager_user if who == "manager" else UserFactory(username="nobody"))

    response = _post(client, obj, name)

    assert response.status_code == 403
    assert sandbox.requests == []
    assert _unchanged(obj)
    assert not ProvisioningCall.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["suspend", "cancel"])
def test_confirmation_page_refuses_without_permission(client, sandbox, manager_user, name):
    order = _target("order", "active")
    client.force_login(manager_user)

    url = reverse("admin:orders_order_provision", args=[order.pk, name])

    assert client.get(url).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "status", "name"), BUTTONS)
def test_provisioning_url_refuses_without_csrf_token(sandbox, sales_user, kind, status, name):
    obj = _target(kind, status)
    client = Client(enforce_csrf_checks=True)
    client.force_login(sales_user)

    response = _post(client, obj, name)

    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert sandbox.requests == []
    assert _unchanged(obj)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changelist", "kind", "status", "action"),
    [
        ("admin:customers_customer_changelist", "customer", "draft", "register_selected"),
        ("admin:orders_order_changelist", "order", "draft", "place_selected"),
        ("admin:orders_order_changelist", "order", "active", "cancel_selected"),
    ],
)
def test_bulk_action_refuses_without_csrf_token(
    sandbox, sales_user, changelist, kind, status, action
):
    obj = _target(kind, status)
    client = Client(enforce_csrf_checks=True)
    client.force_login(sales_user)

    response = client.post(
        reverse(changelist), {"action": action, "_selected_action": [obj.pk], "post": "yes"}
    )

    assert response.status_code == 403
    assert sandbox.requests == []
    assert _unchanged(obj)


@pytest.mark.django_db
def test_bulk_action_with_csrf_token_and_permission_goes_through(client, sandbox, sales_user):
    # The control for the refusals above: the same request, properly made, is sent.
    customer = _target("customer", "draft")
    client.force_login(sales_user)

    response = client.post(
        reverse("admin:customers_customer_changelist"),
        {"action": "register_selected", "_selected_action": [customer.pk]},
    )

    assert response.status_code == 302
    assert Customer.objects.get(pk=customer.pk).status == Customer.Status.REGISTERED
    assert len(sandbox.requests) == 1


# Production settings ---------------------------------------------------------------------------

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "portal.settings",
    "DJANGO_DEBUG": "off",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "portal.example.com",
    "ONEOFFICE_URL": "https://api.invalid/api",
    "ONEOFFICE_API_KEY": "x",
}


def _manage(*args: str, unset: list[str] = (), **env: str) -> subprocess.CompletedProcess:
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "ONEOFFICE_", "AXES_", "PYTEST_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={
            name: value
            for name, value in {**base, **PRODUCTION_ENV, **env}.items()
            if name not in unset
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_passes_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_is_off_unless_the_environment_turns_it_on():
    shell = "from django.conf import settings; print(settings.DEBUG)"
    result = _manage("shell", "--no-imports", "-c", shell, unset=["DJANGO_DEBUG"])

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_manage_py_with_nothing_configured_runs_with_the_local_defaults():
    shell = "from django.conf import settings; print(settings.DEBUG)"
    unset = [
        "DJANGO_DEBUG",
        "DJANGO_SECRET_KEY",
        "ONEOFFICE_URL",
        "ONEOFFICE_API_KEY",
        "DATABASE_URL",
    ]
    result = _manage("shell", "--no-imports", "-c", shell, unset=unset)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_check_deploy_fails_with_debug_on():
    # The control: the same check does catch an unsafe configuration.
    result = _manage("check", "--deploy", "--fail-level", "WARNING", DJANGO_DEBUG="on")

    assert result.returncode != 0
    assert "DEBUG" in result.stderr


@pytest.mark.parametrize("name", ["DJANGO_SECRET_KEY", "ONEOFFICE_URL", "ONEOFFICE_API_KEY"])
def test_production_start_up_stops_without_a_required_variable(name):
    result = _manage("check", **{name: ""})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"Set {name} in the environment" in result.stderr
