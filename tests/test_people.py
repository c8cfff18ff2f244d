"""The name the portal shows for a person and the address that reaches an account manager:
one rule each, the same on a user, on values read in bulk and as a filter."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from customers.models import Customer
from portal.core.people import display_name, display_name_of, inbox, inbox_of, without_inbox_q
from tests.factories import CustomerFactory, OrderFactory, UserFactory

User = get_user_model()


@pytest.mark.parametrize(
    ("first", "last", "shown"),
    [
        ("Amy", "Lee", "Amy Lee"),
        ("Amy", "", "Amy"),
        ("", "Lee", "Lee"),
        ("", "", "amy"),
        ("  ", "", "amy"),
    ],
)
def test_display_name_is_the_full_name_or_else_the_username(first, last, shown):
    user = User(username="amy", first_name=first, last_name=last)

    assert display_name(user) == display_name_of(first, last, "amy") == shown


def test_display_name_of_nobody_is_empty():
    assert display_name(None) == display_name_of(None, None, None) == ""


@pytest.mark.parametrize(
    ("email", "active", "reached"),
    [
        ("amy@reseller.example", True, "amy@reseller.example"),
        ("amy@reseller.example", False, ""),
        ("", True, ""),
    ],
)
def test_inbox_is_the_address_of_an_active_account_only(email, active, reached):
    user = User(username="amy", email=email, is_active=active)

    assert inbox(user) == inbox_of(email, active) == reached


def test_no_account_manager_has_no_inbox():
    assert inbox(None) == inbox_of(None, None) == ""


names = st.text(alphabet=st.sampled_from("Aa é-'"), max_size=4)


@given(first=names, last=names, username=st.text(alphabet="amy.", min_size=1, max_size=4))
def test_display_name_reads_the_same_on_a_user_and_on_its_values(first, last, username):
    user = User(username=username, first_name=first, last_name=last)

    assert display_name(user) == display_name_of(first, last, username)
    assert display_name(user) in {user.get_full_name(), username}


class InboxFilterTest(TestCase):
    @settings(max_examples=25)
    @given(
        managers=st.lists(
            st.none() | st.tuples(st.sampled_from(["", "x@reseller.example"]), st.booleans()),
            max_size=5,
        )
    )
    def test_without_inbox_q_selects_exactly_the_customers_whose_manager_has_no_inbox(
        self, managers
    ):
        customers = [
            CustomerFactory(
                account_manager=None
                if manager is None
                else UserFactory(email=manager[0], is_active=manager[1])
            )
            for manager in managers
        ]

        selected = Customer.objects.filter(without_inbox_q("account_manager"))

        assert {c.pk for c in selected} == {
            c.pk for c in customers if inbox(c.account_manager) == ""
        }


@pytest.mark.django_db
def test_pages_show_an_account_manager_by_display_name(client, manager_user):
    amy = UserFactory(username="amy", first_name="Amy", last_name="Lee")
    order = OrderFactory(active=True, days_left=3, customer__account_manager=amy)
    client.force_login(manager_user)

    renewals = client.get(reverse("admin:orders_renewaldue_changelist")).content.decode()
    filtered = client.get(reverse("admin:orders_renewaldue_changelist"), {"manager": amy.pk})
    orders = client.get(reverse("admin:orders_order_changelist")).content.decode()

    assert order.number in renewals and "<td>Amy Lee</td>" in renewals
    assert "Customers of Amy Lee" in filtered.content.decode()
    assert order.number in orders and 'title="Amy Lee">Amy Lee<' in orders
