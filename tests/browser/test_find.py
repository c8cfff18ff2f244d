"""Finding things, clicked as people do at 1280×800: a list's search box, the header's search
box and its results page, and a customer's page (subscriptions, MRR, next renewal, timeline)."""

import re
from datetime import date
from decimal import Decimal

from orders.models import Order
from tests.browser.conftest import login
from tests.browser.demo import seed
from tests.factories import PriceFactory


def _priced():
    """The price list the demo's monthly oo-std subscriptions are sold at."""
    PriceFactory(unit_price=Decimal("10"), valid_from=date(2000, 1, 1))


def _fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280


def test_sales_finds_a_customer_from_the_header_and_reads_its_page(page, sandbox, settings):
    settings.PORTAL_CURRENCY = "EUR"
    _priced()
    demo = seed(sandbox)
    acme = demo.customers[0]
    due, suspended = demo.orders["due"], demo.orders["suspended"]
    login(page, demo.sales)

    # The header's box, on the home page: a word of the name, typed without its capital.
    box = page.locator("#header #global-search input[name=q]")
    assert box.is_visible()
    box.fill("office supplies")
    with page.expect_navigation():
        box.press("Enter")
    page.wait_for_url(re.compile(r"/admin/search/\?q=office\+supplies"))
    _fits(page)
    assert page.locator("#header #global-search input[name=q]").input_value() == "office supplies"
    customers = page.locator("#found-customers td.found-label").all_inner_texts()
    assert customers == [str(acme)]
    orders = page.locator("#found-orders td.found-label").all_inner_texts()
    assert sorted(orders) == sorted(
        o.number for o in Order.objects.filter(customer=acme, parent__isnull=True)
    )
    calls = page.locator("#found-calls").inner_text()
    assert "createCustomer" in calls and "suspendOrder" in calls

    # Its page: subscriptions first, then MRR and the next renewal, then the timeline.
    with page.expect_navigation():
        page.locator("#found-customers").get_by_role("link", name=str(acme)).click()
    assert page.url.endswith(f"/admin/customers/customer/{acme.pk}/change/")
    _fits(page)
    rows = page.locator("#customer-subscriptions tbody tr")
    assert rows.nth(0).locator("td").nth(0).inner_text() == due.number
    assert "active" in rows.nth(0).inner_text() and "250.00 EUR" in rows.nth(0).inner_text()
    assert f"{due.current_term_end:%Y-%m-%d}" in rows.nth(0).inner_text()
    assert rows.nth(1).locator("td").nth(0).inner_text() == suspended.number
    assert "suspended" in rows.nth(1).inner_text()
    assert page.locator("#customer-mrr dd").inner_text().startswith("250.00 EUR")
    renewal = page.locator("#customer-next-renewal dd").inner_text()
    assert due.number in renewal and "due now" in renewal
    assert f"{due.current_term_end:%-d %b %Y}" in renewal
    timeline = page.locator("#customer-timeline tbody tr").all_inner_texts()
    assert "suspendOrder" in timeline[0] or f"{suspended.number} suspended" in timeline[0]
    text = "\n".join(timeline)
    for happened in (
        "createCustomer",
        "createFirstOrder",
        f"{due.number} placed",
        f"{suspended.number} suspended",
    ):
        assert happened in text
    top = page.locator("#customer-subscriptions").bounding_box()["y"]
    assert top < page.locator("#customer-timeline").bounding_box()["y"]
    assert top < page.locator(".form-row.field-name").bounding_box()["y"]

    # The next renewal's link opens the subscription.
    with page.expect_navigation():
        page.locator("#customer-next-renewal").get_by_role("link", name=due.number).click()
    assert page.url.endswith(f"/admin/orders/order/{due.pk}/change/")


def test_list_search_boxes_find_a_word_anywhere_accents_aside(page, sandbox):
    demo = seed(sandbox)
    bjork = demo.customers[2]
    login(page, demo.manager)

    page.goto("/admin/customers/customer/")
    page.fill("#searchbar", "SON radgivning")
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    listed = page.locator("#result_list tbody tr").all_inner_texts()
    assert len(listed) == 1 and "Björk & Søn Rådgivning AS" in listed[0]

    page.goto("/admin/orders/order/")
    page.fill("#searchbar", "søn")
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    shown = page.locator("#result_list tbody .field-order_id").all_inner_texts()
    expected = Order.objects.filter(customer=bjork, parent__isnull=True)
    assert sorted(shown) == sorted(o.number for o in expected) and shown

    # A generated order id without its prefix, in the call log: the renewal's call.
    renewal = Order.objects.get(parent=demo.orders["renewed"])
    assert renewal.number.startswith("O-")
    page.goto("/admin/portal/provisioningcall/")
    page.fill("#searchbar", renewal.number.removeprefix("O-").lower())
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    calls = page.locator("#result_list tbody tr").all_inner_texts()
    assert len(calls) == 1 and "createRenewalOrder" in calls[0] and renewal.number in calls[0]

    # Renewals due keeps the search when switching to lapsed only.
    lapsed = demo.orders["lapsed"]
    page.goto("/admin/orders/renewaldue/")
    page.fill("#searchbar", "bjork")
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    assert page.locator("#result_list tbody tr td:first-child").all_inner_texts() == [lapsed.number]
    with page.expect_navigation():
        page.locator(".renewal-states").get_by_role("link", name="Lapsed").click()
    assert "q=bjork" in page.url and "state=lapsed" in page.url
    assert page.locator("#result_list tbody tr td:first-child").all_inner_texts() == [lapsed.number]
    _fits(page)


def test_manager_header_search_shows_what_a_manager_may_open(page, sandbox):
    demo = seed(sandbox)
    login(page, demo.manager)
    page.goto("/admin/orders/order/")

    page.fill("#global-search-q", "kappa")
    with page.expect_navigation():
        page.press("#global-search-q", "Enter")

    assert page.locator("#found-customers td.found-label").all_inner_texts() == [
        str(demo.customers[3])
    ]
    links = page.locator(".search-group td.found-label a")
    assert links.count() >= 4
    with page.expect_navigation():
        links.nth(links.count() - 1).click()
    assert page.locator("#content h1").count() == 1
    assert "403" not in page.title()
