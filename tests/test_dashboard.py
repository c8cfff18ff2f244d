"""The managers' dashboard: its figures, its bars, who may see it, and its query count."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders import reports
from orders.models import Order
from tests.factories import CustomerFactory, OrderFactory, RenewalFactory, UserFactory

URL = reverse("dashboard")

pytestmark = pytest.mark.django_db


def _figure(html: str, name: str) -> int:
    match = re.search(rf'data-figure="{re.escape(name)}">\s*(\d+)\s*<', html)
    assert match, name
    return int(match.group(1))


@pytest.fixture
def manager_client(client, manager_user):
    client.force_login(manager_user)
    return client


def test_dashboard_subscriptions_by_status(manager_client):
    for _ in range(3):
        OrderFactory(active=True, days_left=100)
    OrderFactory(suspended=True, days_left=100)
    OrderFactory(cancelled=True, days_left=100)
    draft = OrderFactory()
    RenewalFactory(parent=draft, history=False)

    html = manager_client.get(URL).content.decode()

    assert _figure(html, "status-active") == 3
    assert _figure(html, "status-suspended") == 1
    assert _figure(html, "status-cancelled") == 1
    assert _figure(html, "status-draft") == 1
    assert _figure(html, "status-failed") == 0


def test_dashboard_licenses_by_product_counts_active_and_suspended(manager_client):
    OrderFactory(active=True, days_left=100, product="oo-ent", licenses=10)
    OrderFactory(suspended=True, days_left=100, product="oo-ent", licenses=5)
    OrderFactory(cancelled=True, days_left=100, product="oo-ent", licenses=1000)
    OrderFactory(product="oo-ent", licenses=2000)
    OrderFactory(active=True, days_left=100, product="erp-lim", licenses=7)

    html = manager_client.get(URL).content.decode()

    assert _figure(html, "licenses-oo-ent") == 15
    assert _figure(html, "licenses-erp-lim") == 7
    assert _figure(html, "licenses-oo-lite") == 0


def test_order_renewals_per_week_buckets_the_next_eight_weeks():
    today = timezone.localdate()
    for days in (0, 6, 7, 13, 55, 56, -1):
        OrderFactory(active=True, days_left=days, licenses=2)
    OrderFactory(suspended=True, days_left=20, licenses=3)
    OrderFactory(cancelled=True, days_left=20)
    OrderFactory(pending=True)

    weeks = reports.order_renewals_per_week(today=today)

    assert [week.count for week in weeks] == [2, 2, 1, 0, 0, 0, 0, 1]
    assert [week.licenses for week in weeks] == [4, 4, 3, 0, 0, 0, 0, 2]
    assert weeks[0].start == today
    assert weeks[7].end == today + timedelta(days=55)


def test_dashboard_renders_weekly_bars_with_numbers(manager_client):
    for days in (1, 2, 3, 8):
        OrderFactory(active=True, days_left=days)

    html = manager_client.get(URL).content.decode()

    bars = re.findall(r'<span class="bar[^"]*" style="width: (\d+)%" data-count="(\d+)">', html)
    assert [(int(width), int(count)) for width, count in bars] == [
        (100, 3),
        (33, 1),
        *[(0, 0)] * 6,
    ]
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert re.search(r"<td class=\"number\">3</td>", html)
    first_week = re.search(r'<tr class="week">\s*<th scope="row"><a href="([^"]+)"', html)
    listed = manager_client.get(first_week.group(1).replace("&amp;", "&")).context["cl"]
    assert listed.result_count == 3


def test_dashboard_renewal_states_link_to_filtered_list(manager_client):
    OrderFactory(active=True, days_left=3)
    OrderFactory(active=True, days_left=15)
    OrderFactory(active=True, days_left=-2)
    OrderFactory(cancelled=True, days_left=-2)

    html = manager_client.get(URL).content.decode()

    assert _figure(html, "due") == 2
    assert _figure(html, "lapsed") == 1
    assert reverse("admin:orders_order_changelist") + "?renewal=due" in html


def test_dashboard_needs_attention_matches_the_lists(manager_client):
    CustomerFactory(status="pending")
    CustomerFactory(status="pending", lease_until=timezone.now() + timedelta(minutes=5))
    OrderFactory(pending=True)
    renewed = OrderFactory(active=True, days_left=100)
    RenewalFactory(parent=renewed, pending=True)
    OrderFactory(active=True, days_left=100)

    html = manager_client.get(URL).content.decode()

    customers_url = reverse("admin:customers_customer_changelist") + "?attention=yes"
    orders_url = reverse("admin:orders_order_changelist") + "?attention=yes"
    assert _figure(html, "attention-customers") == 1
    assert _figure(html, "attention-orders") == 2
    assert customers_url in html and orders_url in html
    assert manager_client.get(customers_url).context["cl"].result_count == 1
    assert manager_client.get(orders_url).context["cl"].result_count == 2


@pytest.mark.parametrize("role", ["manager_user", "sales_user", "superuser"])
def test_dashboard_visible_to_staff_who_view_orders(client, request, role):
    client.force_login(request.getfixturevalue(role))

    response = client.get(URL)

    assert response.status_code == 200
    assert "Terms ending per week" in response.content.decode()


def test_dashboard_offers_no_provisioning(manager_client):
    OrderFactory(active=True, days_left=3)

    html = manager_client.get(URL).content.decode()

    assert "Terms ending per week" in html.split('id="content-main"')[1]
    assert "<form" not in html.split('id="content-main"')[1]


def test_dashboard_refused_without_view_order(client):
    user = UserFactory(username="clerk")
    user.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(user)

    assert client.get(URL).status_code == 403


def test_dashboard_requires_staff_login(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_admin_index_links_to_dashboard_for_order_viewers(client, manager_user):
    client.force_login(manager_user)

    html = client.get(reverse("admin:index")).content.decode()

    assert f'href="{URL}"' in html
    assert f'href="{reverse("admin:orders_renewaldue_changelist")}"' in html


def test_admin_index_hides_dashboard_link_without_view_order(client):
    user = UserFactory(username="clerk")
    user.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(user)

    html = client.get(reverse("admin:index")).content.decode()

    assert f'href="{reverse("admin:customers_customer_changelist")}"' in html
    assert f'href="{URL}"' not in html


def _fill(count: int) -> None:
    products = Order.Product.values
    statuses = [Order.Status.ACTIVE, Order.Status.SUSPENDED, Order.Status.CANCELLED]
    for i in range(count):
        OrderFactory(
            placed=True,
            status=statuses[i % 3],
            days_left=i % 60,
            product=products[i % len(products)],
        )
    CustomerFactory(status="pending")


def test_dashboard_query_count_does_not_grow_with_rows(
    manager_client, django_assert_max_num_queries
):
    _fill(5)
    with django_assert_max_num_queries(18), CaptureQueriesContext(connection) as few:
        assert manager_client.get(URL).status_code == 200
    _fill(45)
    with django_assert_max_num_queries(18), CaptureQueriesContext(connection) as many:
        assert manager_client.get(URL).status_code == 200

    assert len(few) == len(many)
