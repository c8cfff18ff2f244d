"""The price list and order values: a price applies from its date and never to an order already
sold, one half-up rounding per order value, the discount limit, who may keep prices, and the
value columns of the list and the CSV."""

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.admin import site as admin_site
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from orders.admin.prices import PriceAdmin
from orders.models import DiscountPolicy, Order, Price
from orders.money import pricing
from portal import provisioning
from portal.models import ProvisioningCall
from tests.factories import CustomerFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db
D = Decimal


def travel(day: date, hour: int = 12):
    moment = datetime(
        day.year, day.month, day.day, hour, tzinfo=ZoneInfo(django_settings.TIME_ZONE)
    )
    return time_machine.travel(moment, tick=False)


def _price(amount: str, valid_from: date, product="oo-std", duration="monthly") -> Price:
    # Created directly: the admin refuses past dates, a test needs history.
    return Price.objects.create(
        product=product, duration=duration, unit_price=D(amount), valid_from=valid_from
    )


def _place(day: date, **fields) -> Order:
    with travel(day):
        customer = provisioning.customer_register(customer=CustomerFactory())
        return provisioning.order_place(order=OrderFactory(customer=customer, **fields))


# Price history -----------------------------------------------------------------------------------


def test_price_order_records_the_price_in_force_on_the_term_start():
    _price("10.00", date(2026, 1, 1))
    _price("12.00", date(2026, 3, 1))
    _price("99.00", date(2026, 1, 1), duration="yearly")

    order = _place(date(2026, 2, 28), licenses=20)

    order.refresh_from_db()
    assert (order.unit_price, order.currency, order.value) == (D("10.0000"), "EUR", D("200.00"))
    assert order.current_value == D("200.00")


def test_renewal_is_priced_on_the_day_its_term_starts_and_leaves_the_first_term_alone():
    _price("10.00", date(2026, 1, 1))
    _price("12.00", date(2026, 3, 10))
    order = _place(date(2026, 2, 10), licenses=20)  # term 10 Feb – 10 Mar

    # Renewed on 1 Mar, before the new price: its term starts 10 Mar, when 12.00 applies.
    with travel(date(2026, 3, 1)):
        renewal = provisioning.order_renew(order=order)

    renewal.refresh_from_db()
    order.refresh_from_db()
    assert renewal.term_start == date(2026, 3, 10)
    assert (renewal.unit_price, renewal.value) == (D("12.0000"), D("240.00"))
    assert order.value == D("200.00")
    assert (order.current_value, order.current_currency) == (D("240.00"), "EUR")


def test_a_new_price_never_changes_an_order_already_sold():
    _price("10.00", date(2026, 1, 1))
    order = _place(date(2026, 2, 10), licenses=3)
    with travel(date(2026, 2, 10)):
        _price("50.00", date(2026, 2, 10))  # same day, added after the sale
    Price.objects.filter(valid_from=date(2026, 1, 1)).update(unit_price=D("77.00"))

    order.refresh_from_db()
    assert (order.unit_price, order.value, order.current_value) == (
        D("10.0000"),
        D("30.00"),
        D("30.00"),
    )


def test_order_without_a_price_is_placed_and_shows_no_price(client, manager_user):
    _price("10.00", date(2026, 1, 1), product="oo-ent")

    order = _place(date(2026, 2, 10), product="oo-std")

    order.refresh_from_db()
    assert order.status == Order.Status.ACTIVE
    assert (order.unit_price, order.currency, order.value) == (None, "", None)
    client.force_login(manager_user)
    with travel(date(2026, 2, 11)):
        html = client.get(reverse("admin:orders_order_changelist")).content.decode()
    assert "no price" in html


def test_price_order_uses_the_newest_line_on_or_before_the_day():
    _price("10.00", date(2026, 1, 1))
    _price("11.00", date(2026, 2, 1))
    _price("13.00", date(2026, 4, 1))

    assert pricing.price_on(
        product="oo-std", duration="monthly", on=date(2026, 1, 31)
    ).unit_price == D("10")
    assert pricing.price_on(
        product="oo-std", duration="monthly", on=date(2026, 2, 1)
    ).unit_price == D("11")
    assert pricing.price_on(
        product="oo-std", duration="monthly", on=date(2026, 3, 31)
    ).unit_price == D("11")
    assert pricing.price_on(product="oo-std", duration="monthly", on=date(2025, 12, 31)) is None


