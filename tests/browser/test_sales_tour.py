"""A sales person's day, one click at a time: customer, register, order, place, renew (too
early, then inside the window through its confirmation), suspend and cancel from the page's
buttons and from bulk actions, and the call log."""

import re
from datetime import timedelta

from django.utils import timezone

from customers.models import Customer
from orders.models import Order
from orders.renewals import terms
from portal.models import ProvisioningCall
from tests.browser.conftest import login, messages
from tests.browser.demo import LONG_NAME, due_in, registered, subscription


def _click_button(page, label: str) -> None:
    tools = page.locator(".object-tools")
    button = tools.get_by_role("button", name=label).or_(tools.get_by_role("link", name=label))
    with page.expect_navigation():
        button.click()


def _confirm(page) -> None:
    with page.expect_navigation():
        page.locator("input[type=submit][value^='Yes,']").click()


def _run_action(page, name: str) -> None:
    page.select_option("select[name=action]", name)
    with page.expect_navigation():
        page.locator("button[name=index]").click()


def test_sales_tour_from_new_customer_to_cancelled_subscription(page, sales_user, sandbox):
    login(page, sales_user)

    # A new customer, saved, lands on its own page with the Register button.
    with page.expect_navigation():
        page.locator("#content-main tr.model-customer th a").click()
    with page.expect_navigation():
        page.get_by_role("link", name="Add customer").click()
    page.fill("#id_name", "Zeta Shipping Ltd")
    page.fill("#id_admin_email", "it@zeta.example")
    page.fill("#id_admin_phone", "+30 210 555 0199")
    page.fill("#id_admin_display_name", "Nikos Zeta")
    with page.expect_navigation():
        page.click("input[name=_save]")
    customer = Customer.objects.get(name="Zeta Shipping Ltd")
    assert page.url.endswith(f"/admin/customers/customer/{customer.pk}/change/")
    _click_button(page, "Register on OneOffice")
    assert any("registered" in m for m in messages(page))
    assert page.locator(".field-status .readonly").inner_text() == "registered"

    # From the customer's page, an order for this customer; saved, it lands on its own page.
    with page.expect_navigation():
        page.get_by_role("link", name="Add order for this customer").click()
    assert page.locator("#id_customer option:checked").inner_text() == str(customer)
    page.select_option("#id_product", "oo-std")
    page.fill("#id_licenses", "15")
    page.select_option("#id_duration", "monthly")
    with page.expect_navigation():
        page.click("input[name=_save]")
    order = Order.objects.get(customer=customer)
    assert page.url.endswith(f"/admin/orders/order/{order.pk}/change/")
    _click_button(page, "Place on OneOffice")
    assert any(f"{order}: placed" in m for m in messages(page))
    order.refresh_from_db()
    assert order.status == "active"

    # Renew now is too early: it is not offered, and the page says when the window opens.
    opens = order.current_term_end - timedelta(days=15)
    tools = page.locator(".object-tools")
    assert tools.get_by_role("link", name="Suspend").count() == 1
    assert tools.get_by_role("link", name="Renew").count() == 0
    note = page.locator(".not-offered").inner_text()
    assert note.startswith("Renew is not offered") and f"from {opens:%d %b %Y}" in note
    assert not order.renewals.exists()

    # Inside the window: the confirmation shows the new term exactly as it is then recorded.
    due = subscription(customer, placed_on=due_in(5), licenses=7)
    page.goto(f"/admin/orders/order/{due.pk}/change/")
    start = terms.renewal_start(due.current_term_end, timezone.localdate())
    end = terms.term_end(start, "monthly")
    _click_button(page, "Renew")
    confirmation = page.locator("#content").inner_text()
    assert f"from {start:%d %b %Y} to {end:%d %b %Y}" in confirmation
    assert "Too early" not in confirmation
    _confirm(page)
    renewal = due.renewals.get()
    assert (renewal.status, renewal.term_start, renewal.term_end) == ("active", start, end)
    assert any(f"{renewal}: renewed" in m for m in messages(page))
    assert "No renewals yet" not in page.content()

    # Suspend and Cancel, from the page's buttons: each asks first.
    sent = len(sandbox.requests)
    _click_button(page, "Suspend")
    assert "/oneoffice/suspend/" in page.url
    assert len(sandbox.requests) == sent  # the click only asked
    assert "OneOffice has no resume call" in page.locator("#content").inner_text()
    _confirm(page)
    assert any(f"{due}: suspended" in m for m in messages(page))
    _click_button(page, "Cancel subscription")
    assert "/oneoffice/cancel/" in page.url
    assert "cannot undo it" in page.locator("#content").inner_text()
    _confirm(page)
    due.refresh_from_db()
    assert due.status == "cancelled"

    # The steps are on the order's page, with who and when (and the zone).
    timeline = page.locator(".field-timeline").inner_text()
    for method in ("createFirstOrder", "createRenewalOrder", "suspendOrder", "cancelOrder"):
        assert method in timeline
    assert "sally" in timeline and "UTC" in timeline
    # A cancelled subscription cannot be edited: nothing to save.
    assert page.locator("input[name=_save]").count() == 0

    # The call log has every call, newest first.
    with page.expect_navigation():
        page.get_by_role("link", name="Open the call log").click()
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == ProvisioningCall.objects.filter(order__in=[due, renewal]).count()


