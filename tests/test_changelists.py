"""The order list, call log and customer list at scale: one count per page, and a date hierarchy
that reads the column's first and last value; search by id exactly (tests/test_search.py has
what search finds)."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders.models import Order
from portal.models import ProvisioningCall
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db

ORDERS = reverse("admin:orders_order_changelist")
CUSTOMERS = reverse("admin:customers_customer_changelist")
CALLS = reverse("admin:portal_provisioningcall_changelist")


@pytest.fixture
def manager_client(client, manager_user):
    client.force_login(manager_user)
    return client


def _listed(client, url: str, query: dict) -> list:
    response = client.get(url, query)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def _sql(client, url: str, query: dict | None = None) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, query or {}).status_code == 200
    return [q["sql"] for q in queries]


@pytest.mark.parametrize("typed", ["O-7QK4M2XZ9P", "o-7qk4m2xz9p", "  O-7QK4M2XZ9P "])
def test_order_list_search_by_order_id_finds_exactly_that_order(manager_client, typed):
    wanted = OrderFactory(number="O-7QK4M2XZ9P", status=Order.Status.ACTIVE)
    OrderFactory(number="O-7QK4M2XZ9P2", status=Order.Status.ACTIVE)
    OrderFactory(number="XO-7QK4M2XZ9P", status=Order.Status.ACTIVE)

    assert _listed(manager_client, ORDERS, {"q": typed}) == [wanted]


def test_order_list_search_by_customer_id_or_words_of_its_name(manager_client):
    acme = CustomerFactory(code="C-ACME22222", name="Acme Shipping SA")
    mine = OrderFactory(customer=acme)
    big = OrderFactory(customer=CustomerFactory(code="C-BIGACME22", name="Big Acme Ltd"))

    assert _listed(manager_client, ORDERS, {"q": "C-ACME22222"}) == [mine]
    assert _listed(manager_client, ORDERS, {"q": "acme ship"}) == [mine]
    assert _listed(manager_client, ORDERS, {"q": "Shipping"}) == [mine]
    assert set(_listed(manager_client, ORDERS, {"q": "acme"})) == {mine, big}


def test_order_list_search_of_something_no_id_can_be_finds_nothing(manager_client):
    OrderFactory(customer=CustomerFactory(name="Zebra"))

    assert _listed(manager_client, ORDERS, {"q": "%"}) == []
    assert _listed(manager_client, ORDERS, {"q": "O-'; --"}) == []


def test_customer_list_search_by_customer_id_or_words(manager_client):
    acme = CustomerFactory(code="C-ACME22222", name="Acme Shipping SA")
    other = CustomerFactory(code="ACME", name="Other Ltd")

    assert _listed(manager_client, CUSTOMERS, {"q": "c-acme22222"}) == [acme]
    assert _listed(manager_client, CUSTOMERS, {"q": "acme"}) == [acme, other]
    assert _listed(manager_client, CUSTOMERS, {"q": "ltd"}) == [other]


def test_call_log_search_by_order_id_or_customer(manager_client):
    order = OrderFactory(number="O-AAAAAAAAAA")
    other = OrderFactory(number="O-BBBBBBBBBB")
    call = ProvisioningCall.objects.create(method="createFirstOrder", params={}, order=order)
    ProvisioningCall.objects.create(method="createFirstOrder", params={}, order=other)
    registered = ProvisioningCall.objects.create(
        method="createCustomer", params={}, customer=order.customer
    )

    assert _listed(manager_client, CALLS, {"q": "o-aaaaaaaaaa"}) == [call]
    # A customer's calls: its registration and its orders'.
    assert _listed(manager_client, CALLS, {"q": order.customer.code}) == [registered, call]


@pytest.mark.parametrize("url", [ORDERS, CUSTOMERS, CALLS])
def test_list_counts_once_and_lists_years_without_distinct(manager_client, url):
    customer = CustomerFactory()
    for year in (2027, 2029):
        order = OrderFactory(active=True, customer=customer, current_term_end=date(year, 5, 1))
        ProvisioningCall.objects.create(method="createFirstOrder", params={}, order=order)
    manager_client.get(url)

    queries = _sql(manager_client, url)

    assert sum("COUNT(" in sql for sql in queries) == 1
    assert not any("DISTINCT" in sql for sql in queries)


def test_order_list_date_hierarchy_lists_every_year_between_first_and_last(manager_client):
    for year in (2027, 2029):
        OrderFactory(active=True, current_term_end=date(year, 5, 1))

    html = manager_client.get(ORDERS).content.decode()
    months = manager_client.get(ORDERS, {"current_term_end__year": "2029"}).content.decode()

    assert all(f"current_term_end__year={year}" in html for year in (2027, 2028, 2029))
    assert "current_term_end__year=2026" not in html and "__year=2030" not in html
    assert "current_term_end__month=5" in months and "current_term_end__month=6" not in months


def test_filtered_order_list_counts_once_and_offers_show_all(manager_client):
    OrderFactory(active=True, current_term_end=date(2027, 5, 1))
    OrderFactory(cancelled=True, current_term_end=date(2027, 5, 1))
    manager_client.get(ORDERS)

    queries = _sql(manager_client, ORDERS, {"status__exact": "active"})
    html = manager_client.get(ORDERS, {"status__exact": "active"}).content.decode()

    assert sum("COUNT(" in sql for sql in queries) == 1
    assert "Show all" in html


def test_order_list_search_result_dates_its_own_rows(manager_client):
    acme = CustomerFactory(code="C-ACME22222")
    for year in (2027, 2029):
        OrderFactory(active=True, customer=acme, current_term_end=date(year, 5, 1))
    OrderFactory(active=True, current_term_end=date(2031, 5, 1))

    html = manager_client.get(ORDERS, {"q": "C-ACME22222"}).content.decode()

    assert all(f"current_term_end__year={year}" in html for year in (2027, 2028, 2029))
    assert "current_term_end__year=2031" not in html
