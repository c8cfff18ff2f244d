"""Shared fixtures: the OneOffice sandbox on a loopback port, users in each role, and helpers
that take customers and orders through the real service."""

import ipaddress
import socket
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group

from orders.models import Order
from portal import provisioning
from portal.oneoffice.sandbox import Sandbox
from portal.security.roles import MANAGERS, SALES
from tests import service
from tests.factories import OrderFactory, UserFactory

API_KEY = "test-key-4b1d7e0c9a"

_connect = socket.socket.connect


def _loopback_only(self, address):
    # Tests talk to the sandbox and to local services only; anything else is a bug.
    host = address[0] if isinstance(address, tuple) else None
    if host is not None and self.family in (socket.AF_INET, socket.AF_INET6):
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ConnectionRefusedError(f"tests may not connect to {host}")
    return _connect(self, address)


socket.socket.connect = _loopback_only

BROWSER_TESTS = Path(__file__).parent / "browser"


def pytest_ignore_collect(collection_path, config):
    """Browser tests run only when named (`make test-browser`): `make test` stays fast."""
    if collection_path != BROWSER_TESTS:
        return None
    named = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    return not any(p == BROWSER_TESTS or BROWSER_TESTS in p.parents for p in named)


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory):
    server = Sandbox(api_key=API_KEY, state_path=tmp_path_factory.mktemp("sandbox") / "state.json")
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def sandbox(sandbox_server, settings):
    """The vendor for this test: empty, well-behaved, and what the settings point at."""
    sandbox_server.accept_connections()
    sandbox_server.reset()
    sandbox_server.tz = ZoneInfo(settings.TIME_ZONE)
    sandbox_server.response_style = "old"
    sandbox_server.order_body = True
    sandbox_server.hang_seconds = 1.5
    sandbox_server.renewal_window_days = settings.ONEOFFICE_RENEWAL_WINDOW_DAYS
    settings.ONEOFFICE_URL = sandbox_server.url
    settings.ONEOFFICE_API_KEY = API_KEY
    settings.ONEOFFICE_SANDBOX = False
    yield sandbox_server
    sandbox_server.accept_connections()


def _member_of(group: str, **kwargs):
    user = UserFactory(is_staff=True, **kwargs)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def sales_user(db):
    return _member_of(SALES, username="sally")


@pytest.fixture
def manager_user(db):
    return _member_of(MANAGERS, username="manny")


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def registered_customer(db):
    """A customer registered on the sandbox through the service."""
    return service.registered()


@pytest.fixture
def active_order(registered_customer):
    """A placed (active) monthly subscription."""
    return service.placed(customer=registered_customer)


@pytest.fixture
def order_in(sandbox, registered_customer):
    """A first order brought to `state` through the service."""

    def make(state: str) -> Order:
        order = OrderFactory(customer=registered_customer)
        if state == "failed":
            sandbox.inject("createFirstOrder", "respond", status=400, body='"no"')
            with pytest.raises(provisioning.VendorRefused):
                provisioning.order_place(order=order)
        elif state == "pending":
            sandbox.inject("createFirstOrder", "500-after")
            with pytest.raises(provisioning.OutcomeUnknown):
                provisioning.order_place(order=order)
        elif state != "draft":
            provisioning.order_place(order=order)
            if state == "suspended":
                provisioning.order_suspend(order=order)
            elif state == "cancelled":
                provisioning.order_cancel(order=order)
        order.refresh_from_db()
        assert order.status == state
        return order

    return make