def test_bulk_suspend_and_cancel_ask_first(page, sales_user, sandbox):
    customer = registered(name=LONG_NAME)
    first, second = (subscription(customer, placed_on=due_in(20)) for _ in range(2))
    login(page, sales_user)
    page.goto("/admin/orders/order/")

    for order in (first, second):
        page.check(f"input.action-select[value='{order.pk}']")
    sent = len(sandbox.requests)
    _run_action(page, "suspend_selected")
    items = page.locator(".provisioning-confirmation li").all_inner_texts()
    assert len(items) == 2 and all("Suspend subscription" in item for item in items)
    assert len(sandbox.requests) == sent
    _confirm(page)
    assert sorted(m for m in messages(page) if "suspended" in m) == sorted(
        f"{o}: suspended." for o in (first, second)
    )

    page.check(f"input.action-select[value='{first.pk}']")
    _run_action(page, "cancel_selected")
    with page.expect_navigation():
        page.get_by_role("link", name="No, take me back").click()
    assert re.search(r"/admin/orders/order/$", page.url)
    first.refresh_from_db()
    assert first.status == "suspended"
    page.check(f"input.action-select[value='{first.pk}']")
    _run_action(page, "cancel_selected")
    _confirm(page)
    first.refresh_from_db()
    assert first.status == "cancelled"


def test_select_all_then_suspend_confirms_and_follows_the_batch(page, sales_user, sandbox):
    customer = registered()
    subs = [subscription(customer, placed_on=due_in(20)) for _ in range(105)]
    login(page, sales_user)
    page.goto("/admin/orders/order/")

    # One page shows 100; "Select all 105 orders" takes the rest.
    page.check("#action-toggle")
    page.get_by_role("button", name="Select all 105 orders").click()
    sent = len(sandbox.requests)
    _run_action(page, "suspend_selected")
    items = page.locator(".provisioning-confirmation li").all_inner_texts()
    assert len(items) == 51
    assert all("Suspend subscription" in item for item in items[:50])
    assert items[-1] == "… and 55 more orders."
    assert len(sandbox.requests) == sent

    _confirm(page)
    assert re.search(r"/admin/portal/batch/\d+/change/$", page.url)
    page.wait_for_function(
        "document.querySelector('.batch-count').innerText.startsWith('105 of 105')",
        timeout=60_000,
    )
    assert page.locator("tr.batch-item.state-done").count() == 100  # the first page of items
    suspended = Order.objects.filter(pk__in=[s.pk for s in subs], status="suspended")
    assert suspended.count() == 105
    numbers = [r["json"]["params"]["id"] for r in sandbox.requests[sent:]]
    assert sorted(numbers) == sorted(s.number for s in subs)
