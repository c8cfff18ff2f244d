"""The "Renewals due" admin page, the reminder admins and the renewal window filter."""

from datetime import date, datetime, time, timedelta

import pytest
import time_machine
from django.contrib.admin import site
from django.core import mail
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders.admin.renewals import RenewalWindowFilter
from orders.models import Order, RenewalReminder
from orders.renewals.reminders import send_renewal_reminders
from tests.factories import CustomerFactory, OrderFactory, RenewalFactory, UserFactory

S = Order.Status
TODAY = date(2027, 3, 10)
PAGE = reverse("admin:orders_renewaldue_changelist")


@pytest.fixture(autouse=True)
def at_today(settings):
    settings.ONEOFFICE_RENEWAL_WINDOW_DAYS = 15
    with time_machine.travel(datetime(2027, 3, 10, 10, 0, tzinfo=timezone.get_current_timezone())):
        yield


def provision_url(order: Order) -> str:
    return reverse("admin:orders_order_provision", args=[order.pk, "renew"])


def resend_url(order: Order) -> str:
    return reverse("admin:orders_renewaldue_resend", args=[order.pk])


@pytest.mark.django_db
def test_renewals_page_lists_due_and_lapsed_soonest_first(client, sales_user):
    week = OrderFactory(active=True, days_left=7, licenses=12)
    lapsed = OrderFactory(suspended=True, days_left=-2)
    today = OrderFactory(active=True, days_left=0)
    last = OrderFactory(active=True, days_left=15)
    later = OrderFactory(active=True, days_left=16)
    cancelled = OrderFactory(cancelled=True, days_left=3)
    client.force_login(sales_user)

    response = client.get(PAGE)

    assert response.status_code == 200
    assert list(response.context["page"]) == [lapsed, today, week, last]
    html = response.content.decode()
    assert later.number not in html and cancelled.number not in html
    row = html[html.index(week.number) : html.index("</tr>", html.index(week.number))]
    assert week.customer.name in row
    assert "oo-std" in row and "<td>12</td>" in row
    assert "2027-03-17" in row
    assert '<td class="days-left">7</td>' in row
    assert "<strong>lapsed</strong> -2" in html


@pytest.mark.django_db
def test_renewals_page_filters_by_state(client, sales_user):
    OrderFactory(active=True, days_left=3)
    lapsed = OrderFactory(active=True, days_left=-1)
    client.force_login(sales_user)

    response = client.get(PAGE, {"state": "lapsed"})

    assert list(response.context["page"]) == [lapsed]


@pytest.mark.django_db
def test_renewals_page_shows_the_last_reminder_sent(client, sales_user):
    manager = UserFactory(username="amy")
    reminded = OrderFactory(active=True, days_left=4, customer__account_manager=manager)
    send_renewal_reminders()
    never = OrderFactory(active=True, days_left=5)
    client.force_login(sales_user)

    response = client.get(PAGE)

    rows = {o.pk: o.last_reminder_sent for o in response.context["page"]}
    assert rows[reminded.pk] == RenewalReminder.objects.get(subscription=reminded).sent_at
    assert rows[never.pk] is None


@pytest.mark.django_db
def test_renewals_page_offers_renew_to_sales_and_resend_to_managers(
    client, sales_user, manager_user
):
    order = OrderFactory(active=True, days_left=3)

    client.force_login(sales_user)
    as_sales = client.get(PAGE).content.decode()
    client.force_login(manager_user)
    as_manager = client.get(PAGE).content.decode()

    assert provision_url(order) in as_sales
    assert resend_url(order) not in as_sales
    assert provision_url(order) not in as_manager
    assert resend_url(order) in as_manager


@pytest.mark.django_db
def test_renewals_page_renew_button_renews_on_oneoffice(client, sales_user, active_order, sandbox):
    term_end = active_order.current_term_end
    five_days_before = term_end - timedelta(5)
    with time_machine.travel(
        datetime.combine(five_days_before, time(10, 0), timezone.get_current_timezone())
    ):
        client.force_login(sales_user)
        html = client.get(PAGE).content.decode()
        assert f'href="{provision_url(active_order)}"' in html
        assert "Renew subscription" in client.get(provision_url(active_order)).content.decode()

        response = client.post(provision_url(active_order), follow=True)

    active_order.refresh_from_db()
    assert active_order.current_term_end > term_end
    assert active_order.renewals.get().status == S.ACTIVE
    assert any("renewed" in str(m) for m in response.context["messages"])


