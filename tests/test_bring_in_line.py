"""Drift: OneOffice holds a subscription in another status than the portal (the customer
cancelled directly). An answer that proves it offers Bring in line with OneOffice: confirmed,
by a person who may, recorded, nothing sent, the figures moved."""

from decimal import Decimal

import pytest
from django.urls import reverse

from orders.models import Order, Price, SubscriptionChange
from orders.money.revenue import revenue_recurring
from portal import provisioning
from portal.models import ProvisioningCall
from portal.oneoffice import api
from tests.conftest import API_KEY
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db
Kind = SubscriptionChange.Kind


def _directly(sandbox, request: api.Request) -> None:
    """What the customer did on OneOffice itself, not through the portal."""
    api.OneOfficeClient(url=sandbox.url, api_key=API_KEY).send(request)


@pytest.fixture
def priced(db):
    for duration in Order.Duration.values:
        Price.objects.create(
            product=Order.Product.OO_STD,
            duration=duration,
            unit_price=Decimal("10"),
            valid_from="2000-01-01",
        )


@pytest.fixture
def drifted(sandbox, active_order):
    """An active subscription that OneOffice holds as cancelled."""
    _directly(sandbox, api.cancel_order(order_id=active_order.number))
    return active_order


def test_cancel_refused_already_cancelled_on_first_attempt_is_proof_not_a_change(sandbox, drifted):
    with pytest.raises(provisioning.VendorRefused) as refused:
        provisioning.order_cancel(order=drifted)

    drifted.refresh_from_db()
    assert refused.value.proves == "cancelled"
    assert "Bring in line with OneOffice" in str(refused.value)
    # Nothing moved by itself: still active, with the proof noted for a person.
    assert drifted.status == Order.Status.ACTIVE
    assert drifted.oneoffice_status == Order.Status.CANCELLED
    assert drifted.oneoffice_status_call.method == "cancelOrder"
    assert "already cancelled" in drifted.oneoffice_status_call.error
    assert drifted.out_of_line
    assert not drifted.changes.filter(kind=Kind.ALIGNED).exists()


def test_bring_in_line_records_the_call_who_and_sends_nothing(sandbox, drifted, sales_user, priced):
    drifted.refresh_from_db()
    with pytest.raises(provisioning.VendorRefused):
        provisioning.order_cancel(order=drifted)
    drifted.refresh_from_db()
    # Priced by hand: the placed term's value, as a sale would carry.
    Order.objects.filter(pk=drifted.pk).update(current_value=Decimal("200"), current_currency="EUR")
    assert revenue_recurring().mrr == Decimal("200.00")
    call = drifted.oneoffice_status_call
    sent = len(sandbox.requests)

    provisioning.order_bring_in_line(
        order=drifted, status=Order.Status.CANCELLED, by=sales_user, call=call
    )

    drifted.refresh_from_db()
    assert drifted.status == Order.Status.CANCELLED
    assert not drifted.out_of_line and drifted.oneoffice_status == ""
    assert len(sandbox.requests) == sent
    change = drifted.changes.get(kind=Kind.ALIGNED)
    assert (change.status_before, change.status_after) == ("active", "cancelled")
    assert change.call == call and change.by == sales_user
    assert "already cancelled" in change.note and "sally" in change.note
    assert revenue_recurring().mrr == Decimal("0.00")
    assert ProvisioningCall.objects.filter(order=drifted).count() == 2  # place, cancel


def test_suspend_answered_already_suspended_offers_suspended(sandbox, active_order, sales_user):
    _directly(sandbox, api.suspend_order(order_id=active_order.number))

    with pytest.raises(provisioning.VendorRefused):
        provisioning.order_suspend(order=active_order)
    active_order.refresh_from_db()
    assert active_order.oneoffice_status == Order.Status.SUSPENDED

    provisioning.order_bring_in_line(
        order=active_order,
        status=Order.Status.SUSPENDED,
        by=sales_user,
        call=active_order.oneoffice_status_call,
    )
    active_order.refresh_from_db()
    assert active_order.status == Order.Status.SUSPENDED


def test_renewal_refused_as_cancelled_notes_the_subscription(sandbox, order_in):
    order = order_in("active")
    _directly(sandbox, api.cancel_order(order_id=order.number))
    Order.objects.filter(pk=order.pk).update(current_term_end=order.term_start)
    order.refresh_from_db()

    with pytest.raises(provisioning.VendorRefused):
        provisioning.order_renew(order=order)

    order.refresh_from_db()
    assert order.status == Order.Status.ACTIVE
    assert order.oneoffice_status == Order.Status.CANCELLED
    assert order.oneoffice_status_call.method == "createRenewalOrder"


def test_ambiguous_answer_proves_nothing_and_cannot_be_brought_in_line(sandbox, order_in):
    order = order_in("active")
    Order.objects.filter(pk=order.pk).update(current_term_end=order.term_start)
    order.refresh_from_db()
    sandbox.inject("createRenewalOrder", "500-before")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.order_renew(order=order)
    sandbox.inject(
        "createRenewalOrder", "respond", status=400, body='"more than 15 days left on term"'
    )
    with pytest.raises(provisioning.NeedsDecisionError):
        provisioning.order_retry(order=order.renewals.get())

    order.refresh_from_db()
    assert order.oneoffice_status == "" and not order.out_of_line
    call = order.renewals.get().calls.latest("started_at")
    with pytest.raises(provisioning.NotAllowed):
        provisioning.order_bring_in_line(
            order=order, status=Order.Status.CANCELLED, by=None, call=call
        )


