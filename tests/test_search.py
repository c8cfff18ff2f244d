"""What search finds on every list with a search box: a word anywhere in a name, accents and
case aside; ids with or without their prefix; emails. And the stored column it reads is kept
by every way a customer is written."""

import pytest
from django.db import connection
from django.urls import reverse

from customers.models import Customer
from orders.models import Order
from portal.admin.changelists import customer_search_q
from portal.core.search import fold, search_words
from portal.models import Batch
from tests.factories import (
    BatchFactory,
    BatchItemFactory,
    CustomerFactory,
    OrderFactory,
    ProvisioningCallFactory,
    RenewalReminderFactory,
)

CUSTOMERS = reverse("admin:customers_customer_changelist")
ORDERS = reverse("admin:orders_order_changelist")
CALLS = reverse("admin:portal_provisioningcall_changelist")
REMINDERS = reverse("admin:orders_renewalreminder_changelist")
RENEWALS = reverse("admin:orders_renewaldue_changelist")
BATCHES = reverse("admin:portal_batch_changelist")


@pytest.mark.parametrize(
    ("typed", "folded"),
    [
        ("Café Olé", "cafe ole"),
        ("BJÖRK & Søn Rådgivning", "bjork & son radgivning"),
        ("Straße  Łódź", "strasse lodz"),
        ("Ærø Œuvre", "aero oeuvre"),
        ("ﬁne ＡＢＣ", "fine abc"),
        ("İstanbul", "istanbul"),
    ],
)
def test_fold_drops_accents_case_and_compatibility_forms(typed, folded):
    assert fold(typed) == folded


def test_search_words_are_folded_once_each_and_bounded():
    assert search_words("  Café cafe CAFÉ olé ") == ["cafe", "ole"]
    assert len(search_words(" ".join(f"w{i}" for i in range(20)))) == 6


@pytest.fixture
def manager_client(client, manager_user):
    client.force_login(manager_user)
    return client


def _listed(client, url: str, q: str) -> list:
    response = client.get(url, {"q": q})
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


@pytest.fixture
def book(db):
    """Customers whose names, ids and emails a search must tell apart."""
    return {
        "cafe": CustomerFactory(
            code="C-7QK4M2XZ9P", name="Café Olé", admin_email="jane@cafe-ole.example"
        ),
        "acme": CustomerFactory(
            code="ACME-1", name="Acme Trading GmbH", admin_display_name="Jürgen Weiß"
        ),
        "bjork": CustomerFactory(code="C-BJORK2345", name="Björk & Søn Rådgivning AS"),
        "other": CustomerFactory(code="C-OTHER2345", name="Zebra Shipping SA"),
    }


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("cafe", ["cafe"]),
        ("CAFÉ OLE", ["cafe"]),
        ("olé", ["cafe"]),
        ("Trading", ["acme"]),
        ("trad gmb", ["acme"]),
        ("bjork son", ["bjork"]),
        ("radgivning", ["bjork"]),
        ("jane@cafe-ole.example", ["cafe"]),
        ("cafe-ole.example", ["cafe"]),
        ("jurgen weiss", ["acme"]),
        ("7QK4M2XZ9P", ["cafe"]),
        ("c-7qk4m2xz9p", ["cafe"]),
        ("acme-1", ["acme"]),
        ("acme zebra", []),
        ("%", []),
        ("_", []),
    ],
)
def test_customer_list_finds_a_word_anywhere_an_id_or_an_email(manager_client, book, q, found):
    listed = _listed(manager_client, CUSTOMERS, q)

    assert sorted(c.code for c in listed) == sorted(book[key].code for key in found)


def test_order_list_finds_a_subscription_by_id_without_prefix_or_a_renewals_id(
    manager_client, book
):
    wanted = OrderFactory(number="O-ABCDE23456", customer=book["other"])
    renewal = OrderFactory(number="O-RENEW23456", customer=book["other"], parent=wanted)
    OrderFactory(number="O-ABCDE234567", customer=book["other"])

    assert _listed(manager_client, ORDERS, "abcde23456") == [wanted]
    assert _listed(manager_client, ORDERS, "O-ABCDE23456") == [wanted]
    # The list shows subscriptions: a renewal's id finds the subscription it renews.
    assert _listed(manager_client, ORDERS, renewal.number) == [wanted]


def test_order_list_finds_subscriptions_by_a_word_of_their_customer(manager_client, book):
    cafe = OrderFactory(customer=book["cafe"])
    acme = OrderFactory(customer=book["acme"])
    OrderFactory(customer=book["other"])

    assert _listed(manager_client, ORDERS, "cafe") == [cafe]
    assert _listed(manager_client, ORDERS, "GMBH") == [acme]
    assert _listed(manager_client, ORDERS, "jane@cafe-ole.example") == [cafe]


