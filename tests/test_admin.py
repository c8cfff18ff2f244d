"""The admin for sales staff: actions posted to the changelist, change-page buttons posted to
their URLs, confirmation pages, read-only fields, the call log and the sandbox banner."""

import re
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from customers.models import Customer
from orders.admin.orders import RenewalInline
from orders.models import Order
from orders.renewals import terms
from portal import provisioning
from portal.models import ProvisioningCall
from tests import service
from tests.admin_urls import button_url, change_url
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = reverse("admin:customers_customer_changelist")
ORDERS = reverse("admin:orders_order_changelist")
CALLS = reverse("admin:portal_provisioningcall_changelist")


def travel(year: int, month: int, day: int):
    return time_machine.travel(datetime(year, month, day, 12, tzinfo=UTC), tick=False)


@pytest.fixture(autouse=True)
def utc(settings):
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def staff(client, sales_user, settings):
    # Tests travel to dates years away from the login; the session must outlive that.
    settings.SESSION_COOKIE_AGE = 20 * 365 * 24 * 3600
    client.force_login(sales_user)
    return client


def _messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def _bulk(client, url: str, action: str, *objects, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objects], "index": 0, **extra}
    return client.post(url, data, follow=True)


def _buttons(response) -> list[str]:
    return [button["action"].name for button in response.context["provisioning_buttons"]]


# Customers ------------------------------------------------------------------------------------


def test_register_selected_registers_and_reports(staff, sandbox, sales_user):
    customer = CustomerFactory()

    response = _bulk(staff, CUSTOMERS, "register_selected", customer)

    assert response.redirect_chain[-1][0] == CUSTOMERS
    assert _messages(response) == [("success", f"{customer}: registered.")]
    customer.refresh_from_db()
    assert customer.status == Customer.Status.REGISTERED
    assert customer.code in sandbox.snapshot()["customers"]
    assert ProvisioningCall.objects.get().triggered_by == sales_user


def test_register_button_registers_and_returns_to_the_change_page(staff, sandbox):
    customer = CustomerFactory()

    response = staff.post(button_url(customer, "register"), follow=True)

    assert response.redirect_chain == [(change_url(customer), 302)]
    assert _messages(response) == [("success", f"{customer}: registered.")]
    customer.refresh_from_db()
    assert customer.status == Customer.Status.REGISTERED
    assert customer.oneoffice_id == "1"


def test_register_button_shows_the_vendors_refusal(staff, sandbox):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "respond", status=400, body='"admin email is blocked"')

    response = staff.post(button_url(customer, "register"), follow=True)

    [(level, text)] = _messages(response)
    assert level == "error"
    assert "admin email is blocked" in text
    customer.refresh_from_db()
    assert (customer.status, customer.last_error) == ("failed", "admin email is blocked")


def test_register_button_reports_invalid_fields_without_sending(staff, sandbox):
    customer = CustomerFactory(admin_email="not-an-email")

    response = staff.post(button_url(customer, "register"), follow=True)

    [(level, text)] = _messages(response)
    assert level == "error"
    assert text.startswith(f"{customer}: not sent.")
    assert "Admin email:" in text
    assert sandbox.requests == []
    customer.refresh_from_db()
    assert customer.status == Customer.Status.DRAFT


def test_register_button_reports_an_unknown_outcome_as_a_warning(staff, sandbox):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-after")

    response = staff.post(button_url(customer, "register"), follow=True)

    [(level, text)] = _messages(response)
    assert level == "warning"
    assert text.startswith("Outcome unknown.")
    customer.refresh_from_db()
    assert customer.status == Customer.Status.PENDING
    assert _buttons(response) == ["retry"]


def test_register_button_reports_an_unsent_call_as_a_warning(staff, sandbox):
    customer = CustomerFactory()
    sandbox.refuse_connections()

    response = staff.post(button_url(customer, "register"), follow=True)

    [(level, text)] = _messages(response)
    assert level == "warning"
    assert text.startswith("Not sent yet.")
    customer.refresh_from_db()
    assert customer.status == Customer.Status.PENDING


