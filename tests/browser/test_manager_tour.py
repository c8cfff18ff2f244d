"""A manager's round: filters, search, the CSV download, renewals due, the dashboard; no
provisioning control anywhere, and forbidden pages inside the admin's frame."""

import csv
import re

from orders.models import Order
from tests.browser.conftest import login
from tests.browser.demo import LONG_NAME, seed


def _results(page) -> list[str]:
    return page.locator(
        "#result_list tbody tr td.field-order_id, #result_list tbody tr th.field-order_id"
    ).all_inner_texts()


def test_manager_tour(page, sandbox):
    demo = seed(sandbox)
    login(page, demo.manager)

    # The dashboard is one click away, in the sidebar too, and its weeks carry the year.
    with page.expect_navigation():
        page.locator("#content-main .app-reports").get_by_role("link", name="Dashboard").click()
    page.wait_for_url(re.compile(r"/admin/dashboard/$"))
    assert page.locator("#nav-sidebar .app-reports a", has_text="Dashboard").count() == 1
    first_week = page.locator("#renewals-per-week tbody th").first.inner_text()
    assert re.fullmatch(r"\d{1,2} \w{3} \d{4} – \d{1,2} \w{3} \d{4}", first_week), first_week
    help_text = page.locator("#attention p.help")
    box, module = help_text.bounding_box(), page.locator("#attention").bounding_box()
    assert box["x"] + box["width"] <= module["x"] + module["width"] + 1
    assert help_text.evaluate("e => e.scrollWidth <= e.clientWidth")

    # Orders: filter by status, then search; the CSV has exactly the rows shown.
    with page.expect_navigation():
        page.locator("#nav-sidebar tr.model-order a").first.click()
    with page.expect_navigation():
        page.locator("#changelist-filter").get_by_role("link", name="active", exact=True).click()
    active = Order.objects.filter(parent=None, status="active")
    assert sorted(_results(page)) == sorted(o.number for o in active)
    page.fill("#searchbar", "Kappa")
    page.press("#searchbar", "Enter")
    page.wait_for_url(re.compile(r"q=Kappa"))
    shown = _results(page)
    kappa = active.filter(customer__name__contains="Kappa")
    assert sorted(shown) == sorted(o.number for o in kappa) and shown
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    with open(download.value.path(), encoding="utf-8-sig") as exported:
        rows = list(csv.DictReader(exported))
    assert sorted(row["order id"] for row in rows) == sorted(shown)

    # No provisioning control anywhere: not on the list's actions, not on an order's page.
    actions = page.locator("select[name=action] option").all_inner_texts()
    assert not [a for a in actions if re.search(r"Place|Renew|Suspend|Cancel|Retry", a)]
    page.goto(f"/admin/orders/order/{demo.orders['due'].pk}/change/")
    assert page.locator(".provisioning-buttons").count() == 0
    assert page.locator("input[name=_save]").count() == 0

    # Renewals due: due and lapsed, soonest first, and nothing to click that provisions.
    page.goto("/admin/orders/renewaldue/")
    listed = page.locator("#result_list tbody tr td:first-child").all_inner_texts()
    assert listed == [demo.orders["lapsed"].number, demo.orders["due"].number]
    assert page.get_by_role("link", name="Renew", exact=True).count() == 0
    with page.expect_navigation():
        page.get_by_role("link", name="Lapsed", exact=True).click()
    with page.expect_navigation():
        page.get_by_role("link", name="Due", exact=True).click()
    assert page.locator("#result_list tbody tr").count() == 1

    # A forbidden page is a page of the portal: header, breadcrumbs, sidebar, a way back.
    page.expected_statuses = {403}
    response = page.goto("/admin/orders/order/add/")
    assert response.status == 403
    assert page.locator("#header #site-name").inner_text() == "OneOffice reseller portal"
    assert page.locator(".breadcrumbs a", has_text="Home").count() == 1
    assert page.locator("#nav-sidebar").count() == 1
    assert "does not allow" in page.locator("#content").inner_text()
    with page.expect_navigation():
        page.get_by_role("link", name="Go to the start page").click()
    page.wait_for_url(re.compile(r"/admin/$"))


def test_long_customer_name_does_not_push_columns_out_of_view(page, sandbox):
    demo = seed(sandbox)
    login(page, demo.sales)
    page.goto("/admin/orders/order/")

    fits = "e => e.scrollWidth <= e.clientWidth"
    assert page.locator("#changelist .results").evaluate(fits)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    right = page.viewport_size["width"]
    for column in (
        "order_id",
        "customer_name",
        "product_code",
        "licenses_and_value",
        "status_badge",
        "term_end_display",
        "account_manager",
    ):
        header = page.locator(f"#result_list thead th.column-{column}")
        box = header.bounding_box()
        assert box and box["x"] + box["width"] <= right, column
    name = page.locator("#result_list .field-customer_name span", has_text="Hellenic")
    assert name.get_attribute("title").startswith(LONG_NAME)
    assert name.evaluate("e => e.scrollWidth > e.clientWidth")  # cut, whole on hover
    # Ids never break: each is one line high.
    for order_id in page.locator("#result_list .field-order_id a").all():
        box = order_id.bounding_box()
        line = order_id.evaluate("e => parseFloat(getComputedStyle(e).lineHeight) || 16")
        assert box["height"] < 1.5 * line, order_id.inner_text()
    badge = page.locator(f"#result_list tr:has-text('{demo.orders['suspended'].number}') .badge")
    assert badge.inner_text() == "suspended"
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(124, 58, 237)"