@pytest.mark.django_db
def test_renewals_page_resend_sends_the_reminder_again(client, manager_user, settings):
    settings.MANAGERS_EMAIL = "desk@reseller.example"
    amy = UserFactory(username="amy")
    order = OrderFactory(active=True, days_left=3, customer__account_manager=amy)
    send_renewal_reminders()
    mail.outbox.clear()
    client.force_login(manager_user)

    response = client.post(resend_url(order), follow=True)

    assert response.redirect_chain[-1][0] == PAGE
    [message] = mail.outbox
    assert message.to == [amy.email] and order.number in message.body
    forced = RenewalReminder.objects.get(subscription=order, forced=True)
    assert forced.requested_by == manager_user
    assert [str(m) for m in response.context["messages"]] == [
        f"Reminder for {order} re-sent to {amy.email}, desk@reseller.example."
    ]


@pytest.mark.django_db
def test_renewals_page_resend_for_a_name_with_a_newline_sends_it_on_one_line(client, manager_user):
    order = OrderFactory(active=True, days_left=3)
    # Stored before names were checked, or written around the forms.
    CustomerFactory._meta.model.objects.filter(pk=order.customer_id).update(
        name="Acme\nBcc: someone@elsewhere.example\u202e"
    )
    client.force_login(manager_user)

    response = client.post(resend_url(order), follow=True)

    [message] = mail.outbox
    assert message.subject == f"OneOffice renewal reminder: {order.number} for Acme Bcc: " + (
        "someone@elsewhere.example"
    )
    assert "\n  Bcc" not in message.body and "Acme Bcc: someone" in message.body
    assert RenewalReminder.objects.get(forced=True).sent_at is not None
    assert "re-sent" in [str(m) for m in response.context["messages"]][0]


@pytest.mark.django_db
def test_renewals_page_resend_that_cannot_be_sent_leaves_no_reminder(
    client, manager_user, settings
):
    order = OrderFactory(active=True, days_left=3)
    settings.MANAGERS_EMAIL = "desk@reseller.example\nBcc: someone@elsewhere.example"
    client.force_login(manager_user)

    response = client.post(resend_url(order), follow=True)

    assert response.status_code == 200
    assert mail.outbox == []
    assert not RenewalReminder.objects.exists()
    [shown] = [str(m) for m in response.context["messages"]]
    assert f"The reminder for {order} was not sent" in shown


@pytest.mark.django_db
def test_renewals_page_resend_of_an_order_not_due_says_so(client, manager_user):
    order = OrderFactory(active=True, days_left=40)
    client.force_login(manager_user)

    response = client.post(resend_url(order), follow=True)

    assert mail.outbox == []
    assert "not due for renewal" in [str(m) for m in response.context["messages"]][0]


@pytest.mark.django_db
def test_renewals_page_resend_needs_the_permission_and_a_post(client, sales_user, manager_user):
    order = OrderFactory(active=True, days_left=3)
    client.force_login(sales_user)
    refused = client.post(resend_url(order))
    client.force_login(manager_user)
    got = client.get(resend_url(order))

    assert refused.status_code == 403
    assert got.status_code == 405
    assert mail.outbox == []
    assert not RenewalReminder.objects.exists()


@pytest.mark.django_db
def test_renewals_page_needs_permission_to_view_orders(client):
    stranger = UserFactory(username="stranger", is_staff=True)
    client.force_login(stranger)

    assert client.get(PAGE).status_code == 403


@pytest.mark.django_db
def test_renewals_page_is_in_the_admin_index(client, sales_user, manager_user):
    for user in (sales_user, manager_user):
        client.force_login(user)
        html = client.get(reverse("admin:index")).content.decode()
        assert f'href="{PAGE}"' in html and "Renewals due" in html


def _page_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(PAGE).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_renewals_page_uses_a_fixed_number_of_queries(
    client, sales_user, django_assert_max_num_queries
):
    manager = UserFactory(username="amy")
    for days in range(3):
        OrderFactory(active=True, days_left=days, customer__account_manager=manager)
    send_renewal_reminders()
    client.force_login(sales_user)
    client.get(PAGE)  # session and permission caches, as on any later page
    few = _page_queries(client)

    for days in range(120):
        OrderFactory(
            active=True,
            days_left=days % 20 - 4,
            customer__account_manager=manager if days % 2 else None,
        )
    send_renewal_reminders()
    many = _page_queries(client)
    with django_assert_max_num_queries(8):
        response = client.get(PAGE, {"p": 2})

    assert many == few
    assert len(response.context["page"]) == 23


@pytest.mark.django_db
def test_reminder_run_admin_shows_what_a_run_sent(client, manager_user):
    amy = UserFactory(username="amy")
    order = OrderFactory(active=True, days_left=3, customer__account_manager=amy)
    run = send_renewal_reminders()
    client.force_login(manager_user)

    listing = client.get(reverse("admin:orders_reminderrun_changelist"))
    page = client.get(reverse("admin:orders_reminderrun_change", args=[run.pk]))
    sent_url = reverse("admin:orders_renewalreminder_changelist") + f"?run__id__exact={run.pk}"
    sent = client.get(sent_url)

    assert listing.status_code == 200 and page.status_code == 200
    assert "1 reminders" in page.content.decode()
    assert f'href="{sent_url.replace("&", "&amp;")}"' in page.content.decode()
    assert order.number in sent.content.decode()
    assert amy.email in sent.content.decode()
    assert client.get(reverse("admin:orders_reminderrun_add")).status_code == 403