def test_price_order_ignores_prices_in_another_currency(settings):
    settings.PORTAL_CURRENCY = "EUR"
    Price.objects.create(
        product="oo-std",
        duration="monthly",
        unit_price=D("5"),
        currency="USD",
        valid_from=date(2026, 1, 1),
    )

    assert pricing.price_on(product="oo-std", duration="monthly", on=date(2026, 2, 1)) is None


# Rounding ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("licenses", "unit", "discount", "expected"),
    [
        (1, "0.125", "0", "0.13"),  # half-up, not half-even (0.12)
        (3, "0.015", "0", "0.05"),  # rounded once: 0.045, not 3 × 0.02
        (3, "0.3333", "0", "1.00"),
        (7, "9.99", "12.5", "61.19"),  # 61.18875
        (1, "0.01", "50", "0.01"),  # 0.005 rounds up
        (100000, "123.4567", "33.33", "8230858.19"),
    ],
)
def test_order_value_rounds_half_up_once(licenses, unit, discount, expected):
    value = pricing.order_value(
        licenses=licenses, unit_price=D(unit), discount_percent=D(discount), currency="EUR"
    )

    assert value == D(expected)


def test_order_value_in_a_currency_without_cents():
    assert pricing.order_value(
        licenses=3, unit_price=D("150.5"), discount_percent=D("0"), currency="JPY"
    ) == D("452")


# Kept share of the price after a discount, in hundredths of a percent, that divides
# 5 × 10^5: with an odd count of licenses and an odd multiple of 5 × 10^5 / kept as the unit
# price (in 1/10,000), the exact value ends in exactly half a cent.
HALFWAY_KEPT = [kept for kept in range(1, 10_001) if 500_000 % kept == 0]


@st.composite
def halfway_cases(draw) -> tuple[int, int, int]:
    """(licenses, unit price in 1/10,000, discount in 1/100 %) worth exactly n + ½ cents."""
    licenses = 2 * draw(st.integers(0, 49_999)) + 1
    kept = draw(st.sampled_from(HALFWAY_KEPT))
    unit = (2 * draw(st.integers(0, 9_999)) + 1) * 500_000 // kept
    return licenses, unit, 10_000 - kept


any_cases = st.tuples(st.integers(1, 100_000), st.integers(0, 10**10), st.integers(0, 10_000))


def _exact(licenses: int, unit: int, discount: int) -> Fraction:
    return Fraction(licenses) * Fraction(unit, 10_000) * (100 - Fraction(discount, 100)) / 100


def _value(licenses: int, unit: int, discount: int) -> Decimal:
    return pricing.order_value(
        licenses=licenses,
        unit_price=D(unit) / 10_000,
        discount_percent=D(discount) / 100,
        currency="EUR",
    )


@given(case=st.one_of(any_cases, halfway_cases()))
def test_order_value_is_the_exact_product_rounded_half_up(case):
    value, exact = _value(*case), _exact(*case)

    assert abs(Fraction(value) - exact) <= Fraction(1, 200)
    # Exactly halfway goes up, never down.
    if (exact * 100) % 1 == Fraction(1, 2):
        assert Fraction(value) == exact + Fraction(1, 200)
    assert value.as_tuple().exponent == -2


@given(case=halfway_cases())
def test_order_value_rounds_every_halfway_value_up(case):
    exact = _exact(*case)
    assert (exact * 100) % 1 == Fraction(1, 2)

    assert Fraction(_value(*case)) == exact + Fraction(1, 200)


# Discount ----------------------------------------------------------------------------------------