def test_customer_retry_button_settles_a_pending_registration(staff, sandbox):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-after")
    staff.post(button_url(customer, "register"), follow=True)

    response = staff.post(button_url(customer, "retry"), follow=True)

    assert _messages(response) == [("success", f"{customer}: retried, now registered.")]
    customer.refresh_from_db()
    assert customer.status == Customer.Status.REGISTERED
    assert ProvisioningCall.objects.filter(settled_earlier=True).count() == 1


def test_register_button_refuses_a_get(staff, sandbox):
    customer = CustomerFactory()

    response = staff.get(button_url(customer, "register"))

    assert response.status_code == 405
    assert sandbox.requests == []


def test_provision_url_with_an_unknown_action_is_forbidden(staff, sandbox):
    customer = CustomerFactory()

    assert staff.post(button_url(customer, "delete")).status_code == 403
    assert sandbox.requests == []


@pytest.mark.parametrize(
    ("state", "buttons"),
    [("draft", ["register"]), ("failed", ["register"]), ("pending", ["retry"]), ("registered", [])],
)
def test_customer_change_page_shows_only_the_possible_buttons(staff, sandbox, state, buttons):
    customer = CustomerFactory()
    if state == "failed":
        sandbox.inject("createCustomer", "respond", status=400, body='"no"')
    elif state == "pending":
        sandbox.inject("createCustomer", "500-after")
    if state != "draft":
        staff.post(button_url(customer, "register"))
    customer.refresh_from_db()
    assert customer.status == state

    response = staff.get(change_url(customer))

    assert _buttons(response) == buttons
    html = response.content.decode()
    for name in ("register", "retry"):
        assert (button_url(customer, name) in html) is (name in buttons)


def test_customer_list_needs_attention_filter_shows_unsettled_customers(staff, sandbox):
    settled = CustomerFactory()
    staff.post(button_url(settled, "register"))
    unsettled = CustomerFactory()
    sandbox.inject("createCustomer", "500-after")
    staff.post(button_url(unsettled, "register"))

    response = staff.get(f"{CUSTOMERS}?attention=yes")

    assert list(response.context["cl"].result_list) == [unsettled]


def test_customer_change_form_keeps_status_and_mirrored_fields_read_only(staff):
    customer = CustomerFactory()

    response = staff.get(change_url(customer))

    form = response.context["adminform"].form
    fixed = ["status", "oneoffice_id", "partner", "remote_created_at", "is_active"]
    fixed += ["onboarding_url", "last_error", "attempts_display"]
    for name in fixed:
        assert name not in form.fields
        assert name in response.context["adminform"].readonly_fields
    assert "name" in form.fields


def test_customer_change_form_ignores_posted_status_and_mirrored_fields(staff):
    customer = CustomerFactory()
    data = {
        "code": customer.code,
        "name": "Renamed Ltd",
        "account_manager": "",
        "admin_email": customer.admin_email,
        "admin_phone": customer.admin_phone,
        "admin_display_name": customer.admin_display_name,
        "status": "registered",
        "oneoffice_id": "999",
        "onboarding_url": "https://evil.example/",
        "_save": "Save",
    }

    response = staff.post(change_url(customer), data)

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "Renamed Ltd"
    assert (customer.status, customer.oneoffice_id, customer.onboarding_url) == ("draft", "", "")


def test_customer_change_form_of_a_registered_customer_is_read_only(staff, registered_customer):
    response = staff.get(change_url(registered_customer))

    form = response.context["adminform"].form
    for name in ("code", "name", "admin_email", "admin_phone", "admin_display_name"):
        assert name not in form.fields


def test_customer_change_page_links_to_its_calls(staff, registered_customer):
    response = staff.get(change_url(registered_customer))

    assert f"{CALLS}?customer__id__exact={registered_customer.pk}" in response.content.decode()


# Orders ---------------------------------------------------------------------------------------


def test_place_button_places_the_order(staff, sandbox, registered_customer):
    order = OrderFactory(customer=registered_customer)

    response = staff.post(button_url(order, "place"), follow=True)

    assert response.redirect_chain == [(change_url(order), 302)]
    assert _messages(response) == [("success", f"{order}: placed, now active.")]
    order.refresh_from_db()
    assert order.status == Order.Status.ACTIVE
    assert sandbox.snapshot()["orders"][order.number]["status"] == "active"