def test_bring_in_line_refused_without_proof(drifted, sales_user):
    with pytest.raises(provisioning.NotAllowed, match="say what shows"):
        provisioning.order_bring_in_line(order=drifted, status="cancelled", by=sales_user)
    # A call that proved nothing (the placing) is no proof either.
    placing = drifted.calls.get(method="createFirstOrder")
    with pytest.raises(provisioning.NotAllowed, match="does not prove"):
        provisioning.order_bring_in_line(
            order=drifted, status="cancelled", by=sales_user, call=placing
        )
    drifted.refresh_from_db()
    assert drifted.status == Order.Status.ACTIVE


def test_bring_in_line_on_evidence_without_a_call(active_order, manager_user):
    """A statement line is evidence too (reconciliation): the same function records it."""
    provisioning.order_bring_in_line(
        order=active_order,
        status=Order.Status.CANCELLED,
        by=manager_user,
        evidence="OneOffice statement, line 12: cancelled",
    )
    active_order.refresh_from_db()
    change = active_order.changes.get(kind=Kind.ALIGNED)
    assert active_order.status == "cancelled"
    assert change.call is None and "statement, line 12" in change.note
    with pytest.raises(provisioning.NotAllowed, match="already cancelled"):
        provisioning.order_bring_in_line(
            order=active_order, status="cancelled", by=manager_user, evidence="again"
        )


def test_pending_subscription_is_not_brought_in_line(order_in, sales_user):
    order = order_in("pending")
    with pytest.raises(provisioning.NotAllowed, match="settle that first"):
        provisioning.order_bring_in_line(
            order=order, status="cancelled", by=sales_user, evidence="statement"
        )


def test_a_later_change_of_status_forgets_the_proof(sandbox, active_order):
    _directly(sandbox, api.suspend_order(order_id=active_order.number))
    with pytest.raises(provisioning.VendorRefused):
        provisioning.order_suspend(order=active_order)
    active_order.refresh_from_db()
    assert active_order.out_of_line

    provisioning.order_cancel(order=active_order)

    active_order.refresh_from_db()
    assert active_order.status == "cancelled" and not active_order.out_of_line


# The admin: where the refusal is shown, the way back, and who may take it -----------------


def _change_url(order: Order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


def _provision_url(order: Order, name: str) -> str:
    return reverse("admin:orders_order_provision", args=[order.pk, name])


def _button(order: Order) -> str:
    url = _provision_url(order, "align")
    return f'<a class="button" href="{url}">Bring in line with OneOffice</a>'


def test_refusal_message_links_to_bring_in_line_and_page_offers_it(client, drifted, sales_user):
    client.force_login(sales_user)

    response = client.post(_provision_url(drifted, "cancel"), follow=True)

    page = response.content.decode()
    assert "already cancelled" in page
    assert f'href="{_provision_url(drifted, "align")}"' in page
    assert "OneOffice holds it as" in page
    # The button on the subscription's page, and the badge in the list.
    assert _button(drifted) in page
    listing = client.get(reverse("admin:orders_order_changelist")).content.decode()
    assert "OneOffice: cancelled" in listing


def test_confirmation_shows_oneoffice_words_then_records(client, drifted, sales_user):
    with pytest.raises(provisioning.VendorRefused):
        provisioning.order_cancel(order=drifted, by=sales_user)
    client.force_login(sales_user)

    confirm = client.get(_provision_url(drifted, "align")).content.decode()
    assert "already cancelled" in confirm and "Nothing is sent to OneOffice" in confirm
    assert 'value="Yes, bring in line with oneoffice"' in confirm

    response = client.post(_provision_url(drifted, "align"), follow=True)

    drifted.refresh_from_db()
    assert drifted.status == "cancelled"
    assert f"{drifted}: brought in line with OneOffice, now cancelled." in (
        response.content.decode()
    )
    assert drifted.changes.get(kind=Kind.ALIGNED).by == sales_user


def test_in_line_subscription_offers_no_button(client, active_order, sales_user):
    client.force_login(sales_user)
    page = client.get(_change_url(active_order)).content.decode()
    assert ">Cancel subscription</a>" in page
    assert "Bring in line with OneOffice" not in page


def test_manager_may_not_bring_in_line(client, drifted, manager_user):
    with pytest.raises(provisioning.VendorRefused):
        provisioning.order_cancel(order=drifted)
    client.force_login(manager_user)

    page = client.get(_change_url(drifted)).content.decode()
    assert "OneOffice holds it as" in page
    assert _button(drifted) not in page
    assert client.post(_provision_url(drifted, "align")).status_code == 403
    drifted.refresh_from_db()
    assert drifted.status == Order.Status.ACTIVE


def test_bulk_bring_in_line_from_the_list(client, sandbox, registered_customer, sales_user):
    orders = [
        provisioning.order_place(order=OrderFactory(customer=registered_customer)) for _ in range(2)
    ]
    for order in orders:
        _directly(sandbox, api.cancel_order(order_id=order.number))
        with pytest.raises(provisioning.VendorRefused):
            provisioning.order_cancel(order=order)
    client.force_login(sales_user)
    url = reverse("admin:orders_order_changelist")
    ids = [str(order.pk) for order in orders]

    confirm = client.post(url, {"action": "align_selected", "_selected_action": ids})
    assert confirm.content.decode().count("already cancelled") == 2
    client.post(
        url,
        {
            "action": "align_selected",
            "_selected_action": ids,
            "post": "yes",
            "confirmed_ids": ",".join(ids),
        },
    )

    assert set(Order.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"cancelled"}
