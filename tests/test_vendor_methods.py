"""OneOffice's method names are the client's (`api.Method`): the requests it builds, the call
log, what an answer means and the batch registrations all use them."""

import pytest

from portal.models import ProvisioningCall
from portal.oneoffice import api
from portal.provisioning import batches
from tests import service
from tests.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db


def test_the_call_log_lists_the_clients_methods():
    field = ProvisioningCall._meta.get_field("method")
    assert [value for value, _ in field.choices] == [str(method) for method in api.Method]
    assert len(api.Method) == 5


@pytest.fixture
def renewable(settings, sandbox):
    # A fresh monthly subscription is inside this window, so it can be renewed today.
    settings.ONEOFFICE_RENEWAL_WINDOW_DAYS = 40
    sandbox.renewal_window_days = 40


def _object_for(action: str):
    if action == "register":
        return CustomerFactory()
    if action == "place":
        return OrderFactory(customer=service.registered())
    return service.placed()


@pytest.mark.usefixtures("renewable")
@pytest.mark.parametrize("action", ["register", "place", "renew", "suspend", "cancel"])
def test_each_operation_sends_and_records_the_method_it_is_registered_with(sandbox, action):
    obj = _object_for(action)
    operation = batches.operation(type(obj), action)
    sandbox.requests.clear()

    operation.run(obj, by=None)

    assert [r["rpc_method"] for r in sandbox.requests] == [operation.method]
    calls = ProvisioningCall.objects.order_by("-started_at", "-id")
    assert calls.first().method == operation.method
    assert operation.method in set(api.Method)
