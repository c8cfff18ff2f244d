"""The search box in every admin page's header and its results page: customers, orders and
calls grouped by kind, each linking to its page, and nothing the person may not open."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from tests.factories import CustomerFactory, OrderFactory, ProvisioningCallFactory, UserFactory

pytestmark = pytest.mark.django_db

SEARCH = reverse("admin:search")


@pytest.fixture
def book(db):
    cafe = CustomerFactory(code="C-CAFE234567", name="Café Olé")
    subscription = OrderFactory(customer=cafe, number="O-CAFE234567")
    renewal = OrderFactory(customer=cafe, number="O-RENEW23456", parent=subscription)
    call = ProvisioningCallFactory(order=subscription, customer=None)
    other = OrderFactory(customer=CustomerFactory(name="Zebra Shipping SA"))
    return {
        "cafe": cafe,
        "subscription": subscription,
        "renewal": renewal,
        "call": call,
        "other": other,
    }


def _group(html: str, key: str) -> str | None:
    found = re.search(
        rf'<section class="module search-group" id="found-{key}">(.*?)</section>', html, re.S
    )
    return found.group(1) if found else None


def _links(section: str) -> list[str]:
    return re.findall(r'<td class="found-label"><a href="([^"]+)">', section)


@pytest.mark.parametrize(
    "url",
    [
        reverse("admin:index"),
        reverse("admin:orders_order_changelist"),
        reverse("admin:customers_customer_add"),
        reverse("admin:orders_renewaldue_changelist"),
        reverse("dashboard"),
    ],
)
def test_every_admin_page_has_the_search_box_in_its_header(client, manager_user, url):
    client.force_login(manager_user)

    html = client.get(url).content.decode()
    header = re.search(r'<header id="header">(.*?)</header>', html, re.S).group(1)

    assert f'<form id="global-search" role="search" method="get" action="{SEARCH}">' in header
    assert 'name="q"' in header


def test_the_sign_in_page_has_no_search_box(client):
    html = client.get(reverse("admin:login")).content.decode()

    assert 'id="login-form"' in html and 'id="global-search"' not in html


def test_search_page_groups_customers_orders_and_calls_with_links(client, manager_user, book):
    client.force_login(manager_user)

    html = client.get(SEARCH, {"q": "cafe"}).content.decode()
    customers, orders, calls = (_group(html, key) for key in ("customers", "orders", "calls"))

    assert _links(customers) == [reverse("admin:customers_customer_change", args=[book["cafe"].pk])]
    # The customer's subscription; its renewal only when its own id is typed.
    assert _links(orders) == [reverse("admin:orders_order_change", args=[book["subscription"].pk])]
    assert _links(calls) == [
        reverse("admin:portal_provisioningcall_change", args=[book["call"].pk])
    ]
    assert "Zebra" not in html and "Café Olé (C-CAFE234567)" in customers
    assert 'value="cafe"' in html  # the header's box keeps what was typed
    assert reverse("admin:orders_order_changelist") + "?q=cafe" in orders


def test_search_page_finds_a_renewal_by_its_own_id(client, manager_user, book):
    client.force_login(manager_user)

    html = client.get(SEARCH, {"q": "renew23456"}).content.decode()

    # Newest first: the renewal, and the subscription it renews.
    assert _links(_group(html, "orders")) == [
        reverse("admin:orders_order_change", args=[book["renewal"].pk]),
        reverse("admin:orders_order_change", args=[book["subscription"].pk]),
    ]
    assert "renewal of O-CAFE234567" in html


def test_search_page_shows_ten_of_a_kind_and_links_to_the_list_for_the_rest(client, manager_user):
    many = CustomerFactory(name="Many Orders GmbH")
    for _ in range(12):
        OrderFactory(customer=many)
    client.force_login(manager_user)

    html = client.get(SEARCH, {"q": "many orders"}).content.decode()
    orders = _group(html, "orders")

    assert len(_links(orders)) == 10
    assert "Orders (first 10)" in orders
    assert re.search(
        r'The first 10 are shown: <a href="[^"]+\?q=many\+orders">see all in the order list</a>',
        orders,
    )


def test_search_page_shows_only_the_kinds_the_person_may_view(client, book):
    user = UserFactory(username="viewer")
    user.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(user)

    html = client.get(SEARCH, {"q": "cafe"}).content.decode()

    assert _links(_group(html, "customers")) == [
        reverse("admin:customers_customer_change", args=[book["cafe"].pk])
    ]
    assert _group(html, "orders") is None and _group(html, "calls") is None
    assert "O-CAFE234567" not in html


def test_a_person_who_may_view_none_of_the_kinds_is_told_so(client, book):
    user = UserFactory(username="nothing")
    user.user_permissions.add(Permission.objects.get(codename="view_price"))
    client.force_login(user)

    html = client.get(SEARCH, {"q": "cafe"}).content.decode()

    assert "nothing to search" in html and "Café" not in html


@pytest.mark.parametrize("role", ["sales_user", "manager_user"])
def test_every_link_the_search_page_shows_opens_for_that_person(client, book, role, request):
    client.force_login(request.getfixturevalue(role))

    html = client.get(SEARCH, {"q": "cafe"}).content.decode()
    links = re.findall(r'<section class="module search-group".*?</section>', html, re.S)
    hrefs = [href for section in links for href in re.findall(r'href="([^"]+)"', section)]

    assert len(hrefs) >= 6
    for href in hrefs:
        assert client.get(href.replace("&amp;", "&")).status_code == 200, href


def test_search_page_needs_a_signed_in_staff_user(client, book):
    response = client.get(SEARCH, {"q": "cafe"})

    assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))


def test_search_page_queries_do_not_grow_with_what_it_finds(
    client, manager_user, django_assert_max_num_queries
):
    for n in range(15):
        customer = CustomerFactory(name=f"Growing {n} SA")
        order = OrderFactory(customer=customer)
        ProvisioningCallFactory(order=order, customer=None)
    client.force_login(manager_user)

    with django_assert_max_num_queries(14):
        html = client.get(SEARCH, {"q": "growing"}).content.decode()

    assert html.count('class="found-label"') == 30
