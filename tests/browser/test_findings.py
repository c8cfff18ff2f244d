"""What a new user ran into, one test each: fault handling as a user sees it, double clicks,
dead ends, misleading labels, times without a zone, the lockout message."""

import re

from django.utils import timezone

from customers.models import Customer
from orders.models import Order
from tests.browser.conftest import PASSWORD, login, messages
from tests.browser.demo import due_in, registered, subscription
from tests.factories import CustomerFactory, OrderFactory


def _click(page, label: str) -> None:
    tools = page.locator(".object-tools")
    with page.expect_navigation():
        tools.get_by_role("button", name=label).or_(tools.get_by_role("link", name=label)).click()


def test_vendor_fault_pending_needs_attention_then_retry(page, sales_user, sandbox):
    order = OrderFactory(customer=registered())
    login(page, sales_user)
    page.goto(f"/admin/orders/order/{order.pk}/change/")
    sandbox.inject("createFirstOrder", "500-after")

    _click(page, "Place on OneOffice")

    assert any(m.startswith("Outcome unknown.") for m in messages(page))
    assert page.locator(".field-status .readonly").inner_text() == "pending"
    assert "so far" in page.locator(".field-attempts_display .readonly").inner_text()
    page.goto("/admin/orders/order/")
    with page.expect_navigation():
        page.locator("#changelist-filter").get_by_role("link", name="Needs attention").click()
    page.wait_for_url(re.compile(r"attention=yes"))
    assert page.locator("#result_list .field-order_id").all_inner_texts() == [order.number]
    assert page.locator("#result_list .badge").inner_text() == "pending"
    with page.expect_navigation():
        page.get_by_role("link", name=order.number).click()
    _click(page, "Retry")
    assert any(f"{order}: retried, now active." == m for m in messages(page))
    order.refresh_from_db()
    assert order.status == "active"
    # The vendor holds one subscription: the retry was settled by "duplicate", not re-created.
    assert len(sandbox.snapshot()["orders"]) == 1
    assert page.locator(".field-attempts_display .readonly").inner_text() == (
        "2 at the last operation"
    )


def test_double_clicked_place_sends_one_request(page, sales_user, sandbox, monkeypatch):
    order = OrderFactory(customer=registered())
    login(page, sales_user)
    page.goto(f"/admin/orders/order/{order.pk}/change/")
    posts = []
    page.on("request", lambda r: r.method == "POST" and posts.append(r.url))
    # The vendor is slow: the second click comes while the first request is on the wire.
    monkeypatch.setattr(sandbox, "slow_seconds", 1.5)
    sandbox.inject("createFirstOrder", "slow")
    box = (
        page.locator(".object-tools")
        .get_by_role("button", name="Place on OneOffice")
        .bounding_box()
    )
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    page.mouse.click(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(rf"/admin/orders/order/{order.pk}/change/$"))
    page.locator("ul.messagelist").wait_for()

    assert len(posts) == 1
    assert [r["rpc_method"] for r in sandbox.requests].count("createFirstOrder") == 1
    assert messages(page) == [f"{order}: placed, now active."]
    order.refresh_from_db()
    assert order.status == "active"


def test_button_url_opened_by_hand_explains_inside_the_admin(page, sales_user):
    order = OrderFactory(customer=registered())
    login(page, sales_user)
    page.expected_statuses = {405}

    response = page.goto(f"/admin/orders/order/{order.pk}/oneoffice/place/")

    assert response.status == 405
    assert page.locator("#header #site-name").count() == 1
    assert page.locator(".breadcrumbs a", has_text=order.number).count() == 1
    assert "nothing has been sent" in page.locator("#content").inner_text()
    with page.expect_navigation():
        page.get_by_role("link", name=f"Go to {order.number}").click()
    page.wait_for_url(re.compile(rf"/admin/orders/order/{order.pk}/change/$"))


def test_forbidden_user_page_is_inside_the_admin(page, sales_user):
    login(page, sales_user)
    page.expected_statuses = {403}

    response = page.goto(f"/admin/auth/user/{sales_user.pk}/change/")

    assert response.status == 403
    assert page.locator("#header #site-name").inner_text() == "OneOffice reseller portal"
    assert page.locator("#user-tools").count() == 1
    assert page.locator("#nav-sidebar .app-orders").count() == 1


def test_customer_page_lists_orders_and_adds_one_for_it(page, sales_user, sandbox):
    customer = registered(name="Theta Audit Ltd")
    orders = [subscription(customer, placed_on=due_in(30 - n)) for n in range(3)]
    login(page, sales_user)
    page.goto(f"/admin/customers/customer/{customer.pk}/change/")

    listed = page.locator("#customer-subscriptions tbody tr td:first-child").all_inner_texts()
    assert sorted(listed) == sorted(o.number for o in orders)
    timeline = page.locator("#customer-timeline").inner_text()
    assert "createCustomer" in timeline and timeline.count("createFirstOrder") == 3
    # Registered, its data is OneOffice's; only the account manager is ours to change.
    assert page.locator("#id_name").count() == 0
    assert page.locator("#id_account_manager").count() == 1
    assert page.locator("input[name=_save]").count() == 1
    with page.expect_navigation():
        page.get_by_role("link", name="All orders of this customer").click()
    page.wait_for_url(re.compile(r"customer__id__exact="))
    page.locator("#result_list").wait_for()
    assert len(page.locator("#result_list tbody tr").all()) == 3

    page.goto(f"/admin/customers/customer/{customer.pk}/change/")
    with page.expect_navigation():
        page.get_by_role("link", name="Add order for this customer").click()
    assert page.locator("#id_customer option:checked").inner_text() == str(customer)


