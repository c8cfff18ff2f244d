"""The order list for managers: filters, search, date hierarchy, CSV export, query ceilings."""

import csv
import io
import re
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import factory
import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders.models import Order
from portal.security.roles import MANAGERS, SALES
from tests.factories import CustomerFactory, OrderFactory, RenewalFactory, UserFactory

LIST_URL = reverse("admin:orders_order_changelist")
EXPORT_URL = reverse("admin:orders_order_export")

pytestmark = pytest.mark.django_db


def _numbers(client, query="") -> set[str]:
    response = client.get(LIST_URL + query)
    assert response.status_code == 200
    return {order.number for order in response.context["cl"].queryset}


def _export(client, query="") -> list[list[str]]:
    response = client.get(EXPORT_URL + query)
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def manager_client(client, manager_user):
    client.force_login(manager_user)
    return client


@pytest.fixture
def view_only_user(db):
    user = UserFactory(username="viewer")
    user.user_permissions.add(Permission.objects.get(codename="view_order"))
    return user


def test_order_list_filter_status(manager_client):
    active = OrderFactory(active=True)
    OrderFactory(suspended=True)
    OrderFactory()

    assert _numbers(manager_client, "?status__exact=active") == {active.number}


def test_order_list_filter_product_and_duration(manager_client):
    wanted = OrderFactory(active=True, product=Order.Product.OO_ENT, duration=Order.Duration.YEARLY)
    OrderFactory(active=True, product=Order.Product.OO_ENT, duration=Order.Duration.MONTHLY)
    OrderFactory(active=True, product=Order.Product.ERP_LIM, duration=Order.Duration.YEARLY)

    assert _numbers(manager_client, "?product__exact=oo-ent&duration__exact=yearly") == {
        wanted.number
    }


@pytest.mark.parametrize(
    ("state", "term_days", "status"),
    [
        ("due", 0, Order.Status.ACTIVE),
        ("due", 15, Order.Status.SUSPENDED),
        ("lapsed", -1, Order.Status.ACTIVE),
        ("not-yet-due", 16, Order.Status.ACTIVE),
    ],
)
def test_order_list_filter_renewal_window(manager_client, state, term_days, status):
    wanted = OrderFactory(placed=True, status=status, days_left=term_days)
    others = {
        "due": OrderFactory(active=True, days_left=5),
        "lapsed": OrderFactory(active=True, days_left=-10),
        "not-yet-due": OrderFactory(active=True, days_left=200),
    }
    OrderFactory(cancelled=True, days_left=5)
    OrderFactory()

    assert _numbers(manager_client, f"?renewal={state}") == {wanted.number, others[state].number}


def test_order_list_filter_account_manager(manager_client):
    anna = UserFactory(username="anna")
    bob = UserFactory(username="bob")
    annas = OrderFactory(active=True, customer__account_manager=anna)
    OrderFactory(active=True, customer__account_manager=bob)
    OrderFactory(active=True, customer__account_manager=None)

    assert _numbers(manager_client, f"?customer__account_manager__id__exact={anna.pk}") == {
        annas.number
    }
    response = manager_client.get(LIST_URL)
    assert "anna" in response.content.decode()


def test_order_list_filter_needs_attention_includes_stuck_renewals(manager_client):
    stuck = OrderFactory(pending=True)
    in_flight = OrderFactory(pending=True, lease_until=timezone.now() + timedelta(minutes=1))
    renewed = OrderFactory(active=True)
    RenewalFactory(parent=renewed, pending=True)
    OrderFactory(active=True)

    numbers = _numbers(manager_client, "?attention=yes")

    assert numbers == {stuck.number, renewed.number}
    assert in_flight.number not in numbers


@pytest.mark.parametrize("field", ["name", "code", "number"])
def test_order_list_search_by_customer_name_code_or_order_number(manager_client, field):
    customer = CustomerFactory(name="Zebra Shipping SA", code="ZEBRA-7")
    wanted = OrderFactory(active=True, customer=customer, number="ORD-ZEBRA-42")
    OrderFactory(active=True)
    term = {"name": "zebra ship", "code": "ZEBRA-7", "number": "ORD-ZEBRA-42"}[field]

    assert _numbers(manager_client, f"?q={term}") == {wanted.number}