def _get_queries(client, url) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        assert response.status_code == 200
    return len(queries), response.content.decode()


@pytest.mark.django_db
def test_reminder_run_page_lists_no_reminders_whatever_their_number(client, manager_user):
    small = OrderFactory(
        active=True, days_left=3, customer__account_manager=UserFactory(username="amy")
    )
    first = send_renewal_reminders()
    orders = [
        OrderFactory(
            active=True, days_left=days % 15, customer__account_manager=UserFactory(username="amy")
        )
        for days in range(60)
    ]
    second = send_renewal_reminders()
    client.force_login(manager_user)
    client.get(reverse("admin:orders_reminderrun_change", args=[first.pk]))

    few, _ = _get_queries(client, reverse("admin:orders_reminderrun_change", args=[first.pk]))
    many, html = _get_queries(client, reverse("admin:orders_reminderrun_change", args=[second.pk]))

    assert many == few
    assert "60 reminders" in html
    assert not any(order.number in html for order in [small, *orders])


@pytest.mark.django_db
def test_order_page_shows_the_latest_renewals_and_links_to_all(client, superuser):
    parent = OrderFactory(active=True, days_left=0)
    first = RenewalFactory.create_batch(5, parent=parent)
    url = reverse("admin:orders_order_change", args=[parent.pk])
    client.force_login(superuser)
    client.get(url)
    few, html = _get_queries(client, url)
    assert all(renewal.number in html for renewal in first)
    later = RenewalFactory.create_batch(40, parent=parent)

    many, html = _get_queries(client, url)

    assert many == few
    shown = [r for r in [*first, *later] if f">{r.number}<" in html]
    assert len(shown) == 20 and all(r in later for r in shown)
    renewals_url = reverse("admin:orders_order_changelist") + f"?parent__id__exact={parent.pk}"
    assert "the latest 20 of 45" in html and renewals_url in html
    listing = client.get(renewals_url)
    assert {o.pk for o in listing.context["cl"].result_list} == {r.pk for r in [*first, *later]}


@pytest.mark.django_db
def test_renewal_reminder_admin_filters_by_forced(client, manager_user):
    order = OrderFactory(active=True, days_left=3)
    send_renewal_reminders()
    client.force_login(manager_user)
    client.post(resend_url(order))

    regular = client.get(reverse("admin:orders_renewalreminder_changelist"), {"forced__exact": "0"})
    forced = client.get(reverse("admin:orders_renewalreminder_changelist"), {"forced__exact": "1"})

    assert regular.context["cl"].result_count == 1
    assert [r.forced for r in forced.context["cl"].result_list] == [True]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("value", "expected"),
    [("due", [0, 15]), ("lapsed", [-1]), ("not-yet-due", [16]), (None, [-1, 0, 15, 16, 3])],
)
def test_renewal_window_filter_splits_subscriptions(superuser, value, expected):
    made = {days: OrderFactory(active=True, days_left=days) for days in (-1, 0, 15, 16)}
    made[3] = OrderFactory(cancelled=True, days_left=3)
    request = RequestFactory().get("/", {"renewal": value} if value else {})
    request.user = superuser
    params = {"renewal": [value]} if value else {}

    window = RenewalWindowFilter(request, params, Order, site._registry[Order])

    assert set(window.queryset(request, Order.objects.all())) == {made[d] for d in expected}
    assert [title for _, title in window.lookups(request, None)] == ["Due", "Lapsed", "Not yet due"]


@pytest.mark.django_db
def test_renewals_page_filters_by_account_manager_as_the_digest_links(client, sales_user):
    amy, gone = UserFactory(username="amy"), UserFactory(username="gone", is_active=False)
    hers = [
        OrderFactory(active=True, days_left=days, customer__account_manager=amy) for days in (1, 2)
    ]
    others = [
        OrderFactory(active=True, days_left=3),
        OrderFactory(active=True, days_left=4, customer__account_manager=gone),
    ]
    client.force_login(sales_user)

    mine = client.get(PAGE, {"manager": amy.pk})
    nobody = client.get(PAGE, {"manager": "none", "state": "due"})
    junk = client.get(PAGE, {"manager": "1 OR 1=1"})

    assert list(mine.context["page"]) == hers
    assert "Customers of amy" in mine.content.decode()
    assert list(nobody.context["page"]) == others
    assert len(junk.context["page"]) == 4
