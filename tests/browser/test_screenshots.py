"""`make screenshots`: full-page PNGs of the main pages at 1280×800, as sales and as a manager,
over the demo data set, into var/screenshots/ for a reviewer to look at without clicking."""

from pathlib import Path

import pytest
from django.conf import settings

from orders.models import Order
from portal.provisioning import batches
from tests.browser.conftest import login
from tests.browser.demo import seed

pytestmark = pytest.mark.screenshots

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
# Nothing scrolls sideways: not the page, not a list's results box.
FITS = """() => [document.documentElement, ...document.querySelectorAll('.results')]
    .every(e => e.scrollWidth <= e.clientWidth + 1)"""


def _pages(demo) -> dict[str, str]:
    orders, customers = demo.orders, demo.customers
    # A finished batch with mixed results: Renew on every subscription of the demo.
    renew = batches.batch_start(
        kind="order",
        action="renew",
        label="Renew",
        objects=Order.objects.filter(parent__isnull=True),
        by=demo.sales,
    )
    return {
        "index": "/admin/",
        "dashboard": "/admin/dashboard/",
        "order-list": "/admin/orders/order/",
        "order-list-needs-attention": "/admin/orders/order/?attention=yes",
        "order-active": f"/admin/orders/order/{orders['renewed'].pk}/change/",
        "order-long-name": f"/admin/orders/order/{orders['long'].pk}/change/",
        "order-draft": f"/admin/orders/order/{orders['draft'].pk}/change/",
        "order-pending": f"/admin/orders/order/{orders['pending'].pk}/change/",
        "order-add": f"/admin/orders/order/add/?customer={customers[0].pk}",
        "renew-confirmation": f"/admin/orders/order/{orders['due'].pk}/oneoffice/renew/",
        "customer-list": "/admin/customers/customer/",
        "customer": f"/admin/customers/customer/{customers[0].pk}/change/",
        "customer-draft": f"/admin/customers/customer/{customers[-1].pk}/change/",
        "renewals-due": "/admin/orders/renewaldue/",
        "call-log": "/admin/portal/provisioningcall/",
        "batch-list": "/admin/portal/batch/",
        "batch": f"/admin/portal/batch/{renew.pk}/change/",
    }


@pytest.mark.parametrize("role", ["sales", "manager"])
def test_screenshots(page, sandbox, role):
    demo = seed(sandbox)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    login(page, demo.sales if role == "sales" else demo.manager)
    # Managers may not open some pages: they see the 403 page, which is worth a look too.
    page.expected_statuses = {403}
    too_wide = []
    for name, url in _pages(demo).items():
        page.goto(url)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(SCREENSHOTS / f"{role}-{name}.png"), full_page=True)
        if not page.evaluate(FITS):
            too_wide.append(name)
    print(f"screenshots in {SCREENSHOTS}")
    assert not too_wide, f"wider than {page.viewport_size['width']} px: {too_wide}"