def test_place_selected_reports_each_order(staff, sandbox, registered_customer):
    placed = OrderFactory(customer=registered_customer)
    unregistered = OrderFactory()

    response = _bulk(staff, ORDERS, "place_selected", placed, unregistered)

    messages = dict((text.split(":")[0], (level, text)) for level, text in _messages(response))
    assert messages[placed.number] == ("success", f"{placed}: placed, now active.")
    level, text = messages[unregistered.number]
    assert level == "error"
    assert "not sent." in text
    assert "is not registered on OneOffice yet" in text
    placed.refresh_from_db()
    unregistered.refresh_from_db()
    assert (placed.status, unregistered.status) == ("active", "draft")
    assert [r["json"]["params"]["id"] for r in sandbox.requests[1:]] == [placed.number]


def test_renew_button_renews_inside_the_window(staff, sandbox):
    subscription = service.placed(date(2027, 1, 31))

    with travel(2027, 2, 13):
        response = staff.post(button_url(subscription, "renew"), follow=True)

    renewal = subscription.renewals.get()
    assert _messages(response) == [("success", f"{renewal}: renewed, now active.")]
    subscription.refresh_from_db()
    assert subscription.current_term_end == date(2027, 3, 28)


def test_renew_button_explains_a_refusal_outside_the_window(staff, sandbox):
    subscription = service.placed(date(2027, 1, 31))
    sent = len(sandbox.requests)

    with travel(2027, 2, 12):
        response = staff.post(button_url(subscription, "renew"), follow=True)

    [(level, text)] = _messages(response)
    assert level == "error"
    assert f"{subscription}: not sent." in text
    assert "16 days left" in text
    assert len(sandbox.requests) == sent
    assert not subscription.renewals.exists()


def test_renew_selected_reports_each_subscription(staff, sandbox):
    due = service.placed(date(2027, 1, 31))
    early = service.placed(date(2027, 2, 10))

    with travel(2027, 2, 20):
        confirmation = _bulk(staff, ORDERS, "renew_selected", due, early)
        response = _bulk(staff, ORDERS, "renew_selected", due, early, post="yes")

    # The confirmation shows each new term as the portal will record it, and the early one's date.
    page = confirmation.content.decode()
    assert "from 28 Feb 2027 to 28 Mar 2027" in page
    assert "The portal will refuse it:</strong> " in page and "from 23 Feb 2027" in page
    # Only the one the portal sends is offered.
    assert f'name="confirmed_ids" value="{due.pk}"' in page
    texts = [text for _, text in _messages(response)]
    assert len(texts) == 2
    assert any("renewed" in t and due.renewals.get().number in t for t in texts)
    assert any(t.startswith(f"{early}: not sent.") and "days left" in t for t in texts)
    assert not early.renewals.exists()


@pytest.mark.parametrize(
    ("name", "state", "done", "words"),
    [
        ("suspend", "active", "suspended", "OneOffice has no resume call"),
        ("cancel", "active", "cancelled", "licenses are not refunded"),
        ("cancel", "suspended", "cancelled", "licenses are not refunded"),
    ],
)
def test_confirmation_button_asks_first_then_acts_on_post(
    staff, sandbox, order_in, name, state, done, words
):
    order = order_in(state)
    sent = len(sandbox.requests)

    page = staff.get(button_url(order, name))

    assert page.status_code == 200
    assert "admin/portal/confirm_provisioning.html" in [t.name for t in page.templates]
    html = page.content.decode()
    assert words in html
    assert f"{order.number} for {order.customer.name}: 20 × oo-std, monthly" in html
    assert f'action="{button_url(order, name)}"' in html
    assert len(sandbox.requests) == sent
    order.refresh_from_db()
    assert order.status == state

    response = staff.post(button_url(order, name), follow=True)

    assert response.redirect_chain == [(change_url(order), 302)]
    [(level, text)] = _messages(response)
    assert (level, text) == ("success", f"{order}: {done}.")
    order.refresh_from_db()
    assert order.status == done
    assert sandbox.snapshot()["orders"][order.number]["status"] == done


