"""/metrics: Prometheus text computed from the database, behind an address allow-list or a
token, in a fixed number of queries."""

from datetime import timedelta

import pytest
from axes.models import AccessFailureLog
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from customers.models import Customer
from orders.models import ReminderRun, RenewalReminder
from portal.models import ProvisioningCall
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db

URL = reverse("metrics")
TOKEN = "metrics-token-5f0c2b7e"


@pytest.fixture
def open_to_loopback(settings):
    settings.METRICS_ALLOWED_IPS = ["127.0.0.0/8"]


def scrape(client, **headers) -> dict[tuple, float]:
    response = client.get(URL, **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


# Access --------------------------------------------------------------------------------------


def test_metrics_404_when_neither_addresses_nor_token_are_set(client, settings):
    settings.METRICS_ALLOWED_IPS = []
    settings.METRICS_TOKEN = ""

    assert client.get(URL).status_code == 404


def test_metrics_403_for_an_address_not_on_the_list(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "192.0.2.7"]

    assert client.get(URL).status_code == 403
    assert client.get(URL, REMOTE_ADDR="192.0.2.7").status_code == 200
    assert client.get(URL, REMOTE_ADDR="10.20.30.40").status_code == 200
    # A forwarded-for header does not make an outsider an insider.
    assert client.get(URL, HTTP_X_FORWARDED_FOR="10.0.0.1").status_code == 403


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (f"Bearer {TOKEN}", 200),
        (f"bearer {TOKEN}", 200),
        ("Bearer wrong", 403),
        (f"Basic {TOKEN}", 403),
        (TOKEN, 403),
        ("", 403),
    ],
)
def test_metrics_by_token(client, settings, header, status):
    settings.METRICS_ALLOWED_IPS = []
    settings.METRICS_TOKEN = TOKEN

    assert client.get(URL, HTTP_AUTHORIZATION=header).status_code == status


@pytest.mark.parametrize("given", ["Bearer jürgen", "Bearer \u00ff\u00fe", "Bürer token"])
def test_metrics_refuse_a_non_ascii_authorization_header(client, settings, given):
    settings.METRICS_ALLOWED_IPS = []
    settings.METRICS_TOKEN = TOKEN
    # The test client sends the header as the server would hand it over: Latin-1 text.
    header = given.encode("utf-8").decode("latin-1")

    assert client.get(URL, HTTP_AUTHORIZATION=header).status_code == 403
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_metrics_need_no_login_and_ignore_sessions(client, open_to_loopback, settings):
    settings.STAFF_2FA_REQUIRED = True

    response = client.get(URL)

    assert response.status_code == 200
    assert not response.cookies


def test_metrics_refuse_post(client, open_to_loopback):
    assert client.post(URL).status_code == 405


# Figures -------------------------------------------------------------------------------------


def test_metrics_count_calls_outcomes_and_latency(client, open_to_loopback, sandbox, order_in):
    order_in("active")  # createCustomer ok (the fixture's), createFirstOrder ok
    order_in("failed")  # createFirstOrder refused
    ProvisioningCall.objects.filter(method="createCustomer").update(duration_ms=90)
    ProvisioningCall.objects.filter(method="createFirstOrder", outcome="ok").update(duration_ms=400)
    ProvisioningCall.objects.filter(method="createFirstOrder", outcome="refused").update(
        duration_ms=3_000
    )

    samples = scrape(client)

    assert value(samples, "oneoffice_calls_total", method="createCustomer", outcome="ok") == 1
    assert value(samples, "oneoffice_calls_total", method="createFirstOrder", outcome="ok") == 1
    assert (
        value(samples, "oneoffice_calls_total", method="createFirstOrder", outcome="refused") == 1
    )
    first = {"method": "createFirstOrder"}
    assert value(samples, "oneoffice_call_duration_seconds_bucket", le="0.1", **first) == 0
    assert value(samples, "oneoffice_call_duration_seconds_bucket", le="0.5", **first) == 1
    assert value(samples, "oneoffice_call_duration_seconds_bucket", le="2.5", **first) == 1
    assert value(samples, "oneoffice_call_duration_seconds_bucket", le="5.0", **first) == 2
    assert value(samples, "oneoffice_call_duration_seconds_bucket", le="+Inf", **first) == 2
    assert value(samples, "oneoffice_call_duration_seconds_count", **first) == 2
    assert value(samples, "oneoffice_call_duration_seconds_sum", **first) == pytest.approx(3.4)
    customer = {"method": "createCustomer"}
    assert value(samples, "oneoffice_call_duration_seconds_bucket", le="0.1", **customer) == 1


def test_metrics_pending_and_needing_attention(
    client, open_to_loopback, sandbox, order_in, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order_in("pending")  # an unknown outcome, its lease released: needs attention
    busy = CustomerFactory(status=Customer.Status.PENDING)
    Customer.objects.filter(pk=busy.pk).update(lease_until=timezone.now() + timedelta(minutes=1))
    stale = CustomerFactory(status=Customer.Status.PENDING)
    Customer.objects.filter(pk=stale.pk).update(lease_until=timezone.now() - timedelta(minutes=1))

    samples = scrape(client)

    assert value(samples, "portal_objects_pending", kind="customer") == 2
    assert value(samples, "portal_objects_needing_attention", kind="customer") == 1
    assert value(samples, "portal_objects_pending", kind="order") == 1
    assert value(samples, "portal_objects_needing_attention", kind="order") == 1
    # The unknown outcome scheduled its automatic retry.
    assert value(samples, "portal_retries_scheduled") == 1


def test_metrics_reminders_and_login_failures(client, open_to_loopback, active_order, sales_user):
    run = ReminderRun.objects.create(error="SMTP refused")
    RenewalReminder.objects.create(
        subscription=active_order, term_end=active_order.current_term_end, sent_at=timezone.now()
    )
    RenewalReminder.objects.create(
        subscription=active_order, term_end=active_order.current_term_end, forced=True
    )
    for _ in range(2):
        client.post(reverse("admin:login"), {"username": "sally", "password": "wrong"})

    samples = scrape(client)

    assert value(samples, "portal_reminders_sent_total") == 1
    assert value(samples, "portal_reminder_last_run_failed") == 1
    assert value(samples, "portal_reminder_last_run_timestamp_seconds") == pytest.approx(
        run.started_at.timestamp()
    )
    assert AccessFailureLog.objects.count() == 2
    assert value(samples, "portal_login_failures_total") == 2
    assert value(samples, "portal_two_factor_events_total", kind="code-failed") == 0


def test_metrics_query_count_does_not_grow_with_the_data(
    client, open_to_loopback, sandbox, order_in, django_assert_max_num_queries
):
    with django_assert_max_num_queries(8) as few:
        client.get(URL)
    for state in ("active", "failed", "pending", "cancelled", "suspended"):
        order_in(state)
    for _ in range(20):
        OrderFactory(customer=CustomerFactory(status=Customer.Status.PENDING))

    with django_assert_max_num_queries(len(few.captured_queries)):
        samples = scrape(client)

    assert value(samples, "portal_objects_pending", kind="customer") == 20
