"""Error pages and their log lines: a 403 is the user's answer, logged once without a traceback."""

import io
import logging

import pytest
from django.urls import reverse

from tests.admin_urls import button_url
from tests.factories import OrderFactory

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