def test_order_list_date_hierarchy_on_current_term_end(manager_client):
    march = OrderFactory(active=True, current_term_end=date(2031, 3, 15))
    OrderFactory(active=True, current_term_end=date(2031, 4, 15))
    OrderFactory(active=True, current_term_end=date(2032, 3, 15))

    response = manager_client.get(LIST_URL)
    assert "current_term_end__year=2031" in response.content.decode()
    assert _numbers(manager_client, "?current_term_end__year=2031&current_term_end__month=3") == {
        march.number
    }


def test_order_list_shows_subscriptions_only(manager_client):
    subscription = OrderFactory(active=True)
    renewal = RenewalFactory(parent=subscription)

    numbers = _numbers(manager_client)

    assert subscription.number in numbers
    assert renewal.number not in numbers


def test_order_export_equals_filtered_list_across_pages(manager_client):
    OrderFactory.store(
        160,
        customer=CustomerFactory(),
        active=True,
        prefix="BULK-",
        product=factory.Iterator(
            Order.Product.OO_ENT if i % 3 else Order.Product.OO_LITE for i in range(160)
        ),
        licenses=factory.Iterator((i * 37) % 160 + 1 for i in range(160)),
        days_left=factory.Iterator(i % 40 for i in range(160)),
    )
    column = manager_client.get(LIST_URL).context["cl"].list_display.index("licenses_and_value")
    query = f"?product__exact=oo-ent&o=-{column}"
    listed = manager_client.get(LIST_URL + query).context["cl"]

    rows = _export(manager_client, query)

    header, body = rows[0], rows[1:]
    assert header[:3] == ["order id", "customer id", "customer"]
    expected = list(
        Order.objects.filter(parent__isnull=True, product="oo-ent")
        .order_by("-licenses", "-pk")
        .values_list("number", flat=True)
    )
    assert listed.result_count == len(expected) > listed.list_per_page
    assert [row[0] for row in body] == expected
    assert [row[0] for row in body[: listed.list_per_page]] == [
        o.number for o in listed.result_list
    ]


def test_order_export_row_content(manager_client):
    manager = UserFactory(username="anna")
    customer = CustomerFactory(name="Acme Ltd", code="ACME", account_manager=manager)
    OrderFactory(
        suspended=True,
        days_left=9,
        number="ORD-ACME-1",
        customer=customer,
        product=Order.Product.ERP_STD,
        licenses=12,
        duration=Order.Duration.YEARLY,
    )

    header, row = _export(manager_client)

    record = dict(zip(header, row, strict=True))
    assert record == {
        **record,
        "order id": "ORD-ACME-1",
        "customer id": "ACME",
        "customer": "Acme Ltd",
        "account manager": "anna",
        "product": "erp-std",
        "licenses": "12",
        "duration": "yearly",
        "status": "suspended",
        "pending action": "",
        "current term end": (timezone.localdate() + timedelta(days=9)).isoformat(),
        "days left": "9",
    }


