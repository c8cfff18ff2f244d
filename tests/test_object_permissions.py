"""Retry needs the permission of what is pending: one check per object, asked the same way by
the change-page button, its URL, a small selection, a batch, and a finished batch's Retry them
and Send them again. A person allowed to place but not to cancel retries a pending placing and
never a pending cancellation, whichever way they ask."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.urls import reverse

from orders.models import Order
from portal.models import Batch, BatchItem
from tests.admin_urls import button_url, change_url
from tests.factories import BatchFactory, BatchItemFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

ORDERS = reverse("admin:orders_order_changelist")
REFUSED = "not sent. You may not retry."


@pytest.fixture
def placer(client):
    """May place orders (and so retry a placing), not cancel them."""
    user = UserFactory(username="pat")
    codenames = ["view_order", "change_order", "place_order", "view_batch"]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


@pytest.fixture
def pending():
    """A placing and a cancellation, each sent and unsettled."""
    placing = OrderFactory(pending=True)
    cancelling = OrderFactory(
        active=True, status=Order.Status.PENDING, pending_action=Order.Action.CANCEL
    )
    return placing, cancelling


def _sent_about(sandbox, order: Order) -> list[str]:
    return [
        r["rpc_method"] for r in sandbox.requests if r["json"]["params"].get("id") == order.number
    ]


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_retry_button_shows_only_where_the_person_may_retry(placer, pending):
    placing, cancelling = pending

    def buttons(order):
        page = placer.get(change_url(order))
        return [b["action"].name for b in page.context["provisioning_buttons"]]

    assert "retry" in buttons(placing)
    assert "retry" not in buttons(cancelling)


def test_the_retry_url_refuses_what_the_person_may_not_retry(placer, pending, sandbox):
    placing, cancelling = pending

    refused = placer.post(button_url(cancelling, "retry"))
    allowed = placer.post(button_url(placing, "retry"))

    assert refused.status_code == 403
    assert allowed.status_code == 302
    assert _sent_about(sandbox, cancelling) == []
    assert _sent_about(sandbox, placing) == ["createFirstOrder"]


def test_a_small_selection_retries_what_it_may_and_says_what_it_may_not(placer, pending, sandbox):
    placing, cancelling = pending
    data = {"action": "retry_selected", ACTION_CHECKBOX_NAME: [placing.pk, cancelling.pk]}

    response = placer.post(ORDERS, {**data, "index": 0}, follow=True)

    assert f"{cancelling}: {REFUSED}" in _messages(response)
    assert not any(text.startswith(f"{placing}: not sent") for text in _messages(response))
    assert _sent_about(sandbox, cancelling) == []
    assert _sent_about(sandbox, placing) == ["createFirstOrder"]


def test_a_batch_settles_at_once_what_the_person_may_not_retry(placer, pending, sandbox, settings):
    placing, cancelling = pending
    settings.BATCH_SYNC_MAX = 1
    data = {"action": "retry_selected", ACTION_CHECKBOX_NAME: [placing.pk, cancelling.pk]}

    placer.post(ORDERS, {**data, "index": 0})

    batch = Batch.objects.get()
    refused = batch.items.get(object_id=cancelling.pk)
    assert (refused.state, refused.message) == (
        BatchItem.State.REJECTED,
        f"{cancelling}: {REFUSED}",
    )
    assert batch.items.get(object_id=placing.pk).state == BatchItem.State.QUEUED
    assert _sent_about(sandbox, cancelling) == []


@pytest.mark.parametrize(("which", "state"), [("retry", "unknown"), ("same", "refused")])
def test_a_finished_batch_sends_again_only_what_the_person_may_retry(
    placer, pending, sandbox, which, state
):
    placing, cancelling = pending
    finished = BatchFactory(action="retry", label="Retry", finished_at=placing.created_at)
    for order in pending:
        BatchItemFactory(batch=finished, subject=order, state=state, message="no answer")

    placer.post(reverse("admin:portal_batch_again", args=[finished.pk, which]))

    again = Batch.objects.exclude(pk=finished.pk).get()
    refused = again.items.get(object_id=cancelling.pk)
    assert (refused.state, refused.message) == (
        BatchItem.State.REJECTED,
        f"{cancelling}: {REFUSED}",
    )
    assert again.items.get(object_id=placing.pk).state == BatchItem.State.QUEUED
    assert _sent_about(sandbox, cancelling) == []