def confirmation_form(html: str) -> dict[str, str]:
    """The hidden fields of a confirmation page's form, as its button posts them."""
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)
    return dict(fields)


@pytest.mark.parametrize(("action", "done"), [("suspend", "suspended"), ("cancel", "cancelled")])
def test_bulk_suspend_and_cancel_ask_first_then_act_on_post_yes(
    staff, sandbox, order_in, action, done
):
    orders = [order_in("active") for _ in range(2)]
    sent = len(sandbox.requests)

    page = _bulk(staff, ORDERS, f"{action}_selected", *orders)

    assert page.redirect_chain == []
    assert "admin/portal/confirm_provisioning.html" in [t.name for t in page.templates]
    html = page.content.decode()
    for order in orders:
        assert f"{order.number} for" in html
    form = confirmation_form(html)
    assert sorted(form["confirmed_ids"].split(",")) == sorted(str(o.pk) for o in orders)
    assert form["post"] == "yes"
    assert len(sandbox.requests) == sent
    assert set(Order.objects.values_list("status", flat=True)) == {"active"}

    # What the page's "Yes" button posts.
    response = staff.post(ORDERS, form, follow=True)

    assert sorted(_messages(response)) == sorted(
        ("success", f"{order}: {done}.") for order in orders
    )
    assert set(Order.objects.values_list("status", flat=True)) == {done}


def test_a_confirmation_for_more_objects_than_it_can_carry_says_so_and_sends_nothing(
    staff, sandbox, registered_customer
):
    from portal.admin.actions import CONFIRM_MAX

    OrderFactory.store(CONFIRM_MAX + 1, customer=registered_customer, active=True, prefix="O-MANY")
    first = Order.objects.order_by("pk").first()
    response = _bulk(staff, ORDERS, "suspend_selected", first, select_across=1)

    assert "admin/portal/confirm_provisioning.html" not in [t.name for t in response.templates]
    [(level, text)] = _messages(response)
    assert level == "error"
    assert f"select at most {CONFIRM_MAX:,} at a time" in text
    assert not any(r["rpc_method"] == "suspendOrder" for r in sandbox.requests)


def test_a_long_renew_confirmation_lists_first_and_counts_what_the_portal_will_refuse(
    staff, registered_customer
):
    yearly = Order.Duration.YEARLY
    due = {"customer": registered_customer, "active": True, "duration": yearly}
    OrderFactory.store(52, **due, days_left=5, prefix="O-DUE")
    # The last ids: past the first 50 in the list's order.
    OrderFactory.store(3, **due, days_left=100, prefix="O-EARLY")
    first = Order.objects.order_by("pk").first()
    page = _bulk(staff, ORDERS, "renew_selected", first, select_across=1)

    html = page.content.decode()
    assert "3 of these 55 will be refused by the portal and are not sent" in html
    assert 'value="Yes, renew the other 52"' in html
    lines = re.findall(r'<li( class="will-refuse")?>(Renew [^<]*)', html)
    assert len(lines) == 50
    assert all(cls and line.startswith("Renew subscription O-EARLY") for cls, line in lines[:3])
    assert not any(cls for cls, _ in lines[3:])
    assert "… and 5 more orders." in html


def test_a_bulk_confirmation_of_objects_deleted_meanwhile_says_so(staff, registered_customer):
    pk = OrderFactory(customer=registered_customer).pk
    # Deleted between the list and the click (a draft has no calls to keep).
    Order.objects.filter(pk=pk).delete()
    data = {"action": "suspend_selected", ACTION_CHECKBOX_NAME: [pk], "index": 0}
    response = staff.post(ORDERS, data, follow=True)
    assert "admin/portal/confirm_provisioning.html" not in [t.name for t in response.templates]
    gone = "None of the selected objects is in the list any more; nothing was sent."
    assert ("warning", gone) in _messages(response)