def test_discount_above_the_maximum_is_refused_before_sending(sandbox):
    DiscountPolicy.objects.create(max_discount_percent=D("10"))
    with travel(date(2026, 2, 10)):
        customer = provisioning.customer_register(customer=CustomerFactory())
        order = OrderFactory(customer=customer, discount_percent=D("15"))

        with pytest.raises(provisioning.InvalidInput) as raised:
            provisioning.order_place(order=order)

    assert "discount_percent" in raised.value.errors
    assert "At most 10" in str(raised.value)
    assert not ProvisioningCall.objects.filter(order=order).exists()
    assert order.number not in sandbox.snapshot()["orders"]
    order.refresh_from_db()
    assert order.status == Order.Status.DRAFT


def test_discount_lowered_after_the_order_was_saved_stops_the_placing(sandbox):
    DiscountPolicy.objects.create(max_discount_percent=D("20"))
    with travel(date(2026, 2, 10)):
        customer = provisioning.customer_register(customer=CustomerFactory())
        order = OrderFactory(customer=customer, discount_percent=D("20"))
        DiscountPolicy.objects.update(max_discount_percent=D("5"))

        with pytest.raises(provisioning.InvalidInput):
            provisioning.order_place(order=Order.objects.get(pk=order.pk))

    assert order.number not in sandbox.snapshot()["orders"]


def test_discount_within_the_maximum_is_recorded_and_kept_by_renewals():
    DiscountPolicy.objects.create(max_discount_percent=D("25"))
    _price("10.00", date(2026, 1, 1))
    order = _place(date(2026, 2, 10), licenses=7, discount_percent=D("12.5"))
    with travel(date(2026, 3, 1)):
        DiscountPolicy.objects.update(max_discount_percent=D("0"))
        renewal = provisioning.order_renew(order=order)

    order.refresh_from_db()
    renewal.refresh_from_db()
    assert order.value == D("61.25")
    assert (renewal.discount_percent, renewal.value) == (D("12.50"), D("61.25"))


def test_admin_form_refuses_a_discount_above_the_maximum_on_its_field(
    client, sales_user, registered_customer
):
    DiscountPolicy.objects.create(max_discount_percent=D("10"))
    client.force_login(sales_user)
    customer = registered_customer
    data = {
        "customer": customer.pk,
        "number": "",
        "product": "oo-std",
        "licenses": 20,
        "duration": "monthly",
        "discount_percent": "10.01",
        "_save": "Save",
    }

    response = client.post(reverse("admin:orders_order_add"), data)

    assert response.status_code == 200
    assert "discount_percent" in response.context["adminform"].form.errors
    assert not Order.objects.exists()
    assert (
        client.post(
            reverse("admin:orders_order_add"), {**data, "discount_percent": "10"}
        ).status_code
        == 302
    )
    assert Order.objects.get().discount_percent == D("10")


def test_no_discount_is_allowed_until_managers_set_a_maximum():
    order = OrderFactory(discount_percent=D("1"))

    with pytest.raises(Exception) as raised:
        order.full_clean()

    assert "discount_percent" in raised.value.message_dict


# Who keeps prices --------------------------------------------------------------------------------


def _price_post(**overrides) -> dict:
    return {
        "product": "oo-std",
        "duration": "monthly",
        "unit_price": "10.00",
        "valid_from": "2026-03-01",
        "_save": "Save",
        **overrides,
    }


def test_managers_add_prices_and_sales_only_read_them(client, manager_user, sales_user):
    add = reverse("admin:orders_price_add")
    with travel(date(2026, 2, 10)):
        client.force_login(sales_user)
        assert client.get(reverse("admin:orders_price_changelist")).status_code == 200
        assert client.post(add, _price_post()).status_code == 403
        assert client.get(reverse("admin:orders_discountpolicy_add")).status_code == 403
        client.force_login(manager_user)
        assert client.post(add, _price_post()).status_code == 302

    price = Price.objects.get()
    assert (price.unit_price, price.currency, price.created_by) == (D("10"), "EUR", manager_user)


