"""The transition tables on the models, and what the service does with a caller's object."""

import pytest

from customers.models import Customer
from orders.models import Order
from portal import provisioning
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db
A = Order.Action
S = Order.Status


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        (S.DRAFT, {A.PLACE}),
        (S.FAILED, {A.PLACE}),
        (S.PENDING, set()),
        (S.ACTIVE, {A.RENEW, A.SUSPEND, A.CANCEL, A.ALIGN}),
        (S.SUSPENDED, {A.RENEW, A.CANCEL, A.ALIGN}),
        # Nothing is sent from a cancelled subscription; OneOffice may prove it holds another.
        (S.CANCELLED, {A.ALIGN}),
    ],
)
def test_order_can_reads_one_table_for_subscriptions(status, allowed):
    subscription = Order(status=status)
    renewal = Order(status=status, parent_id=1)

    assert {action for action in A if subscription.can(action)} == allowed
    assert not any(renewal.can(action) for action in A)
    assert subscription.can_retry() == renewal.can_retry() == (status == S.PENDING)
    assert subscription.is_editable == (A.PLACE in allowed)
    assert not renewal.is_editable


def test_customer_can_register_only_draft_or_failed():
    allowed = {s for s in Customer.Status if Customer(status=s).can(Customer.Action.REGISTER)}

    assert allowed == {Customer.Status.DRAFT, Customer.Status.FAILED}
    assert {s for s in Customer.Status if Customer(status=s).is_editable} == allowed


def test_service_refuses_an_object_with_unsaved_changes_and_sends_nothing(sandbox):
    customer = CustomerFactory()
    customer.name = "Renamed in memory"

    with pytest.raises(provisioning.NotAllowed, match="unsaved changes \\(name\\)"):
        provisioning.customer_register(customer=customer)

    assert sandbox.requests == []
    customer.refresh_from_db()
    assert customer.status == Customer.Status.DRAFT
    assert customer.name != "Renamed in memory"


def test_service_sends_changes_once_saved(sandbox, registered_customer):
    order = OrderFactory(customer=registered_customer)
    order.licenses = 7
    with pytest.raises(provisioning.NotAllowed, match="unsaved changes \\(licenses\\)"):
        provisioning.order_place(order=order)

    order.save()
    provisioning.order_place(order=order)

    assert sandbox.snapshot()["orders"][order.number]["licenses"] == 7