@pytest.mark.parametrize("dangerous", ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_order_export_escapes_formula_cells(manager_client, dangerous):
    customer = CustomerFactory(name=dangerous + " Ltd")
    OrderFactory(customer=customer)

    rows = _export(manager_client)

    assert rows[1][2] == "'" + dangerous + " Ltd"


def test_order_export_leaves_plain_cells_and_numbers_alone(manager_client):
    customer = CustomerFactory(name="Plain Name", code="PLAIN")
    OrderFactory(active=True, customer=customer, current_term_end=date(2020, 1, 1))

    header, row = _export(manager_client)

    record = dict(zip(header, row, strict=True))
    assert record["customer"] == "Plain Name"
    assert int(record["days left"]) < 0


@pytest.mark.parametrize("role", ["manager_user", "sales_user"])
def test_order_export_allowed_for_managers_and_sales(client, request, role):
    OrderFactory()
    client.force_login(request.getfixturevalue(role))

    response = client.get(LIST_URL)

    assert response.context["has_export_permission"] is True
    assert EXPORT_URL in response.content.decode()
    assert client.get(EXPORT_URL).status_code == 200


def test_order_export_refused_without_export_permission(client, view_only_user):
    client.force_login(view_only_user)
    order = OrderFactory(active=True)

    response = client.get(LIST_URL)

    assert response.status_code == 200
    assert order.number in response.content.decode()
    assert EXPORT_URL not in response.content.decode()
    assert client.get(EXPORT_URL).status_code == 403


def test_order_export_requires_login(client):
    response = client.get(EXPORT_URL)

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_order_export_bad_filter_redirects_to_list_with_error_flag(manager_client):
    response = manager_client.get(EXPORT_URL + "?status__exact=active&nonsense=1")

    assert response.status_code == 302
    assert response["Location"] == LIST_URL + "?e=1"


def test_roles_grant_export_to_managers_and_sales():
    for group in (MANAGERS, SALES):
        perms = Group.objects.get(name=group).permissions.values_list("codename", flat=True)
        assert "export_order" in perms


def test_order_list_offers_managers_no_provisioning(manager_client):
    order = OrderFactory(active=True)

    response = manager_client.get(LIST_URL)

    form = response.context["action_form"]
    actions = {value for value, _ in form.fields["action"].choices} if form else set()
    provisioning = {f"{name}_selected" for name in ("place", "renew", "suspend", "cancel", "retry")}
    assert not actions & provisioning
    assert order.number in response.content.decode()
    assert "oneoffice/" not in response.content.decode()


def _bulk_orders(count: int) -> None:
    managers = [UserFactory(username=f"am{i}") for i in range(3)]
    for i in range(count):
        parent = OrderFactory(active=True, days_left=i, customer__account_manager=managers[i % 3])
        RenewalFactory(parent=parent)


def _query_count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("query", ["", "?renewal=due&q=Company&o=3", "?status__exact=active&o=-2"])
def test_order_list_query_count_does_not_grow_with_rows(
    manager_client, django_assert_max_num_queries, query
):
    _bulk_orders(5)
    with django_assert_max_num_queries(14):
        few = _query_count(manager_client, LIST_URL + query)
    _bulk_orders(45)
    with django_assert_max_num_queries(14):
        many = _query_count(manager_client, LIST_URL + query)

    assert few == many


def test_order_export_query_count_does_not_grow_with_rows(
    manager_client, django_assert_max_num_queries
):
    _bulk_orders(5)
    with django_assert_max_num_queries(10):
        few = _query_count(manager_client, EXPORT_URL)
    _bulk_orders(45)
    with django_assert_max_num_queries(10):
        many = _query_count(manager_client, EXPORT_URL)

    assert few == many


def test_order_list_total_counts_subscriptions_only(manager_client):
    subscription = OrderFactory(active=True)
    RenewalFactory(parent=subscription)
    OrderFactory()

    everything = manager_client.get(LIST_URL).context["cl"]
    active = manager_client.get(LIST_URL + "?status__exact=active").context["cl"]

    assert (everything.result_count, everything.full_result_count) == (2, 2)
    # A filtered page counts once: no second count of the whole table.
    assert (active.result_count, active.full_result_count) == (1, None)


@pytest.mark.parametrize(
    "query",
    [
        "?renewal=lapsed",
        "?q=Company",
        "?attention=yes",
        "?status__exact=active&duration__exact=yearly&o=4",
        "?current_term_end__year=2031",
        "?customer__account_manager__isnull=True",
    ],
)
def test_order_export_matches_the_list_for_each_filter(manager_client, query):
    for i in range(12):
        OrderFactory(
            placed=True,
            status=[Order.Status.ACTIVE, Order.Status.PENDING, Order.Status.SUSPENDED][i % 3],
            days_left=[-5, 3, 40, 2000][i % 4],
            duration=[Order.Duration.MONTHLY, Order.Duration.YEARLY][i % 2],
            pending_action="place" if i % 3 == 1 else "",
            customer__account_manager=UserFactory() if i % 2 else None,
        )
    OrderFactory(active=True, current_term_end=date(2031, 6, 1))

    listed = [order.number for order in manager_client.get(LIST_URL + query).context["cl"].queryset]

    assert listed
    assert [row[0] for row in _export(manager_client, query)[1:]] == listed


def test_order_list_export_button_carries_the_current_filters(manager_client):
    OrderFactory(active=True)

    html = manager_client.get(LIST_URL + "?status__exact=active&q=Company&p=1").content.decode()

    href = re.search(rf'href="({re.escape(EXPORT_URL)}[^"]*)"', html).group(1)
    url = urlsplit(href.replace("&amp;", "&"))
    assert parse_qs(url.query) == {"status__exact": ["active"], "q": ["Company"]}