def test_a_price_cannot_start_in_the_past(client, manager_user):
    client.force_login(manager_user)
    with travel(date(2026, 2, 10)):
        response = client.post(
            reverse("admin:orders_price_add"), _price_post(valid_from="2026-02-09")
        )

    assert response.status_code == 200
    assert "valid_from" in response.context["adminform"].form.errors
    assert not Price.objects.exists()


def test_a_second_price_from_the_same_day_is_refused_on_its_field(client, manager_user):
    client.force_login(manager_user)
    with travel(date(2026, 2, 10)):
        first = client.post(reverse("admin:orders_price_add"), _price_post())
        second = client.post(reverse("admin:orders_price_add"), _price_post(unit_price="9"))

    assert first.status_code == 302
    assert "valid_from" in second.context["adminform"].form.errors
    assert Price.objects.get().unit_price == D("10")


def test_a_price_whose_date_has_come_is_history(client, manager_user):
    price = _price("10.00", date(2026, 2, 10))
    client.force_login(manager_user)
    change = reverse("admin:orders_price_change", args=[price.pk])
    delete = reverse("admin:orders_price_delete", args=[price.pk])

    with travel(date(2026, 2, 9)):
        assert (
            client.post(
                change, _price_post(unit_price="11.00", valid_from="2026-02-10")
            ).status_code
            == 302
        )
    with travel(date(2026, 2, 10)):
        assert (
            client.post(
                change, _price_post(unit_price="12.00", valid_from="2026-02-10")
            ).status_code
            == 403
        )
        assert client.post(delete, {"post": "yes"}).status_code == 403
        price.unit_price = D("13")
        with pytest.raises(Exception, match="applies since 10 Feb 2026: it is not changed"):
            price.full_clean()

    price.refresh_from_db()
    assert price.unit_price == D("11.00")


def test_price_list_shows_the_price_in_force_today(client, manager_user):
    _price("10.00", date(2026, 1, 1))
    _price("11.00", date(2026, 2, 1))
    _price("12.00", date(2026, 3, 1))
    client.force_login(manager_user)

    with travel(date(2026, 2, 10)):
        response = client.get(reverse("admin:orders_price_changelist"))
        in_force = client.get(reverse("admin:orders_price_changelist") + "?in_force=today")

    grid = {row["product"]: row["prices"] for row in response.context["price_grid"]}
    monthly = grid[Order.Product.OO_STD.label][0]
    assert monthly.unit_price == D("11")
    assert grid[Order.Product.OO_ENT.label] == [None, None]
    assert [p.unit_price for p in in_force.context["cl"].result_list] == [D("11")]


def test_managers_set_the_maximum_discount(client, manager_user):
    client.force_login(manager_user)
    add = reverse("admin:orders_discountpolicy_add")

    assert client.post(add, {"max_discount_percent": "15", "_save": "Save"}).status_code == 302
    assert DiscountPolicy.max_discount() == D("15")
    # One policy: "add" opens it again, to be changed.
    assert client.get(add)["Location"] == reverse("admin:orders_discountpolicy_change", args=[1])
    client.post(add, {"max_discount_percent": "20", "_save": "Save"})
    assert DiscountPolicy.objects.get().max_discount_percent == D("15")


# The CSV -----------------------------------------------------------------------------------------


def _export(client) -> list[dict]:
    response = client.get(reverse("admin:orders_order_export"))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_adds_price_discount_value_and_mrr(client, manager_user):
    with travel(date(2026, 2, 10)):
        OrderFactory(
            number="Y1",
            duration="yearly",
            status=Order.Status.ACTIVE,
            current_term_end=date(2027, 1, 1),
            unit_price=D("9.99"),
            discount_percent=D("12.5"),
            value=D("61.19"),
            currency="EUR",
            current_value=D("61.19"),
            current_currency="EUR",
        )
        OrderFactory(
            number="C1",
            status=Order.Status.CANCELLED,
            current_term_end=date(2027, 1, 1),
            value=D("5.00"),
            currency="EUR",
            current_value=D("5.00"),
            current_currency="EUR",
        )
        client.force_login(manager_user)
        rows = {row["order id"]: row for row in _export(client)}

    assert rows["Y1"] == {
        **rows["Y1"],
        "unit price": "9.9900",
        "discount %": "12.50",
        "order value": "61.19",
        "current term value": "61.19",
        "currency": "EUR",
        "MRR": "5.10",  # 61.19 / 12 = 5.099…
        "days left": "325",
    }
    # A cancelled subscription has no term running: no days left, nothing in MRR.
    assert (rows["C1"]["days left"], rows["C1"]["MRR"]) == ("", "")


