"""Benchmark: the order list, the renewals page, the dashboard and the due selector at 100,000
orders. A script, not a test (`make bench`):

    .venv/bin/python tests/benchmarks/bench_orders.py [--orders 100000] [--runs 7]
    .venv/bin/python tests/benchmarks/bench_orders.py \\
        --database-url postgres://postgres@127.0.0.1:5432/oneoffice_bench

It fills a scratch database of its own (SQLite var/bench.sqlite3 unless --database-url names
another), never the development database: the database name must contain "bench", and it is
dropped and rebuilt on every run unless --reuse finds it already filled. It prints markdown
tables: per page or query, the number of SQL queries and the median time over --runs runs
(after one warm-up), and the due selector against the same predicate in hand-written SQL.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parents[2]
DEFAULT_URL = f"sqlite:///{BASE_DIR / 'var' / 'bench.sqlite3'}"
BATCH = 5_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help=f"default {DEFAULT_URL}")
    parser.add_argument("--orders", type=int, default=100_000, help="orders to create")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per measurement")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database if it already holds --orders"
    )
    parser.add_argument("--explain", action="store_true", help="print the due selector's plan")
    return parser.parse_args()


def database_name(url: str) -> str:
    parts = urlsplit(url)
    return Path(parts.path).name if parts.scheme.startswith("sqlite") else parts.path.lstrip("/")


def recreate_database(url: str) -> None:
    """Drop and create the scratch database (before Django connects to it)."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        path = Path(parts.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    name = database_name(url)
    maintenance = parts._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    # The test client's host, locmem email; nothing here may reach OneOffice or send mail.
    setup_test_environment()