def test_cancel_button_shows_the_vendors_refusal_and_restores_the_status(
    staff, sandbox, active_order
):
    sandbox.inject("cancelOrder", "respond", status=409, body='{"error": "order is locked"}')

    response = staff.post(button_url(active_order, "cancel"), follow=True)

    [(level, text)] = _messages(response)
    assert level == "error"
    assert "order is locked" in text
    active_order.refresh_from_db()
    assert active_order.status == Order.Status.ACTIVE


def test_order_retry_button_settles_a_pending_suspend(staff, sandbox, active_order):
    sandbox.inject("suspendOrder", "500-after")
    staff.post(button_url(active_order, "suspend"), follow=True)
    active_order.refresh_from_db()
    assert active_order.status == Order.Status.PENDING

    response = staff.post(button_url(active_order, "retry"), follow=True)

    assert _messages(response) == [("success", f"{active_order}: retried, now suspended.")]
    active_order.refresh_from_db()
    assert active_order.status == Order.Status.SUSPENDED


@pytest.mark.parametrize(
    ("state", "buttons"),
    [
        ("draft", ["place"]),
        ("failed", ["place"]),
        ("pending", ["retry"]),
        # A new monthly term is outside the renewal window: Renew is not offered yet.
        ("active", ["suspend", "cancel"]),
        ("suspended", ["cancel"]),
        ("cancelled", []),
    ],
)
def test_order_change_page_shows_only_the_possible_buttons(
    staff, sandbox, order_in, state, buttons
):
    order = order_in(state)

    response = staff.get(change_url(order))

    assert _buttons(response) == buttons
    html = response.content.decode()
    for name in ("place", "renew", "suspend", "cancel", "retry"):
        assert (button_url(order, name) in html) is (name in buttons)
    renewable = state in ("active", "suspended")
    assert ("<strong>Renew</strong> is not offered" in html) is renewable
    if renewable:
        opens = terms.renewal_opens(order.current_term_end)
        assert f"OneOffice renews only in the last 15 days, from {opens:%d %b %Y}." in html


def test_renew_is_offered_once_the_window_opens(staff, sandbox):
    subscription = service.placed(date(2027, 1, 31))

    with travel(2027, 2, 12):
        early = staff.get(change_url(subscription))
    with travel(2027, 2, 13):
        due = staff.get(change_url(subscription))

    assert "renew" not in _buttons(early)
    assert "from 13 Feb 2027" in early.content.decode()
    assert _buttons(due) == ["renew", "suspend", "cancel"]
    assert "is not offered" not in due.content.decode()


def test_renewal_change_page_has_no_buttons_and_no_inline(staff, sandbox):
    subscription = service.placed(date(2027, 1, 31))
    with travel(2027, 2, 20):
        renewal = provisioning.order_renew(order=subscription)

    response = staff.get(change_url(renewal))

    assert _buttons(response) == []
    assert not any(
        isinstance(f.opts, RenewalInline) for f in response.context["inline_admin_formsets"]
    )


def test_order_change_form_keeps_status_and_terms_read_only(staff, registered_customer):
    order = OrderFactory(customer=registered_customer)

    response = staff.get(change_url(order))

    form = response.context["adminform"].form
    for name in ("status", "pending_action", "term_start", "term_end", "current_term_end"):
        assert name not in form.fields
    assert {"product", "licenses", "duration"} <= set(form.fields)


def test_order_change_form_of_a_placed_order_is_read_only(staff, active_order):
    response = staff.get(change_url(active_order))

    form = response.context["adminform"].form
    for name in ("customer", "number", "product", "licenses", "duration", "status"):
        assert name not in form.fields


def test_order_list_shows_first_orders_only(staff, sandbox):
    subscription = service.placed(date(2027, 1, 31))
    with travel(2027, 2, 20):
        renewal = provisioning.order_renew(order=subscription)

    response = staff.get(ORDERS)

    changelist = response.context["cl"]
    assert list(changelist.result_list) == [subscription]
    assert changelist.full_result_count == 1
    assert subscription.number in response.content.decode()
    assert renewal.number not in response.content.decode()