def test_csv_cells_stay_formula_safe(client, manager_user):
    OrderFactory(customer=CustomerFactory(name='=HYPERLINK("http://x")'), number="F1")
    client.force_login(manager_user)

    row = _export(client)[0]

    assert row["customer"] == '\'=HYPERLINK("http://x")'
    assert row["order value"] == "" and row["currency"] == ""


# Renewals due and reminders ----------------------------------------------------------------------


def test_renewals_due_page_shows_value_and_sorts_by_it(
    client, manager_user, django_assert_max_num_queries
):
    OrderFactory(active=True, number="SOON", days_left=1, worth=D("10.00"))
    OrderFactory(active=True, number="RICH", days_left=5, worth=D("1250.50"))
    OrderFactory(active=True, number="NONE", days_left=2, worth=None)
    client.force_login(manager_user)
    url = reverse("admin:orders_renewaldue_changelist")

    soonest = client.get(url)
    with django_assert_max_num_queries(8):
        by_value = client.get(url + "?sort=value")

    assert [o.number for o in soonest.context["page"]] == ["SOON", "NONE", "RICH"]
    assert [o.number for o in by_value.context["page"]] == ["RICH", "SOON", "NONE"]
    html = by_value.content.decode()
    assert "1,250.50 EUR" in html and "no price" in html
    assert "sort=value&amp;p=" not in html  # one page: no pager links
    assert "?sort=value" in soonest.content.decode()


def test_reminder_digest_shows_each_subscription_value(mailoutbox):
    from orders.renewals.reminders import send_renewal_reminders

    order = OrderFactory(active=True, number="DIGEST", days_left=3, worth=D("99.90"))
    order.customer.account_manager = UserFactory(username="anna")
    order.customer.save()

    send_renewal_reminders()

    assert len(mailoutbox) == 2  # anna's digest and the managers' summary
    assert all("99.90 EUR" in message.body for message in mailoutbox)


def test_order_list_shows_the_current_term_value_with_its_currency(client, manager_user):
    OrderFactory(current_value=D("1234.5"), current_currency="EUR")
    client.force_login(manager_user)

    html = client.get(reverse("admin:orders_order_changelist")).content.decode()

    assert "1,234.50 EUR" in html


# A price that priced a sale ----------------------------------------------------------------------


def test_a_future_line_an_early_renewal_was_sold_at_is_neither_changed_nor_deleted(
    client, manager_user
):
    _price("10.00", date(2026, 1, 1))
    future = _price("12.00", date(2026, 3, 10))
    order = _place(date(2026, 2, 10), licenses=20)  # term 10 Feb – 10 Mar
    with travel(date(2026, 3, 1)):
        renewal = provisioning.order_renew(order=order)  # term from 10 Mar, at 12.00
    client.force_login(manager_user)
    change = reverse("admin:orders_price_change", args=[future.pk])
    delete = reverse("admin:orders_price_delete", args=[future.pk])

    with travel(date(2026, 3, 2)):
        edited = client.post(change, _price_post(unit_price="99.00", valid_from="2026-03-10"))
        deleted = client.post(delete, {"post": "yes"})
        page = client.get(change).content.decode()
        future.unit_price = D("99")
        with pytest.raises(Exception, match="priced a sale"):
            future.full_clean()

    assert (edited.status_code, deleted.status_code) == (403, 403)
    assert "This price priced a sale" in page
    renewal.refresh_from_db()
    future.refresh_from_db()
    assert renewal.price == future
    assert (future.unit_price, renewal.unit_price, renewal.value) == (
        D("12.0000"),
        D("12.0000"),
        D("240.00"),
    )
    # The database refuses too, whoever asks.
    with pytest.raises(Exception, match="protected|referenced|FOREIGN KEY"):
        future.delete()