def test_order_form_offers_only_registered_customers(page, sales_user):
    ready = registered(name="Iota Registered Ltd")
    CustomerFactory(name="Iota Draft Ltd")
    login(page, sales_user)
    page.goto("/admin/orders/order/add/")

    page.locator(".field-customer .select2-selection").click()
    page.locator(".select2-search__field").fill("Iota")
    page.wait_for_selector(".select2-results__option:not(.loading-results)")
    page.wait_for_load_state("networkidle")
    offered = page.locator(".select2-results__option").all_inner_texts()

    assert offered == [str(ready)]


def test_new_order_lands_on_its_page_with_place(page, sales_user):
    customer = registered()
    login(page, sales_user)
    page.goto(f"/admin/orders/order/add/?customer={customer.pk}")
    page.select_option("#id_product", "oo-lite")
    page.fill("#id_licenses", "5")
    page.select_option("#id_duration", "yearly")

    with page.expect_navigation():
        page.click("input[name=_save]")

    order = Order.objects.get(customer=customer)
    assert page.url.endswith(f"/admin/orders/order/{order.pk}/change/")
    assert page.locator(".object-tools").get_by_role("button", name="Place on OneOffice").count()
    # A draft has not been sent: no attempts to speak of, and a timeline that says so.
    assert page.locator(".field-attempts_display .readonly").inner_text() == "-"
    assert "Nothing sent to OneOffice yet" in page.locator(".field-timeline").inner_text()
    assert page.locator("#renewals-group").count() == 0  # a draft has no renewals to show


def test_settled_order_says_what_it_is_and_names_the_time_zone(page, sales_user, settings):
    settings.TIME_ZONE = "Europe/Athens"
    timezone.activate("Europe/Athens")
    customer = registered()
    order = subscription(customer, placed_on=due_in(20))
    login(page, sales_user)
    page.goto(f"/admin/orders/order/{order.pk}/change/")

    assert page.locator(".field-attempts_display .readonly").inner_text() == (
        "1 at the last operation"
    )
    assert "pending" not in page.locator(".field-attempts_display").inner_text()
    created = page.locator(".field-created_at .readonly").inner_text()
    assert re.search(r"\d{2}:\d{2} EE[SD]?T$", created), created
    assert re.search(r"EE[SD]?T", page.locator(".field-timeline").inner_text())
    # What was sent is fixed; only auto-renew is still a choice on a running subscription.
    assert page.locator("#id_licenses, #id_product, #id_number").count() == 0
    assert page.locator("#id_auto_renew").count() == 1
    assert "No renewals yet" in page.locator("#renewals-group").inner_text()
    page.goto("/admin/portal/provisioningcall/")
    assert re.search(
        r"EE[SD]?T",
        page.locator("#result_list tbody .field-started").first.inner_text(),
    )


def test_empty_renewals_due_says_so(page, manager_user):
    login(page, manager_user)
    page.goto("/admin/orders/renewaldue/")
    assert page.locator("#result_list tbody").inner_text().strip() == "Nothing is due for renewal."


def test_renewals_due_renew_asks_first(page, sales_user, sandbox):
    order = subscription(registered(), placed_on=due_in(3))
    login(page, sales_user)
    page.goto("/admin/orders/renewaldue/")
    sent = len(sandbox.requests)

    with page.expect_navigation():
        page.get_by_role("link", name="Renew", exact=True).click()

    assert len(sandbox.requests) == sent
    assert "Renew subscription" in page.locator("#content").inner_text()
    with page.expect_navigation():
        page.locator("input[type=submit][value^='Yes,']").click()
    assert order.renewals.get().status == "active"


def test_favicon_is_served(page, sales_user):
    login(page, sales_user)
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(href).status == 200


def test_lockout_says_for_how_long(page, sales_user):
    page.expected_statuses = {429}
    page.goto("/admin/login/")
    for _ in range(5):
        page.fill("#id_username", sales_user.username)
        page.fill("#id_password", "not the password")
        with page.expect_navigation():
            page.click("input[type=submit]")
    text = page.locator("#content").inner_text().replace("\xa0", " ")
    assert "locked for 1 hour" in text
    page.goto("/admin/login/")
    page.fill("#id_username", sales_user.username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert "locked for 1 hour" in page.locator("#content").inner_text().replace("\xa0", " ")
    assert Customer.objects.count() == 0