def test_call_log_finds_a_customers_calls_by_a_word_of_its_name(manager_client, book):
    order = OrderFactory(customer=book["cafe"], number="O-CALLS23456")
    registered = ProvisioningCallFactory(
        order=None, customer=book["cafe"], method="createCustomer", params={}
    )
    placed = ProvisioningCallFactory(order=order, customer=None)
    ProvisioningCallFactory(order=OrderFactory(customer=book["other"]), customer=None)

    assert _listed(manager_client, CALLS, "olé") == [placed, registered]
    assert _listed(manager_client, CALLS, "calls23456") == [placed]


def test_reminder_list_finds_reminders_by_customer_word_or_subscription_id(manager_client, book):
    mine = RenewalReminderFactory(
        subscription=OrderFactory(customer=book["cafe"], number="O-REMIND2345", active=True)
    )
    RenewalReminderFactory(subscription=OrderFactory(customer=book["other"], active=True))

    assert _listed(manager_client, REMINDERS, "Café") == [mine]
    assert _listed(manager_client, REMINDERS, "remind2345") == [mine]


def test_renewals_due_page_searches_and_keeps_the_search_in_its_links(manager_client, book):
    cafe = OrderFactory(customer=book["cafe"], active=True, days_left=5)
    other = OrderFactory(customer=book["other"], active=True, days_left=5)

    response = manager_client.get(RENEWALS, {"q": "cafe ole"})
    html = response.content.decode()
    everything = manager_client.get(RENEWALS).content.decode()

    assert [o.number for o in response.context["page"]] == [cafe.number]
    assert other.number in everything and other.number not in html
    assert 'id="searchbar"' in html and 'value="cafe ole"' in html
    assert 'href="?q=cafe+ole&amp;state=due' in html


def test_batch_list_finds_the_batches_that_held_a_customer_or_its_orders(manager_client, book):
    by_order = BatchItemFactory(subject=OrderFactory(customer=book["cafe"])).batch
    by_customer = BatchItemFactory(
        batch=BatchFactory(kind=Batch.Kind.CUSTOMER, action="register", label="Register"),
        subject=book["cafe"],
    ).batch
    unrelated = BatchItemFactory(subject=OrderFactory(customer=book["other"])).batch
    alone = BatchFactory()

    assert set(_listed(manager_client, BATCHES, "cafe")) == {by_order, by_customer}
    assert _listed(manager_client, BATCHES, "zebra") == [unrelated]
    assert alone in _listed(manager_client, BATCHES, str(alone.pk))


def test_search_column_is_kept_by_every_way_a_customer_is_written(book):
    def stored(customer: Customer) -> str:
        return Customer.objects.values_list("search_text", flat=True).get(pk=customer.pk)

    customer = book["cafe"]
    assert stored(customer) == "c-7qk4m2xz9p\ncafe ole\njane@cafe-ole.example\nisa aswath"

    customer.name = "Crème Brûlée SARL"
    customer.save(update_fields=["name"])
    assert "creme brulee sarl" in stored(customer)

    customer.name = "Noël Édition"
    assert customer.save_edit(["name"])
    assert "noel edition" in stored(customer)

    customer.admin_display_name = "Zoë"
    Customer.objects.bulk_update([customer], ["admin_display_name"])
    assert stored(customer).endswith("\nzoe")

    (created,) = Customer.objects.bulk_create(
        [Customer(code="C-BULK234567", name="Ödön Kft", admin_email="a@b.example")]
    )
    assert stored(created).startswith("c-bulk234567\nodon kft")

    generated = Customer(name="Ça Va", admin_email="x@y.example")
    generated.save()
    assert stored(generated) == f"{generated.code.lower()}\nca va\nx@y.example\n"


def test_a_customer_saved_without_its_searched_fields_keeps_its_search_column(book):
    customer = Customer.objects.get(pk=book["acme"].pk)
    customer.account_manager = None
    customer.save(update_fields=["account_manager"])

    assert Customer.objects.filter(customer_search_q("trading"), pk=customer.pk).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes: PostgreSQL")
def test_customer_search_reads_the_trigram_index_on_postgresql(book):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = Customer.objects.filter(customer_search_q("trading")).order_by().explain()

    assert "customer_search_trgm" in plan


def test_autocomplete_of_the_order_form_finds_customers_by_a_word(client, sales_user, book):
    for customer in book.values():
        Customer.objects.filter(pk=customer.pk).update(status=Customer.Status.REGISTERED)
    client.force_login(sales_user)

    response = client.get(
        reverse("admin:autocomplete"),
        {
            "term": "trading",
            "app_label": "orders",
            "model_name": "order",
            "field_name": "customer",
        },
    )

    assert [r["text"] for r in response.json()["results"]] == [str(book["acme"])]
    assert Order.objects.count() == 0
