"""`manage.py renewals_due`: the due and lapsed list as a table or CSV."""

import csv
import io
from datetime import date, datetime

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from orders.models import Order
from tests.factories import OrderFactory, UserFactory

S = Order.Status
TODAY = date(2027, 3, 10)


@pytest.fixture(autouse=True)
def at_today(settings):
    settings.ONEOFFICE_RENEWAL_WINDOW_DAYS = 15
    with time_machine.travel(datetime(2027, 3, 10, 10, 0, tzinfo=timezone.get_current_timezone())):
        yield


@pytest.fixture
def orders(db):
    amy = UserFactory(username="amy", first_name="Amy", last_name="Lee")
    return {
        "week": OrderFactory(
            active=True,
            days_left=7,
            number="O-WEEK",
            customer__name="Acme Ltd",
            customer__account_manager=amy,
            product=Order.Product.OO_ENT,
            licenses=250,
        ),
        "lapsed": OrderFactory(
            suspended=True,
            days_left=-2,
            number="O-LAPSED",
            customer__name='=HYPERLINK("http://x")',
        ),
        "later": OrderFactory(active=True, days_left=20, number="O-LATER"),
        "cancelled": OrderFactory(cancelled=True, days_left=1, number="O-CANCELLED"),
    }


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("renewals_due", *args, stdout=out)
    return out.getvalue()


def test_renewals_due_prints_a_table_soonest_first(orders):
    lines = run().splitlines()

    assert lines[0].split() == [
        "order",
        "customer",
        "product",
        "licenses",
        "term",
        "end",
        "days",
        "left",
        "account",
        "manager",
    ]
    assert set(lines[1]) == {"-", " "}
    assert [line.split()[0] for line in lines[2:4]] == ["O-LAPSED", "O-WEEK"]
    assert lines[3].split() == [
        "O-WEEK",
        "Acme",
        "Ltd",
        "oo-ent",
        "250",
        "2027-03-17",
        "7",
        "Amy",
        "Lee",
    ]
    assert lines[2].split()[-2:] == ["2027-03-08", "-2"]
    assert lines[4].startswith("2 subscriptions due within 15 days of 2027-03-10")
    assert len(lines) == 5


def test_renewals_due_days_widens_the_window(orders):
    output = run("--days", "20")

    assert "O-LATER" in output
    assert "O-CANCELLED" not in output
    assert "due within 20 days" in output


def test_renewals_due_prints_csv_with_formula_like_text_escaped(orders):
    rows = list(csv.reader(io.StringIO(run("--format", "csv"))))

    assert rows == [
        ["order", "customer", "product", "licenses", "term end", "days left", "account manager"],
        ["O-LAPSED", '\'=HYPERLINK("http://x")', "oo-std", "20", "2027-03-08", "-2", ""],
        ["O-WEEK", "Acme Ltd", "oo-ent", "250", "2027-03-17", "7", "Amy Lee"],
    ]


@pytest.mark.django_db
def test_renewals_due_says_when_nothing_is_due():
    assert run() == "Nothing due within 15 days of 2027-03-10, nothing lapsed.\n"
    assert run("--format", "csv").splitlines() == [
        "order,customer,product,licenses,term end,days left,account manager"
    ]


@pytest.mark.django_db
def test_renewals_due_refuses_negative_days():
    with pytest.raises(CommandError, match="--days"):
        run("--days", "-1")
