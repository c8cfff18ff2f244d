"""Batches and auto-renew as sales staff meet them: a bulk action on more than a handful of
orders, its page with each result and what to do about those that did not go through, and
the auto-renew tick on a customer and on a subscription."""

import re

from orders.models import Order
from tests.browser.conftest import login, messages
from tests.browser.demo import due_in, registered, subscription
from tests.factories import OrderFactory


def _run_action(page, name: str) -> None:
    page.select_option("select[name=action]", name)
    with page.expect_navigation():
        page.locator("button[name=index]").click()


def test_bulk_place_as_a_batch_shows_each_result_and_retries_what_did_not_go_through(
    page, sales_user, sandbox
):
    customer = registered()
    drafts = [OrderFactory(customer=customer) for _ in range(7)]
    # The first two sent: refused with OneOffice's words, then an unknown outcome.
    sandbox.inject("createFirstOrder", "respond", status=400, body='"licence pool exhausted"')
    sandbox.inject("createFirstOrder", "500-after")
    login(page, sales_user)
    page.goto("/admin/orders/order/?status__exact=draft")
    page.check("#action-toggle")
    _run_action(page, "place_selected")

    assert re.search(r"/admin/portal/batch/\d+/change/$", page.url)
    assert page.locator(".batch-count").inner_text().startswith("7 of 7")
    assert page.locator("tr.batch-item.state-done").count() == 5
    assert "licence pool exhausted" in page.locator("tr.batch-item.state-refused").inner_text()
    assert page.locator("tr.batch-item.state-unknown").count() == 1
    assert "Not everything went through." in page.locator(".batch-next").inner_text()

    with page.expect_navigation():
        page.get_by_role("button", name="Retry them").click()
    assert re.search(r"/admin/portal/batch/\d+/change/$", page.url)
    assert page.locator(".batch-count").inner_text().startswith("1 of 1")
    assert page.locator("tr.batch-item.state-done").count() == 1
    placed = Order.objects.filter(pk__in=[d.pk for d in drafts], status="active")
    assert placed.count() == 6
    # The unknown one was settled with its own id, not placed twice.
    assert len(sandbox.snapshot()["orders"]) == 6

    # Batches are listed under the provisioning section.
    page.goto("/admin/")
    with page.expect_navigation():
        page.get_by_role("link", name="Batches").first.click()
    assert page.locator("#result_list tbody tr").count() == 2


def test_sales_tick_auto_renew_on_a_customer_and_on_a_subscription(page, sales_user, sandbox):
    customer = registered()
    active = subscription(customer, placed_on=due_in(20))
    login(page, sales_user)

    page.goto(f"/admin/customers/customer/{customer.pk}/change/")
    page.check("#id_auto_renew_default")
    with page.expect_navigation():
        page.locator("input[name=_save]").click()
    assert any("was changed successfully" in m for m in messages(page))
    customer.refresh_from_db()
    assert customer.auto_renew_default is True

    page.goto(f"/admin/orders/order/{active.pk}/change/")
    assert not page.is_checked("#id_auto_renew")
    page.check("#id_auto_renew")
    with page.expect_navigation():
        page.locator("input[name=_save]").click()
    active.refresh_from_db()
    assert active.auto_renew is True
    assert active.status == "active"