def test_a_future_line_nobody_was_sold_at_can_still_be_fixed_and_deleted(client, manager_user):
    future = _price("12.00", date(2026, 3, 10))
    client.force_login(manager_user)
    change = reverse("admin:orders_price_change", args=[future.pk])

    with travel(date(2026, 3, 2)):
        edited = client.post(change, _price_post(unit_price="13.00", valid_from="2026-03-10"))
        future.refresh_from_db()
        assert (edited.status_code, future.unit_price) == (302, D("13.00"))
        deleted = client.post(
            reverse("admin:orders_price_delete", args=[future.pk]), {"post": "yes"}
        )

    assert deleted.status_code == 302
    assert not Price.objects.exists()


def test_an_edit_form_opened_before_the_sale_cannot_change_the_line_after_it(client, manager_user):
    _price("10.00", date(2026, 1, 1))
    future = _price("12.00", date(2026, 3, 10))
    order = _place(date(2026, 2, 10), licenses=20)
    client.force_login(manager_user)
    change = reverse("admin:orders_price_change", args=[future.pk])
    with travel(date(2026, 3, 1)):
        assert client.get(change).status_code == 200  # the form is open in a tab
        provisioning.order_renew(order=order)  # meanwhile, a renewal is sold at the line
        # The tab's save reaches the admin's save with the line already sold.
        request = RequestFactory().post(change)
        request.user, request.session = manager_user, {}
        request._messages = FallbackStorage(request)
        admin_ = PriceAdmin(Price, admin_site)
        stale = Price.objects.get(pk=future.pk)
        stale.unit_price = D("99.00")
        admin_.save_model(request, stale, form=None, change=True)
        response = admin_.response_change(request, stale)

    future.refresh_from_db()
    assert future.unit_price == D("12.0000")
    assert response.status_code == 302
    assert "priced a sale meanwhile" in str(list(request._messages)[0])


def test_todays_typo_is_corrected_by_a_line_that_supersedes_it_with_who_and_why(
    client, manager_user
):
    typo = _price("100.00", date(2026, 2, 10))  # meant 10.00
    sold = _place(date(2026, 2, 10), licenses=2)
    client.force_login(manager_user)
    page = reverse("admin:orders_price_change", args=[typo.pk])

    with travel(date(2026, 2, 10)):
        html = client.get(page).content.decode()
        correct = reverse("admin:orders_price_add") + f"?corrects={typo.pk}"
        without_reason = client.post(correct, {"unit_price": "10.00", "reason": "", "_save": "1"})
        done = client.post(
            correct, {"unit_price": "10.00", "reason": "Typo: one zero too many", "_save": "1"}
        )
        later = _place(date(2026, 2, 10), licenses=2)
        listed = client.get(reverse("admin:orders_price_changelist")).content.decode()
        corrected = client.get(reverse("admin:orders_price_changelist") + "?in_force=corrected")

    assert f'href="{correct.replace("&", "&amp;")}"' in html
    assert "Correct this price" in html
    assert without_reason.status_code == 200
    assert "reason" in without_reason.context["adminform"].form.errors
    assert done.status_code == 302
    fix = Price.objects.get(corrects=typo)
    assert (fix.product, fix.duration, fix.valid_from, fix.unit_price) == (
        "oo-std",
        "monthly",
        date(2026, 2, 10),
        D("10.00"),
    )
    assert (fix.created_by, fix.reason) == (manager_user, "Typo: one zero too many")
    sold.refresh_from_db()
    later.refresh_from_db()
    # The sale at the typo keeps its price, and the line that explains it.
    assert (sold.price, sold.unit_price, sold.value) == (typo, D("100.0000"), D("200.00"))
    assert (later.price, later.unit_price, later.value) == (fix, D("10.0000"), D("20.00"))
    assert [p.pk for p in corrected.context["cl"].result_list] == [typo.pk]
    assert "corrected" in listed and "10.00 EUR" in listed