def fill(total: int, today: date) -> None:
    """`total` orders: three in four are subscriptions, the rest renewals of active ones."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from customers.models import Customer
    from orders.models import Order, Price
    from orders.pricing import order_value
    from portal.models import ProvisioningCall

    rng = random.Random(20250101)
    currency = settings_currency()
    unit_prices = {}
    for product in Order.Product.values:
        for duration in Order.Duration.values:
            unit = Decimal(rng.randint(200, 5000)) / 100 * (10 if duration == "yearly" else 1)
            unit_prices[product, duration] = unit
            Price.objects.create(
                product=product,
                duration=duration,
                unit_price=unit,
                valid_from=date(2020, 1, 1),
                currency=currency,
            )

    def priced(order: Order) -> Order:
        """A confirmed term's recorded value, as the service records it; one in 50 unpriced."""
        if order.term_start is None or rng.random() < 0.02:
            return order
        order.unit_price = unit_prices[order.product, order.duration]
        order.currency = currency
        order.discount_percent = Decimal(rng.choice([0, 0, 0, 5, 10]))
        order.value = order_value(
            licenses=order.licenses,
            unit_price=order.unit_price,
            discount_percent=order.discount_percent,
            currency=currency,
        )
        if order.parent_id is None:
            order.current_value, order.current_currency = order.value, currency
        return order

    User = get_user_model()
    managers = User.objects.bulk_create(
        User(username=f"manager{i}", email=f"manager{i}@reseller.example", is_staff=True)
        for i in range(20)
    )
    subscriptions = total * 3 // 4
    customer_count = max(1, subscriptions // 4)
    customers = []
    with transaction.atomic():
        for start in range(0, customer_count, BATCH):
            customers += Customer.objects.bulk_create(
                Customer(
                    code=f"BENCH-C{i:07d}",
                    name=f"Customer {i} {rng.choice(['Ltd', 'SA', 'GmbH', 'Inc'])}",
                    admin_email=f"admin{i}@customer.example",
                    admin_phone="+30 210 555 0100",
                    admin_display_name="Admin",
                    account_manager=managers[i % len(managers)] if i % 10 else None,
                    status=Customer.Status.REGISTERED,
                )
                for i in range(start, min(start + BATCH, customer_count))
            )
    S = Order.Status
    weights = [
        (S.ACTIVE, 60),
        (S.SUSPENDED, 6),
        (S.CANCELLED, 20),
        (S.DRAFT, 6),
        (S.FAILED, 6),
        (S.PENDING, 2),
    ]
    statuses = [status for status, _ in weights]
    status_weights = [weight for _, weight in weights]
    products = Order.Product.values
    active_ids: list[int] = []
    with transaction.atomic():
        for start in range(0, subscriptions, BATCH):
            batch = []
            for i in range(start, min(start + BATCH, subscriptions)):
                status = rng.choices(statuses, status_weights)[0]
                duration = rng.choice(Order.Duration.values)
                term_end = None
                if status not in (S.DRAFT, S.FAILED):
                    # Mostly running terms; a few lapsed ones, as in a real book.
                    term_end = today + timedelta(days=rng.randint(-30, 365))
                batch.append(
                    priced(
                        Order(
                            number=f"BENCH-O{i:07d}",
                            customer=customers[i % customer_count],
                            product=rng.choice(products),
                            licenses=rng.randint(1, 500),
                            duration=duration,
                            status=status,
                            pending_action="place" if status == S.PENDING else "",
                            current_term_end=term_end,
                            term_start=term_end and term_end - timedelta(days=30),
                            term_end=term_end,
                        )
                    )
                )
            created = Order.objects.bulk_create(batch)
            active_ids += [o.pk for o in created if o.status == S.ACTIVE]
            now = timezone.now()
            # The call log dates each cancellation: churn and MRR by month read it.
            ProvisioningCall.objects.bulk_create(
                ProvisioningCall(
                    method=ProvisioningCall.Method.CANCEL_ORDER,
                    params={"id": o.number},
                    customer_id=o.customer_id,
                    order=o,
                    outcome=ProvisioningCall.Outcome.OK,
                    started_at=now - timedelta(days=rng.randint(0, 400)),
                    finished_at=now - timedelta(days=rng.randint(0, 400)),
                )
                for o in created
                if o.status == S.CANCELLED
            )
    parents = {
        pk: (customer_id, term_end)
        for pk, customer_id, term_end in Order.objects.filter(pk__in=active_ids)
        .values_list("pk", "customer_id", "current_term_end")
        .iterator()
    }
    renewed: dict[int, Order] = {}
    with transaction.atomic():
        renewals = total - subscriptions
        for start in range(0, renewals, BATCH):
            batch = []
            for i in range(start, min(start + BATCH, renewals)):
                parent_id = active_ids[i % len(active_ids)]
                customer_id, term_end = parents[parent_id]
                # The renewal is the current term; the first order's term ran before it.
                renewal = priced(
                    Order(
                        number=f"BENCH-R{i:07d}",
                        customer_id=customer_id,
                        parent_id=parent_id,
                        product=rng.choice(products),
                        licenses=rng.randint(1, 500),
                        duration=Order.Duration.MONTHLY,
                        status=S.ACTIVE,
                        term_start=term_end - timedelta(days=30),
                        term_end=term_end,
                    )
                )
                batch.append(renewal)
                renewed[parent_id] = renewal
            Order.objects.bulk_create(batch)
        first_terms = Order.objects.filter(pk__in=list(renewed)).only(
            "term_start", "term_end", "current_value", "current_currency"
        )
        updated = []
        for order in first_terms.iterator():
            renewal = renewed[order.pk]
            order.term_start = renewal.term_start - timedelta(days=30)
            order.term_end = renewal.term_start
            order.current_value, order.current_currency = renewal.value, renewal.currency
            updated.append(order)
        Order.objects.bulk_update(
            updated,
            ["term_start", "term_end", "current_value", "current_currency"],
            batch_size=1000,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def settings_currency() -> str:
    from django.conf import settings

    return settings.PORTAL_CURRENCY


def measure(fn: Callable[[], object], runs: int) -> tuple[int, float, object]:
    """(queries in one run, median seconds over `runs` runs, the last result)."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    # The query log is a bounded deque: once full, its length stops growing.
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        result = fn()
    # Counted now: later requests reset the log the capture reads from.
    count = len(queries)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return count, statistics.median(times), result


def due_raw_sql(today: date, last: date) -> tuple[str, list]:
    """The due selector's predicate, join, columns and order, written by hand."""
    sql = (
        "SELECT o.id, o.number, o.customer_id, o.parent_id, o.product, o.licenses, o.duration, "
        "o.status, o.pending_action, o.current_term_end, "
        "c.id, c.code, c.name, c.account_manager_id, "
        "u.id, u.username, u.first_name, u.last_name, u.email, u.is_active, "
        "CASE WHEN o.current_term_end < %s THEN 'lapsed' ELSE 'due' END "
        "FROM orders_order o "
        "JOIN customers_customer c ON c.id = o.customer_id "
        "LEFT JOIN auth_user u ON u.id = c.account_manager_id "
        "WHERE o.parent_id IS NULL AND o.status IN ('active', 'suspended') "
        "AND o.current_term_end <= %s "
        "ORDER BY o.current_term_end, o.number"
    )
    return sql, [today, last]


CANCEL_DATES = (
    "SELECT order_id, MIN(finished_at) AS cancelled_at FROM portal_provisioningcall "
    "WHERE method = 'cancelOrder' AND outcome = 'ok' GROUP BY order_id"
)


def revenue_raw_sql(today: date) -> dict[str, tuple[str, list]]:
    """Each dashboard revenue figure written by hand, as its definition in the README reads."""
    from django.conf import settings
    from django.db import connection

    from orders import revenue

    def d(day: date):
        return connection.ops.adapt_datefield_value(day)

    def start_of(day: date):
        return connection.ops.adapt_datetimefield_value(revenue._start_of(day))

    cur = settings.PORTAL_CURRENCY
    priced = "current_value IS NOT NULL AND current_currency = %s"
    recurring = (
        "SELECT product, "
        "SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status = 'suspended' THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN NOT ({priced}) THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN status = 'active' AND duration = 'monthly' AND {priced} "
        "THEN current_value END), "
        f"SUM(CASE WHEN status = 'active' AND duration = 'yearly' AND {priced} "
        "THEN current_value END) "
        "FROM orders_order WHERE parent_id IS NULL AND status IN ('active', 'suspended') "
        "AND current_term_end >= %s GROUP BY product ORDER BY product"
    )
    due_parts, due_params = [], []
    for days in revenue.DUE_HORIZONS:
        last = d(today + timedelta(days=days))
        due_parts += [
            "SUM(CASE WHEN current_term_end >= %s AND current_term_end <= %s THEN 1 ELSE 0 END)",
            "SUM(CASE WHEN current_term_end >= %s AND current_term_end <= %s "
            f"AND {priced} THEN current_value END)",
        ]
        due_params += [d(today), last, d(today), last, cur]
    due_parts += [
        "SUM(CASE WHEN current_term_end < %s THEN 1 ELSE 0 END)",
        f"SUM(CASE WHEN current_term_end < %s AND {priced} THEN current_value END)",
    ]
    due_params += [d(today), d(today), cur]
    due = (
        f"SELECT {', '.join(due_parts)} FROM orders_order WHERE parent_id IS NULL "
        "AND status IN ('active', 'suspended') AND current_term_end <= %s"
    )
    churn_parts, churn_params = [], []
    for days in revenue.CHURN_PERIODS:
        since = start_of(today - timedelta(days=days - 1))
        first = d(today - timedelta(days=days))
        churn_parts += [
            "SUM(CASE WHEN o.status = 'cancelled' AND c.cancelled_at >= %s THEN 1 ELSE 0 END)",
            "SUM(CASE WHEN o.status = 'cancelled' AND c.cancelled_at >= %s "
            f"AND {priced} THEN current_value END)",
            "SUM(CASE WHEN o.status <> 'cancelled' AND current_term_end >= %s THEN 1 ELSE 0 END)",
            "SUM(CASE WHEN o.status <> 'cancelled' AND current_term_end >= %s "
            f"AND {priced} THEN current_value END)",
        ]
        churn_params += [since, since, cur, first, first, cur]
    longest = d(today - timedelta(days=max(revenue.CHURN_PERIODS)))
    churn = (
        f"SELECT {', '.join(churn_parts)} FROM orders_order o "
        f"LEFT JOIN ({CANCEL_DATES}) c ON c.order_id = o.id "
        "WHERE o.parent_id IS NULL AND (o.status = 'cancelled' OR "
        "(o.status IN ('active', 'suspended') AND current_term_end < %s "
        "AND current_term_end >= %s))"
    )
    rate = (
        "SELECT COUNT(*), SUM(CASE WHEN EXISTS (SELECT 1 FROM orders_order r "
        "WHERE r.parent_id = COALESCE(o.parent_id, o.id) AND r.term_start = o.term_end "
        "AND r.status = 'active') THEN 1 ELSE 0 END) "
        "FROM orders_order o WHERE o.term_end >= %s AND o.term_end < %s"
    )
    days = revenue.month_ends(today)[:-1]
    month_parts, month_params = [], []
    for day in days:
        for duration in ("monthly", "yearly"):
            month_parts.append(
                "SUM(CASE WHEN term_start <= %s AND term_end > %s AND duration = %s AND "
                "(c.cancelled_at IS NULL OR c.cancelled_at >= %s) THEN value END)"
            )
            month_params += [d(day), d(day), duration, start_of(day + timedelta(days=1))]
    months = (
        f"SELECT {', '.join(month_parts)} FROM orders_order o "
        f"LEFT JOIN ({CANCEL_DATES}) c ON c.order_id = COALESCE(o.parent_id, o.id) "
        "WHERE value IS NOT NULL AND currency = %s AND term_start <= %s AND term_end > %s"
    )
    weeks = (
        "SELECT current_term_end, COUNT(*), "
        f"SUM(CASE WHEN {priced} THEN current_value END) FROM orders_order "
        "WHERE parent_id IS NULL AND status IN ('active', 'suspended') "
        "AND current_term_end >= %s AND current_term_end <= %s GROUP BY current_term_end"
    )
    return {
        "MRR and ARR by product": (recurring, [cur, cur, cur, d(today)]),
        "renewals due 15/30/90 days, lapsed": (
            due,
            [*due_params, d(today + timedelta(days=max(revenue.DUE_HORIZONS)))],
        ),
        "churn, last 30/90 days": (churn, [*churn_params, d(today), longest]),
        "renewal rate, last 90 days": (
            rate,
            [d(today - timedelta(days=revenue.RENEWAL_RATE_DAYS)), d(today)],
        ),
        "MRR by month, last 12 months": (
            months,
            [*month_params, cur, d(days[-1]), d(days[0])],
        ),
        "renewal value due per week, 12 weeks": (
            weeks,
            [cur, d(today), d(today + timedelta(days=7 * 12 - 1))],
        ),
    }


def measure_pair(
    first: Callable[[], object], second: Callable[[], object], runs: int
) -> tuple[float, float, object]:
    """Median seconds of each, run in turns so a busy machine slows both alike; and the
    second's last result."""
    first(), second()
    first_times, second_times = [], []
    for _ in range(runs):
        started = time.perf_counter()
        first()
        first_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = second()
        second_times.append(time.perf_counter() - started)
    return statistics.median(first_times), statistics.median(second_times), result


def orm_statements(fn: Callable[[], object]) -> list[tuple[str, list]]:
    """The SQL and parameters `fn` sends, exactly, to be timed on their own."""
    from django.db import connection

    statements = []

    def record(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        fn()
    return statements


def _money(amount) -> Decimal:
    return Decimal(str(amount or 0)).quantize(Decimal("0.01"))


def revenue_checks(today: date, raw: dict[str, list]) -> None:
    """The ORM's figures equal the hand-written SQL's: same definition, same numbers."""
    from orders import revenue

    recurring = revenue.revenue_recurring(today=today)
    exact = sum(
        (Decimal(str(row[4] or 0)) + Decimal(str(row[5] or 0)) / 12)
        for row in raw["MRR and ARR by product"]
    )
    assert recurring.mrr == _money(exact), (recurring.mrr, exact)
    due = revenue.revenue_renewals_due(today=today)
    flat = raw["renewals due 15/30/90 days, lapsed"][0]
    assert [x for a in due for x in (a.count, a.value)] == [
        int(v or 0) if i % 2 == 0 else _money(v) for i, v in enumerate(flat)
    ]
    churn = revenue.revenue_churn(today=today)
    flat = raw["churn, last 30/90 days"][0]
    assert [
        x for c in churn for x in (c.cancelled, c.cancelled_value, c.lapsed, c.lapsed_value)
    ] == [int(v or 0) if i % 2 == 0 else _money(v) for i, v in enumerate(flat)]
    rate = revenue.revenue_renewal_rate(today=today)
    assert (rate.came_due, rate.renewed) == tuple(
        int(v or 0) for v in raw["renewal rate, last 90 days"][0]
    )
    months = revenue.revenue_mrr_by_month(today=today)[:-1]
    flat = raw["MRR by month, last 12 months"][0]
    assert [p.value for p in months] == [
        _money(Decimal(str(flat[2 * i] or 0)) + Decimal(str(flat[2 * i + 1] or 0)) / 12)
        for i in range(len(months))
    ]
    weeks = revenue.revenue_due_per_week(today=today)
    assert sum(w.count for w in weeks) == sum(
        row[1] for row in raw["renewal value due per week, 12 weeks"]
    )


def main() -> int:
    args = parse_args()
    if "bench" not in database_name(args.database_url):
        print("Refusing: the scratch database's name must contain 'bench'.", file=sys.stderr)
        return 2
    if not args.reuse:
        recreate_database(args.database_url)
    setup_django(args.database_url)

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import NoReverseMatch, reverse
    from django.utils import timezone

    from orders import selectors
    from orders.models import Order

    today = timezone.localdate()
    call_command("migrate", verbosity=0)
    existing = Order.objects.count()
    if existing != args.orders:
        if existing:
            print(f"The database holds {existing} orders, not {args.orders}: run without --reuse.")
            return 2
        started = time.perf_counter()
        fill(args.orders, today)
        print(f"Filled {args.orders:,} orders in {time.perf_counter() - started:.1f} s.\n")
    # Timed runs log no queries; `measure` counts them in a separate run.
    settings.DEBUG = False

    user, _ = get_user_model().objects.get_or_create(
        username="bench-root", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)

    def page(url: str) -> Callable[[], object]:
        def get():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            if response.streaming:
                return sum(1 for _ in response.streaming_content)
            return len(response.content)

        return get

    orders_url = reverse("admin:orders_order_changelist")
    pages = [
        ("order list", orders_url),
        ("order list, renewal window = due", orders_url + "?renewal=due"),
        ("order list, search a customer", orders_url + "?q=Customer+4711+"),
        (f"order list, {today.year} by month", f"{orders_url}?current_term_end__year={today.year}"),
        ("order list, CSV export (all rows)", reverse("admin:orders_order_export")),
        ("dashboard", reverse("dashboard")),
    ]
    notes = []
    try:
        pages.insert(5, ("renewals due page", reverse("admin:orders_renewaldue_changelist")))
    except NoReverseMatch:
        notes.append("The renewals page does not exist yet: skipped.")

    rows = []
    for label, url in pages:
        queries, seconds, _ = measure(page(url), args.runs)
        rows.append((label, queries, seconds))

    _, last = selectors.renewal_window(today=today)
    due_count = selectors.order_list_due_for_renewal(today=today).count()
    queries, selector_seconds, selected = measure(
        lambda: list(selectors.order_list_due_for_renewal(today=today)), args.runs
    )
    rows.append((f"due selector ({due_count:,} rows, model objects)", queries, selector_seconds))

    compiled_sql, compiled_params = selectors.order_list_due_for_renewal(
        today=today
    ).query.sql_with_params()

    def fetch(sql: str, params) -> list:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    queries, compiled_seconds, _ = measure(lambda: fetch(compiled_sql, compiled_params), args.runs)
    rows.append(("due selector's SQL, rows only", queries, compiled_seconds))
    raw_sql, raw_params = due_raw_sql(today, last)
    queries, raw_seconds, raw_rows = measure(lambda: fetch(raw_sql, raw_params), args.runs)
    rows.append(("same predicate, hand-written SQL", queries, raw_seconds))
    assert [row[0] for row in raw_rows] == [order.pk for order in selected], "results differ"

    from orders import revenue

    figures = {
        "MRR and ARR by product": lambda: revenue.revenue_recurring(today=today),
        "renewals due 15/30/90 days, lapsed": lambda: revenue.revenue_renewals_due(today=today),
        "churn, last 30/90 days": lambda: revenue.revenue_churn(today=today),
        "renewal rate, last 90 days": lambda: revenue.revenue_renewal_rate(today=today),
        "MRR by month, last 12 months": lambda: revenue.revenue_mrr_by_month(
            today=today, current=Decimal(0)
        ),
        "renewal value due per week, 12 weeks": lambda: revenue.revenue_due_per_week(today=today),
    }
    revenue_rows = []
    raw_results = {}
    for label, (sql, params) in revenue_raw_sql(today).items():
        queries, orm_seconds, _ = measure(figures[label], args.runs)
        statements = orm_statements(figures[label])
        orm_sql_seconds, hand_seconds, raw_results[label] = measure_pair(
            lambda statements=statements: [fetch(*statement) for statement in statements],
            lambda sql=sql, params=params: fetch(sql, params),
            args.runs,
        )
        revenue_rows.append((label, queries, orm_seconds, orm_sql_seconds, hand_seconds))
    revenue_checks(today, raw_results)
    context_queries, context_seconds, _ = measure(
        lambda: revenue.dashboard_context(today=today), args.runs
    )
    priced = Order.objects.filter(value__isnull=False).count()

    vendor = connection.vendor
    if vendor == "sqlite":
        version = ".".join(str(part) for part in connection.Database.sqlite_version_info)
    else:
        version = f"{connection.pg_version // 10000}.{connection.pg_version % 10000}"
    print(
        f"### {vendor} {version}: {Order.objects.count():,} orders "
        f"({Order.objects.filter(parent__isnull=True).count():,} subscriptions), "
        f"median of {args.runs} runs, {today}\n"
    )
    print("| measurement | SQL queries | median ms |")
    print("|---|---:|---:|")
    for label, queries, seconds in rows:
        print(f"| {label} | {queries} | {seconds * 1000:,.1f} |")
    print()
    print("| due selector vs hand-written SQL | ratio | target |")
    print("|---|---:|---:|")
    print(f"| selector's query, rows | {compiled_seconds / raw_seconds:.2f}x | 1.5x |")
    print(f"| selector, evaluated to model objects | {selector_seconds / raw_seconds:.2f}x | - |")
    print()
    print(
        f"Revenue figures ({priced:,} orders with a value; results equal the hand-written SQL's):\n"
    )
    print(
        "| figure | queries | function ms | its ORM SQL ms | hand-written SQL ms "
        "| ORM SQL ÷ hand | target |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, count, orm_seconds, orm_sql_seconds, hand_seconds in revenue_rows:
        print(
            f"| {label} | {count} | {orm_seconds * 1000:,.1f} | {orm_sql_seconds * 1000:,.1f} | "
            f"{hand_seconds * 1000:,.1f} | {orm_sql_seconds / hand_seconds:.2f}x | 1.5x |"
        )
    print(
        f"| all six (the dashboard's revenue part) | {context_queries} | "
        f"{context_seconds * 1000:,.1f} | - | - | - | - |"
    )
    for note in notes:
        print(f"\n{note}")
    if args.explain:
        print("\nDue selector's plan:\n")
        print(selectors.order_list_due_for_renewal(today=today).explain())
    return 0


if __name__ == "__main__":
    sys.exit(main())