def test_first_order_page_shows_its_renewals_inline(staff, sandbox):
    subscription = service.placed(date(2027, 1, 31))
    with travel(2027, 2, 20):
        renewal = provisioning.order_renew(order=subscription)

    response = staff.get(change_url(subscription))

    [inline] = [
        f for f in response.context["inline_admin_formsets"] if isinstance(f.opts, RenewalInline)
    ]
    assert [form.original for form in inline] == [renewal]
    assert change_url(renewal) in response.content.decode()


def test_order_change_page_links_to_its_calls(staff, active_order):
    response = staff.get(change_url(active_order))

    assert f"{CALLS}?order__id__exact={active_order.pk}" in response.content.decode()


# The call log ---------------------------------------------------------------------------------


@pytest.fixture
def call_log(sandbox, active_order, settings):
    """Calls of each method and a refusal: register, place, a refused suspend whose answer
    quotes the API key back, as a careless vendor error might."""
    body = f'"key {settings.ONEOFFICE_API_KEY} may not suspend orders"'
    sandbox.inject("suspendOrder", "respond", status=400, body=body)
    with pytest.raises(provisioning.VendorRefused):
        provisioning.order_suspend(order=active_order)
    return list(ProvisioningCall.objects.order_by("id"))


@pytest.mark.parametrize(
    ("query", "methods"),
    [
        ("", {"createCustomer", "createFirstOrder", "suspendOrder"}),
        ("method__exact=createFirstOrder", {"createFirstOrder"}),
        ("outcome__exact=refused", {"suspendOrder"}),
        ("outcome__exact=ok", {"createCustomer", "createFirstOrder"}),
        ("method__exact=suspendOrder&outcome__exact=ok", set()),
    ],
)
def test_call_log_filters_by_method_and_outcome(staff, call_log, query, methods):
    response = staff.get(f"{CALLS}?{query}")

    assert response.status_code == 200
    assert {call.method for call in response.context["cl"].result_list} == methods


def test_call_log_is_read_only(staff, call_log):
    call = call_log[0]
    change = reverse("admin:portal_provisioningcall_change", args=[call.pk])

    page = staff.get(change)

    assert page.status_code == 200
    assert call.method in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert staff.post(change, {"method": "cancelOrder"}).status_code == 403
    assert staff.get(reverse("admin:portal_provisioningcall_add")).status_code == 403
    delete = reverse("admin:portal_provisioningcall_delete", args=[call.pk])
    assert staff.post(delete, {"post": "yes"}).status_code == 403
    assert staff.get(CALLS).context["action_form"] is None
    call.refresh_from_db()
    assert call.method == "createCustomer"
    assert ProvisioningCall.objects.count() == len(call_log)


def test_call_log_never_shows_the_api_key(staff, call_log, settings):
    pages = [staff.get(CALLS)] + [
        staff.get(reverse("admin:portal_provisioningcall_change", args=[c.pk])) for c in call_log
    ]

    # The key did come back from the vendor, and the log holds it redacted.
    assert "[redacted]" in call_log[-1].response_body
    assert "key [redacted] may not suspend" in call_log[-1].error
    for page, call in zip(pages, [None, *call_log], strict=True):
        assert (call or call_log[0]).method in page.content.decode()
        assert settings.ONEOFFICE_API_KEY not in page.content.decode()
    assert "key [redacted] may not suspend" in pages[-1].content.decode()


# The sandbox banner ---------------------------------------------------------------------------

BANNER = "SANDBOX – nothing is sent to OneOffice"


@pytest.mark.parametrize("url", [reverse("admin:index"), CUSTOMERS, ORDERS, CALLS])
def test_sandbox_banner_shows_when_the_portal_talks_to_the_sandbox(staff, settings, url):
    settings.ONEOFFICE_SANDBOX = True

    assert BANNER in staff.get(url).content.decode()


@pytest.mark.parametrize("url", [reverse("admin:index"), CUSTOMERS, ORDERS, CALLS])
def test_sandbox_banner_is_absent_when_the_portal_talks_to_oneoffice(staff, settings, url):
    settings.ONEOFFICE_SANDBOX = False

    response = staff.get(url)

    assert response.status_code == 200
    assert 'id="site-name"' in response.content.decode()
    assert BANNER not in response.content.decode()
