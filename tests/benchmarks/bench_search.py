"""Benchmark: search at scale, each list against Django's plain change list of the same rows,
the header's search page, and a customer's page at the size filled. A script, not a test:

    .venv/bin/python tests/benchmarks/bench_search.py [--orders 100000] [--runs 5]
    .venv/bin/python tests/benchmarks/bench_search.py --orders 1000000 \\
        --database-url postgres://postgres@127.0.0.1:5432/search_bench

It fills (or, with --reuse, takes) the scratch database tests/benchmarks/bench_orders.py fills,
with one customer in 50 also named "Café Olé" (typed "cafe" it must be found), and prints a
markdown table: per search, the SQL queries, the median time and the median ratio to the plain
change list timed in turn with it (target: 1.3x for a substring search at a million orders).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_orders as base  # noqa: E402

ACCENTED_EVERY = 50


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=base.DEFAULT_URL)
    parser.add_argument("--orders", type=int, default=100_000, help="orders to create")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database if it already holds --orders"
    )
    parser.add_argument(
        "--renewals-of-one", type=int, default=1000, help="renewals of one subscription"
    )
    return parser.parse_args()


def accent_names() -> int:
    """Name one customer in ACCENTED_EVERY "… Café Olé", keeping its search column."""
    from django.db import connection

    from customers.models import Customer

    accented = Customer.objects.filter(name__endswith=" Café Olé")
    if accented.exists():
        return accented.count()
    newline = "chr(10)" if connection.vendor == "postgresql" else "char(10)"
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_customer SET name = name || ' Café Olé', "
            f"search_text = lower(code) || {newline} || lower(name) || ' cafe ole' || "
            f"{newline} || lower(admin_email) || {newline} || lower(admin_display_name) "
            f"WHERE id % {ACCENTED_EVERY} = 0"
        )
        cursor.execute("ANALYZE")
    sample = accented.first()
    assert sample is not None and sample.search_text == sample.searchable_text()
    return accented.count()


def engine(connection) -> str:
    if connection.vendor == "sqlite":
        return "SQLite " + ".".join(str(part) for part in connection.Database.sqlite_version_info)
    return f"PostgreSQL {connection.pg_version // 10000}.{connection.pg_version % 10000}"


def main() -> int:
    args = parse_args()
    if "bench" not in base.database_name(args.database_url):
        print("Refusing: the scratch database's name must contain 'bench'.", file=sys.stderr)
        return 2
    if not args.reuse:
        base.recreate_database(args.database_url)
    base.setup_django(args.database_url)

    from django.conf import settings
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client, RequestFactory
    from django.urls import reverse
    from django.utils import timezone

    from customers.models import Customer
    from orders.models import Order
    from portal.models import ProvisioningCall

    today = timezone.localdate()
    call_command("migrate", verbosity=0)
    expected = args.orders + args.renewals_of_one
    existing = Order.objects.count()
    if existing != expected:
        if existing:
            print(f"The database holds {existing} orders, not {expected}: run without --reuse.")
            return 2
        base.fill(args.orders, today, args.orders, args.renewals_of_one)
    accented = accent_names()
    settings.DEBUG = False

    user, _ = get_user_model().objects.get_or_create(
        username="bench-root", defaults={"is_staff": True, "is_superuser": True}
    )
    factory = RequestFactory()
    client = Client()
    client.force_login(user)

    def changelist(modeladmin, query: str = ""):
        def get():
            request = factory.get("/bench/?" + query)
            request.user = user
            response = modeladmin.changelist_view(request)
            response.render()
            return len(response.content)

        return get

    def page(url: str):
        def get():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            return len(response.content)

        return get

    def found(model, query: str) -> int:
        real = admin.site._registry[model]
        request = factory.get("/bench/?" + query)
        request.user = user
        return real.get_changelist_instance(request).result_count

    some_order = Order.objects.filter(parent__isnull=True).order_by("pk")[
        Order.objects.count() // 3
    ]
    some_customer = some_order.customer
    searches = [
        ("", "list, no search"),
        ("q=gmbh", "a word of one name in four (gmbh)"),
        ("q=cafe", f"an accented word typed plain (cafe: 1 name in {ACCENTED_EVERY})"),
        ("q=4711", "digits inside names (4711)"),
        ("q=customer+4711+gmbh", "three words (customer 4711 gmbh)"),
        (f"q={some_customer.admin_email}", "an email"),
        (f"q={some_order.number.lower()}", "an order id, in lower case"),
        ("q=zzqx", "a word no name holds (zzqx)"),
    ]
    lists = [
        (Order, "order list", searches),
        (Customer, "customer list", [searches[i] for i in (0, 1, 2, 3, 5)]),
        (ProvisioningCall, "call log", [searches[i] for i in (0, 2, 3, 6)]),
    ]
    print(
        f"### search, {engine(connection)}: {Order.objects.count():,} orders, "
        f"{Customer.objects.count():,} customers ({accented:,} named Café Olé), "
        f"{ProvisioningCall.objects.count():,} calls; median of {args.runs} runs\n"
    )
    print("| list, search | found | SQL queries | ms | x plain |")
    print("|---|---:|---:|---:|---:|")
    for model, name, cases in lists:
        real = admin.site._registry[model]
        plain, _ = base.variants(real)
        _, plain_seconds, _ = base.measure(changelist(plain), args.runs)
        for query, label in cases:
            queries, seconds, ratio = base.measure_against(
                changelist(real, query), changelist(plain), args.runs
            )
            print(
                f"| {name}, {label} | {found(model, query):,} | {queries} | "
                f"{seconds * 1000:,.1f} | {ratio:.2f}x |"
            )
        print(f"| {name}, Django's plain change list | | | {plain_seconds * 1000:,.1f} | 1.00x |")

    orders_plain, _ = base.variants(admin.site._registry[Order])
    search_url = reverse("admin:search")
    print("\n| header search page | SQL queries | ms | x plain order list |")
    print("|---|---:|---:|---:|")
    for query, label in searches[1:5]:
        queries, seconds, ratio = base.measure_against(
            page(f"{search_url}?{query}"), changelist(orders_plain), args.runs
        )
        print(f"| {label} | {queries} | {seconds * 1000:,.1f} | {ratio:.2f}x |")

    customers = [
        (
            f"an ordinary customer ({Order.objects.filter(customer=some_customer).count()} orders)",
            some_customer.pk,
        )
    ]
    # The customer of the subscription renewed --renewals-of-one times.
    busiest = Order.objects.filter(number__startswith="BENCH-M").values_list("customer", flat=True)
    if busiest:
        count = Order.objects.filter(customer=busiest[0]).count()
        customers.append((f"the customer with {count:,} orders", busiest[0]))
    print("\n| customer page | SQL queries | ms |")
    print("|---|---:|---:|")
    for label, pk in customers:
        url = reverse("admin:customers_customer_change", args=[pk])
        queries, seconds, _ = base.measure(page(url), args.runs)
        print(f"| {label} | {queries} | {seconds * 1000:,.1f} |")
    print(
        "\nx plain: the median, over runs taken in turn with the plain list, of the time against "
        f"it. {connection.vendor}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
