"""The role matrix: Sales provision, Managers read, staff without a group see nothing, and
anonymous users are sent to the login page."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from customers.models import Customer
from orders.models import Order
from portal.security.roles import MANAGERS, SALES
from tests.admin_urls import button_url, change_url
from tests.factories import CustomerFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = reverse("admin:customers_customer_changelist")
ORDERS = reverse("admin:orders_order_changelist")
CALLS = reverse("admin:portal_provisioningcall_changelist")
PROVISIONING_PERMS = {
    "register_customer",
    "place_order",
    "renew_order",
    "suspend_order",
    "cancel_order",
}
CUSTOMER_ACTIONS = {"register_selected", "retry_selected"}
ORDER_ACTIONS = {"place_selected", "renew_selected", "suspend_selected", "cancel_selected"}
ORDER_ACTIONS |= {"retry_selected"}


@pytest.fixture(autouse=True)
def long_sessions(settings):
    # Some tests travel months away from the login; the session must outlive that.
    settings.SESSION_COOKIE_AGE = 20 * 365 * 24 * 3600
    settings.TIME_ZONE = "UTC"


def _actions(client, url: str) -> set[str]:
    form = client.get(url).context["action_form"]
    return set() if form is None else {name for name, _ in form.fields["action"].choices if name}


def _codenames(group: str) -> set[str]:
    return set(Group.objects.get(name=group).permissions.values_list("codename", flat=True))


def _customer_data(**overrides) -> dict:
    return {
        "code": "",
        "name": "New Co",
        "account_manager": "",
        "admin_email": "it@new.example",
        "admin_phone": "+30 210 555 0199",
        "admin_display_name": "Ada Admin",
        "_save": "Save",
        **overrides,
    }


# The groups -----------------------------------------------------------------------------------


def test_roles_groups_exist_after_migrations():
    assert {SALES, MANAGERS} <= set(Group.objects.values_list("name", flat=True))


def test_roles_migrate_puts_back_what_roles_grants(db):
    sales = Group.objects.get(name=SALES)
    sales.permissions.clear()
    Group.objects.filter(name=MANAGERS).delete()

    call_command("migrate", verbosity=0)

    assert _codenames(SALES) >= PROVISIONING_PERMS
    assert "export_order" in _codenames(MANAGERS)


def test_roles_sales_may_edit_and_provision():
    perms = _codenames(SALES)

    assert perms >= PROVISIONING_PERMS
    assert {"add_customer", "change_customer", "add_order", "change_order"} <= perms
    assert {"view_customer", "view_order", "view_provisioningcall"} <= perms


def test_roles_managers_may_only_read_apart_from_prices():
    perms = _codenames(MANAGERS)

    assert {"view_customer", "view_order", "view_provisioningcall"} <= perms
    assert not perms & PROVISIONING_PERMS
    writes = {p for p in perms if p.split("_")[0] in {"add", "change", "delete"}}
    assert writes == {
        "add_price",
        "change_price",
        "delete_price",
        "add_discountpolicy",
        "change_discountpolicy",
    }


# Sales ----------------------------------------------------------------------------------------


def test_sales_can_add_a_customer(client, sales_user):
    client.force_login(sales_user)

    assert client.get(reverse("admin:customers_customer_add")).status_code == 200
    response = client.post(reverse("admin:customers_customer_add"), _customer_data())

    assert response.status_code == 302
    customer = Customer.objects.get(name="New Co")
    assert customer.status == Customer.Status.DRAFT
    assert customer.code.startswith("C-")


def test_sales_can_change_a_draft_customer(client, sales_user):
    customer = CustomerFactory()
    client.force_login(sales_user)

    response = client.post(change_url(customer), _customer_data(code=customer.code, name="Renamed"))

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "Renamed"


def test_sales_can_add_and_change_an_order(client, sales_user, registered_customer):
    client.force_login(sales_user)
    data = {
        "customer": registered_customer.pk,
        "number": "",
        "product": "oo-std",
        "licenses": 20,
        "duration": "monthly",
        "_save": "Save",
    }

    assert client.post(reverse("admin:orders_order_add"), data).status_code == 302
    order = Order.objects.get()
    assert (order.created_by, order.status, order.licenses) == (sales_user, "draft", 20)

    inline = {"renewals-TOTAL_FORMS": 0, "renewals-INITIAL_FORMS": 0}
    response = client.post(
        change_url(order), {**data, **inline, "number": order.number, "licenses": 25}
    )

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.licenses == 25


def test_sales_sees_every_provisioning_action(client, sales_user):
    client.force_login(sales_user)

    assert _actions(client, CUSTOMERS) >= CUSTOMER_ACTIONS
    assert _actions(client, ORDERS) >= ORDER_ACTIONS


def test_sales_runs_every_provisioning_action_from_the_buttons(client, sandbox, sales_user):
    client.force_login(sales_user)
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-after")
    with time_machine.travel(datetime(2027, 1, 31, 12, tzinfo=UTC), tick=False):
        client.post(button_url(customer, "register"))
        client.post(button_url(customer, "retry"))
        order = OrderFactory(customer=customer)
        client.post(button_url(order, "place"))
    with time_machine.travel(datetime(2027, 2, 20, 12, tzinfo=UTC), tick=False):
        client.post(button_url(order, "renew"))
        client.post(button_url(order, "suspend"))
        client.post(button_url(order, "cancel"))

    customer.refresh_from_db()
    order.refresh_from_db()
    assert customer.status == Customer.Status.REGISTERED
    assert order.status == Order.Status.CANCELLED
    assert order.renewals.get().status == Order.Status.ACTIVE
    assert [r["rpc_method"] for r in sandbox.requests] == [
        "createCustomer",
        "createCustomer",
        "createFirstOrder",
        "createRenewalOrder",
        "suspendOrder",
        "cancelOrder",
    ]
    assert {call.triggered_by for call in order.customer.calls.all()} == {sales_user}


# Managers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [CUSTOMERS, ORDERS, CALLS])
def test_managers_can_view_the_lists(client, manager_user, active_order, url):
    client.force_login(manager_user)

    response = client.get(url)

    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1


def test_managers_can_view_customer_and_order_pages(client, manager_user, active_order):
    client.force_login(manager_user)

    for obj in (active_order.customer, active_order):
        response = client.get(change_url(obj))
        assert response.status_code == 200
        assert response.context["provisioning_buttons"] == []
        assert str(obj) in response.content.decode()
        assert 'name="_save"' not in response.content.decode()


def test_managers_get_no_provisioning_actions(client, manager_user):
    client.force_login(manager_user)

    assert not _actions(client, CUSTOMERS) & CUSTOMER_ACTIONS
    assert not _actions(client, ORDERS) & ORDER_ACTIONS


def test_managers_see_no_buttons_even_where_actions_are_possible(
    client, sandbox, manager_user, active_order
):
    draft = CustomerFactory()
    client.force_login(manager_user)

    for obj in (draft, active_order):
        html = client.get(change_url(obj)).content.decode()
        assert str(obj) in html
        assert "/oneoffice/" not in html


@pytest.mark.parametrize(
    ("target", "name", "method"),
    [
        ("customer", "register", "post"),
        ("customer", "retry", "post"),
        ("order", "place", "post"),
        ("subscription", "renew", "post"),
        ("subscription", "suspend", "get"),
        ("subscription", "suspend", "post"),
        ("subscription", "cancel", "get"),
        ("subscription", "cancel", "post"),
        ("subscription", "retry", "post"),
    ],
)
def test_managers_get_403_on_the_button_urls(
    client, sandbox, manager_user, active_order, target, name, method
):
    obj = {
        "customer": CustomerFactory(),
        "order": OrderFactory(customer=active_order.customer),
        "subscription": active_order,
    }[target]
    before = type(obj).objects.get(pk=obj.pk).status
    sent = len(sandbox.requests)
    client.force_login(manager_user)

    response = getattr(client, method)(button_url(obj, name))

    assert response.status_code == 403
    assert len(sandbox.requests) == sent
    obj.refresh_from_db()
    assert obj.status == before


@pytest.mark.parametrize(
    ("url", "action"),
    [(CUSTOMERS, "register_selected"), (ORDERS, "place_selected"), (ORDERS, "cancel_selected")],
)
def test_managers_posting_a_provisioning_action_does_nothing(
    client, sandbox, manager_user, active_order, url, action
):
    obj = {
        CUSTOMERS: CustomerFactory(),
        ORDERS: OrderFactory(customer=active_order.customer),
    }[url]
    targets = [obj, active_order] if url == ORDERS else [obj]
    statuses = [type(o).objects.get(pk=o.pk).status for o in targets]
    client.force_login(manager_user)
    sent = len(sandbox.requests)

    data = {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in targets], "post": "yes"}
    client.post(url, data)

    assert len(sandbox.requests) == sent
    assert [type(o).objects.get(pk=o.pk).status for o in targets] == statuses


def test_managers_cannot_add_customers_or_orders(client, manager_user, registered_customer):
    client.force_login(manager_user)

    assert client.get(reverse("admin:customers_customer_add")).status_code == 403
    assert client.get(reverse("admin:orders_order_add")).status_code == 403
    assert client.post(reverse("admin:customers_customer_add"), _customer_data()).status_code == 403
    assert not Customer.objects.filter(name="New Co").exists()


def test_managers_cannot_change_customers_or_orders(client, manager_user, registered_customer):
    customer = CustomerFactory()
    order = OrderFactory(customer=registered_customer)
    client.force_login(manager_user)
    order_data = {"customer": registered_customer.pk, "number": order.number, "product": "oo-ent"}
    order_data |= {"licenses": 99, "duration": "yearly", "_save": "Save"}
    order_data |= {"renewals-TOTAL_FORMS": 0, "renewals-INITIAL_FORMS": 0}

    customer_response = client.post(change_url(customer), _customer_data(code=customer.code))
    order_response = client.post(change_url(order), order_data)

    assert (customer_response.status_code, order_response.status_code) == (403, 403)
    customer.refresh_from_db()
    order.refresh_from_db()
    assert customer.name != "New Co"
    assert (order.product, order.licenses) == ("oo-std", 20)


# Staff without a group, and anonymous users ---------------------------------------------------


def test_staff_without_a_group_sees_nothing(client, sandbox, active_order):
    client.force_login(UserFactory(username="nobody", is_staff=True))

    index = client.get(reverse("admin:index"))

    assert index.status_code == 200
    assert index.context["app_list"] == []
    for url in (
        CUSTOMERS,
        ORDERS,
        CALLS,
        change_url(active_order),
        change_url(active_order.customer),
    ):
        assert client.get(url).status_code == 403
    sent = len(sandbox.requests)
    assert client.post(button_url(active_order, "cancel")).status_code == 403
    assert len(sandbox.requests) == sent


@pytest.mark.parametrize("url", [CUSTOMERS, ORDERS, CALLS, reverse("admin:index")])
def test_anonymous_users_are_sent_to_the_login_page(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response.url == f"{reverse('admin:login')}?next={url}"


def test_anonymous_button_posts_are_sent_to_the_login_page(client, sandbox, active_order):
    sent = len(sandbox.requests)

    response = client.post(button_url(active_order, "cancel"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    assert len(sandbox.requests) == sent
    active_order.refresh_from_db()
    assert active_order.status == Order.Status.ACTIVE


def test_non_staff_user_in_sales_is_sent_to_the_login_page(client, sandbox, active_order):
    user = UserFactory(username="outsider", is_staff=False)
    user.groups.add(Group.objects.get(name=SALES))
    client.force_login(user)

    response = client.post(button_url(active_order, "cancel"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    active_order.refresh_from_db()
    assert active_order.status == Order.Status.ACTIVE