def test_a_line_is_corrected_once_and_only_from_today_on(client, manager_user):
    old = _price("10.00", date(2026, 1, 1))
    today_line = _price("11.00", date(2026, 2, 10))
    client.force_login(manager_user)
    add = reverse("admin:orders_price_add")
    post = {"unit_price": "12.00", "reason": "wrong", "_save": "1"}

    with travel(date(2026, 2, 10)):
        past = client.post(add + f"?corrects={old.pk}", post)
        first = client.post(add + f"?corrects={today_line.pk}", post)
        second = client.post(add + f"?corrects={today_line.pk}", post)

    assert past.status_code == first.status_code == second.status_code == 302
    corrected = Price.objects.filter(corrects__isnull=False).values_list("corrects", flat=True)
    assert list(corrected) == [today_line.pk]
    assert Price.objects.count() == 3


def test_every_sale_is_explained_by_the_line_it_points_at():
    _price("10.00", date(2026, 1, 1))
    orders = [_place(date(2026, 2, day), licenses=day) for day in (1, 2, 3)]
    with travel(date(2026, 2, 3)):
        typo = _price("10.50", date(2026, 2, 3))
    Price.objects.create(
        product="oo-std",
        duration="monthly",
        unit_price=D("10.25"),
        valid_from=date(2026, 2, 3),
        corrects=typo,
        reason="wrong",
    )
    orders.append(_place(date(2026, 2, 3), licenses=4))

    for order in Order.objects.filter(value__isnull=False):
        line = order.price
        assert (line.unit_price, line.currency) == (order.unit_price, order.currency)
        assert line.product == order.product and line.duration == order.duration
        assert line.valid_from <= order.term_start
    assert Order.objects.get(pk=orders[-1].pk).unit_price == D("10.25")


def test_the_future_is_judged_on_oneoffices_calendar(client, manager_user, settings):
    # 23:30 on 9 Feb in Athens is already 10 Feb in Tokyo, where OneOffice dates its terms.
    settings.TIME_ZONE = "Europe/Athens"
    settings.ONEOFFICE_TIME_ZONE = "Asia/Tokyo"
    line = _price("10.00", date(2026, 2, 10))
    client.force_login(manager_user)
    late = datetime(2026, 2, 9, 23, 30, tzinfo=ZoneInfo("Europe/Athens"))

    with time_machine.travel(late, tick=False):
        edited = client.post(
            reverse("admin:orders_price_change", args=[line.pk]),
            _price_post(unit_price="11.00", valid_from="2026-02-10"),
        )
        yesterday_there = client.post(
            reverse("admin:orders_price_add"), _price_post(valid_from="2026-02-09")
        )
        listed = client.get(reverse("admin:orders_price_changelist") + "?in_force=today")

    assert edited.status_code == 403
    assert "valid_from" in yesterday_there.context["adminform"].form.errors
    assert [p.pk for p in listed.context["cl"].result_list] == [line.pk]


def test_the_price_grid_shows_the_portal_currency_only(client, manager_user, settings):
    _price("10.00", date(2026, 1, 1))
    Price.objects.create(
        product="oo-ent",
        duration="yearly",
        unit_price=D("1500"),
        currency="JPY",
        valid_from=date(2026, 1, 1),
    )
    client.force_login(manager_user)

    with travel(date(2026, 2, 10)):
        settings.PORTAL_CURRENCY = "JPY"
        in_yen = client.get(reverse("admin:orders_price_changelist"))
        settings.PORTAL_CURRENCY = "EUR"
        in_euro = client.get(reverse("admin:orders_price_changelist"))

    def grid(response):
        return {
            (row["product"], i): f"{p.unit_price} {p.currency}"
            for row in response.context["price_grid"]
            for i, p in enumerate(row["prices"])
            if p is not None
        }

    assert grid(in_yen) == {(Order.Product.OO_ENT.label, 1): "1500.0000 JPY"}
    assert grid(in_euro) == {(Order.Product.OO_STD.label, 0): "10.0000 EUR"}
    assert "in JPY" in in_yen.content.decode()
