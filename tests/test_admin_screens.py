"""Screens outside the browser suite: error pages and their log lines (a 403 is the user's answer,
logged once without a traceback), and the order form's customer choice."""

import io
import logging

import pytest
from django.urls import reverse

from orders.models import Order
from tests.admin_urls import button_url
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def console():
    """What the root console handler writes, as `make run`'s terminal shows it."""
    [handler] = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    stream = io.StringIO()
    old = handler.setStream(stream)
    yield stream
    handler.setStream(old)


def test_forbidden_page_logs_one_line_and_no_traceback(client, manager_user, console):
    client.force_login(manager_user)

    response = client.get(reverse("admin:orders_order_add"))

    assert response.status_code == 403
    assert "admin/base_site.html" in [t.name for t in response.templates]
    log = console.getvalue()
    assert log.count("Forbidden (Permission denied): /admin/orders/order/add/") == 1
    assert "Traceback" not in log


def test_button_url_opened_with_get_is_a_405_page_inside_the_admin(client, sales_user):
    order = OrderFactory()
    client.force_login(sales_user)

    response = client.get(button_url(order, "place"))

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "admin/portal/method_not_allowed.html" in [t.name for t in response.templates]
    assert reverse("admin:orders_order_change", args=[order.pk]) in response.content.decode()


def test_order_form_refuses_a_draft_customer_by_name(client, sales_user, sandbox):
    draft = CustomerFactory()
    client.force_login(sales_user)

    response = client.post(
        reverse("admin:orders_order_add"),
        {
            "customer": draft.pk,
            "number": "",
            "product": "oo-std",
            "licenses": 5,
            "duration": "monthly",
            "renewals-TOTAL_FORMS": 0,
            "renewals-INITIAL_FORMS": 0,
        },
    )

    errors = response.context["adminform"].form.errors["customer"]
    assert errors == [
        "Select a valid choice: a customer registered on OneOffice (register a draft customer "
        "first)."
    ]
    assert not Order.objects.exists() and sandbox.requests == []
