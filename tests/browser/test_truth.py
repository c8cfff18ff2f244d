"""What the portal says about OneOffice's state and the renewal window, clicked where it
appears."""

from orders.models import Order
from portal.oneoffice import api
from tests.browser.conftest import login, messages
from tests.browser.demo import due_in, registered, subscription
from tests.conftest import API_KEY


def _click(page, label: str) -> None:
    tools = page.locator(".object-tools")
    with page.expect_navigation():
        tools.get_by_role("button", name=label).or_(tools.get_by_role("link", name=label)).click()


def test_cancelled_on_oneoffice_is_brought_in_line(page, sales_user, sandbox):
    order = subscription(registered(), placed_on=due_in(20))
    # The customer cancelled on OneOffice directly.
    api.OneOfficeClient(url=sandbox.url, api_key=API_KEY).send(
        api.cancel_order(order_id=order.number)
    )
    login(page, sales_user)
    page.goto(f"/admin/orders/order/{order.pk}/change/")

    _click(page, "Cancel subscription")
    with page.expect_navigation():
        page.get_by_role("button", name="Yes, cancel subscription").click()

    refusal = next(m for m in messages(page) if "already cancelled" in m)
    assert "Bring in line with OneOffice" in refusal
    assert page.locator(".field-status .readonly").inner_text() == "active"
    assert "cancelled" in page.locator(".field-oneoffice_says .readonly").inner_text()
    with page.expect_navigation():
        page.locator(".messagelist").get_by_role("link", name="Bring in line").click()
    assert "already cancelled" in page.locator(".provisioning-confirmation").inner_text()
    with page.expect_navigation():
        page.get_by_role("button", name="Yes, bring in line with oneoffice").click()

    assert f"{order}: brought in line with OneOffice, now cancelled." in messages(page)
    assert page.locator(".field-status .readonly").inner_text() == "cancelled"
    assert page.locator(".field-oneoffice_says").count() == 0
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
