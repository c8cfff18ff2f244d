"""Benchmark: the order list, the renewals page, the dashboard and the due selector at 100,000
orders. A script, not a test (`make bench`):

    .venv/bin/python tests/benchmarks/bench_orders.py [--orders 100000] [--runs 7]
    .venv/bin/python tests/benchmarks/bench_orders.py \\
        --database-url postgres://postgres@127.0.0.1:5432/oneoffice_bench

It fills a scratch database of its own (SQLite var/bench.sqlite3 unless --database-url names
another), never the development database: the database name must contain "bench", and it is
dropped and rebuilt on every run unless --reuse finds it already filled. It prints markdown
tables: per page or query, the number of SQL queries and the median time over --runs runs
(after one warm-up), the due selector against the same predicate in hand-written SQL, each
dashboard revenue figure against the same figure in hand-written SQL, then the reminder job and
the big lists against Django's plain change list.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
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
    parser.add_argument("--calls", type=int, help="call-log rows (default: as many as orders)")
    parser.add_argument(
        "--renewals-of-one", type=int, default=1000, help="renewals of one subscription"
    )
    parser.add_argument(
        "--before-runs", type=int, default=1, help="timed runs of Django's default list"
    )
    parser.add_argument(
        "--lists-only", action="store_true", help="measure only the lists against plain ones"
    )
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
    # Local defaults (no secrets needed); the timed runs switch DEBUG off again.
    os.environ.setdefault("DJANGO_DEBUG", "on")
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    # The test client's host, locmem email; nothing here may reach OneOffice or send mail.
    setup_test_environment()


class Series:
    """INSERT ... SELECT over a series 0..n-1, in each database's own dialect."""

    def __init__(self, vendor: str):
        self.vendor = vendor

    def rows(self, n: int) -> tuple[str, str]:
        """(a WITH clause or "", the FROM item yielding column i)."""
        if self.vendor == "postgresql":
            # bigint: the spreading arithmetic below overflows an integer at a million rows.
            return "", f"generate_series(0::bigint, {n - 1}) AS s(i)"
        return (
            f"WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {n - 1}) ",
            "s",
        )

    def padded(self, prefix: str, expr: str) -> str:
        if self.vendor == "postgresql":
            return f"'{prefix}' || lpad(({expr})::text, 7, '0')"
        return f"'{prefix}' || printf('%07d', {expr})"

    def day(self, today: date, offset: str) -> str:
        if self.vendor == "postgresql":
            return f"(DATE '{today}' + ({offset})::integer)"
        return f"date('{today}', ({offset}) || ' days')"

    def shift(self, column: str, days: int) -> str:
        if self.vendor == "postgresql":
            return f"({column} + {days})"
        return f"date({column}, '{days:+d} days')"

    def stamp(self, now, seconds_ago: str) -> str:
        text = now.strftime("%Y-%m-%d %H:%M:%S")
        if self.vendor == "postgresql":
            return f"(TIMESTAMPTZ '{text}+00' - ({seconds_ago}) * INTERVAL '1 second')"
        return f"datetime('{text}', '-' || ({seconds_ago}) || ' seconds')"


def insert_select(model, n: int, values: dict[str, str], series: Series) -> None:
    """Insert `n` rows of `model` in one statement; `values` are SQL expressions of `i` per
    column, every other column takes its field's default (or NULL)."""
    if n <= 0:
        return
    with_clause, source = series.rows(n)
    insert_from(model, values, source, with_clause)


def insert_from(model, values: dict[str, str], source: str, with_clause: str = "") -> None:
    """INSERT ... SELECT `values` (SQL expressions per column) FROM `source`; every column not
    named takes its field's default (or NULL), so a new column never breaks the fill."""
    from django.db import connection

    qn = connection.ops.quote_name
    columns, exprs = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(qn(field.column))
        if field.name in values or field.attname in values:
            exprs.append(values.get(field.name, values.get(field.attname)))
        elif field.null and not field.has_default():
            exprs.append("NULL")
        else:
            exprs.append(literal(field.get_db_prep_save(field.get_default(), connection)))
    sql = (
        f"{with_clause}INSERT INTO {qn(model._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(exprs)} FROM {source}"
    )
    # No parameters: the SQL is ours, and its % signs are modulo operators.
    with connection.cursor() as cursor:
        cursor.execute(sql)


def literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def case(expr: str, buckets: list[tuple[int, str]], default: str) -> str:
    whens = " ".join(f"WHEN {expr} < {limit} THEN {value}" for limit, value in buckets)
    return f"CASE {whens} ELSE {default} END"


def fill(total: int, today: date, calls: int, renewals_of_one: int) -> int:
    """`total` orders: three in four are subscriptions, the rest renewals of active ones; one
    subscription with `renewals_of_one` more renewals; `calls` call-log rows. Filled with
    INSERT ... SELECT over a series, a few statements whatever the size."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from customers.models import Customer
    from orders.models import Order
    from portal.models import ProvisioningCall

    series = Series(connection.vendor)
    now = timezone.now()
    User = get_user_model()
    managers = User.objects.bulk_create(
        User(username=f"manager{i}", email=f"manager{i}@reseller.example", is_staff=True)
        for i in range(20)
    )
    first_manager = min(m.pk for m in managers)
    assert sorted(m.pk for m in managers) == list(range(first_manager, first_manager + 20))
    subscriptions = total * 3 // 4
    customer_count = max(1, subscriptions // 4)
    newline = "chr(10)" if connection.vendor == "postgresql" else "char(10)"
    with transaction.atomic():
        insert_select(
            Customer,
            customer_count,
            {
                "code": series.padded("BENCH-C", "i"),
                "name": "'Customer ' || i || ' ' || "
                + case("i % 4", [(1, "'Ltd'"), (2, "'SA'"), (3, "'GmbH'")], "'Inc'"),
                "admin_email": "'admin' || i || '@customer.example'",
                "admin_phone": "'+30 210 555 0100'",
                "admin_display_name": "'Admin'",
                # Customer.searchable_text() of the above, in SQL (the names are ASCII).
                "search_text": f"lower({series.padded('BENCH-C', 'i')}) || {newline} || "
                "lower('Customer ' || i || ' ' || "
                + case("i % 4", [(1, "'Ltd'"), (2, "'SA'"), (3, "'GmbH'")], "'Inc'")
                + f") || {newline} || 'admin' || i || '@customer.example' || {newline} || 'admin'",
                "account_manager_id": f"CASE WHEN i % 10 = 0 THEN NULL "
                f"ELSE {first_manager} + i % 20 END",
                "status": "'registered'",
                "created_at": series.stamp(now, f"{customer_count} - i"),
                "updated_at": series.stamp(now, f"{customer_count} - i"),
            },
            series,
        )
        first_customer = Customer.objects.order_by("pk").values_list("pk", flat=True)[0]
        # A spread like a real book: statuses by weight, term ends from 30 days ago to a year.
        h = "((i * 7919 + 13) % 100)"
        status = case(
            h,
            [(60, "'active'"), (66, "'suspended'"), (86, "'cancelled'"), (92, "'draft'")],
            f"CASE WHEN {h} < 98 THEN 'failed' ELSE 'pending' END",
        )
        unplaced = f"({h} >= 86 AND {h} < 98)"
        term_end = (
            f"CASE WHEN {unplaced} THEN NULL "
            f"ELSE {series.day(today, '(i * 104729) % 396 - 30')} END"
        )
        term_start = (
            f"CASE WHEN {unplaced} THEN NULL "
            f"ELSE {series.day(today, '(i * 104729) % 396 - 60')} END"
        )
        products = Order.Product.values
        insert_select(
            Order,
            subscriptions,
            {
                "number": series.padded("BENCH-O", "i"),
                "customer_id": f"{first_customer} + i % {customer_count}",
                "product": case(
                    "i % 6",
                    [(k + 1, f"'{p}'") for k, p in enumerate(products[:-1])],
                    f"'{products[-1]}'",
                ),
                "licenses": "1 + (i * 31) % 500",
                "duration": "CASE WHEN i % 2 = 0 THEN 'monthly' ELSE 'yearly' END",
                "status": status,
                "pending_action": f"CASE WHEN {h} >= 98 THEN 'place' ELSE '' END",
                "term_start": term_start,
                "term_end": term_end,
                "current_term_end": term_end,
                "created_at": series.stamp(now, f"{total} - i"),
                "updated_at": series.stamp(now, f"{total} - i"),
            },
            series,
        )
        qn = connection.ops.quote_name
        renewals = total - subscriptions
        insert_from(
            Order,
            {
                "number": series.padded("BENCH-R", "k"),
                "customer_id": "customer_id",
                "parent_id": "id",
                "product": "product",
                "licenses": "licenses",
                "duration": "'monthly'",
                "status": "'active'",
                "term_start": "term_start",
                "term_end": "term_end",
                "created_at": "created_at",
                "updated_at": "created_at",
            },
            "(SELECT id, customer_id, product, licenses, term_start, term_end, created_at, "
            "ROW_NUMBER() OVER (ORDER BY id) AS k FROM orders_order "
            f"WHERE status = 'active' AND parent_id IS NULL) a WHERE k <= {renewals}",
        )
        with connection.cursor() as cursor:
            # The renewal is the current term; the first order's term ran the 30 days before.
            cursor.execute(
                f"UPDATE {qn(Order._meta.db_table)} SET term_end = term_start, "
                f"term_start = {series.shift('term_start', -30)} WHERE id IN "
                "(SELECT parent_id FROM orders_order WHERE number LIKE 'BENCH-R%')"
            )
        renewed = (
            Order.objects.filter(parent__isnull=True, status="active")
            .order_by("-pk")
            .values_list("pk", "customer_id")[0]
        )
        insert_select(
            Order,
            renewals_of_one,
            {
                "number": series.padded("BENCH-M", "i"),
                "customer_id": str(renewed[1]),
                "parent_id": str(renewed[0]),
                "product": "'oo-std'",
                "licenses": "10",
                "duration": "'monthly'",
                "status": "'active'",
                "created_at": series.stamp(now, f"{renewals_of_one} - i"),
                "updated_at": series.stamp(now, f"{renewals_of_one} - i"),
            },
            series,
        )
        first_order = Order.objects.order_by("pk").values_list("pk", flat=True)[0]
        # One call in five registers a customer; the rest are about orders. Two years of calls.
        spacing = max(1, 63_000_000 // max(1, calls))
        insert_select(
            ProvisioningCall,
            calls,
            {
                "method": "CASE WHEN i % 5 = 0 THEN 'createCustomer' ELSE 'createFirstOrder' END",
                "params": "'{}'",
                "customer_id": f"CASE WHEN i % 5 = 0 THEN {first_customer} + i % {customer_count} "
                "ELSE NULL END",
                "order_id": f"CASE WHEN i % 5 = 0 THEN NULL ELSE {first_order} + i % {total} END",
                "started_at": series.stamp(now, f"({calls} - i) * {spacing}"),
                "finished_at": series.stamp(now, f"({calls} - i) * {spacing}"),
                "duration_ms": "100 + i % 900",
                "http_status": "200",
                "outcome": "'ok'",
            },
            series,
        )
        cancellations(series, now)
        price(series)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return renewed[0]


def cancellations(series: Series, now) -> None:
    """A successful cancelOrder call for every cancelled subscription, over the last 400 days,
    and the cancellation it recorded: churn and MRR by month date cancellations from those."""
    from orders.models import SubscriptionChange
    from portal.models import ProvisioningCall

    ago = "(o.id * 7919) % 34560000"
    insert_from(
        ProvisioningCall,
        {
            "method": "'cancelOrder'",
            "params": "'{}'",
            "customer_id": "o.customer_id",
            "order_id": "o.id",
            "attempt": "1",
            "status_before": "'active'",
            "started_at": series.stamp(now, ago + " + 1"),
            "finished_at": series.stamp(now, ago),
            "duration_ms": "1000",
            "http_status": "200",
            "outcome": "'ok'",
        },
        "orders_order o WHERE o.parent_id IS NULL AND o.status = 'cancelled'",
    )
    insert_from(
        SubscriptionChange,
        {
            "subscription_id": "o.id",
            "kind": "'cancelled'",
            "status_before": "'active'",
            "status_after": "'cancelled'",
            "effective_on": series.day(now.date(), f"-({ago}) / 86400"),
            "recorded_at": series.stamp(now, ago),
            "note": "''",
        },
        "orders_order o WHERE o.parent_id IS NULL AND o.status = 'cancelled'",
    )


def price(series: Series) -> None:
    """A price-list line for every product and duration, and each confirmed term priced as the
    service records it: the unit price in force, the currency, the discount (a renewal keeps its
    subscription's), the value rounded half-up to the cent once; one term in 50 without a
    price. Each subscription's current value is that of its latest confirmed term."""
    from django.conf import settings
    from django.db import connection

    from orders.models import Order, Price

    currency = settings.PORTAL_CURRENCY
    cents = {}
    for k, product in enumerate(Order.Product.values):
        monthly = 200 + (k * 1297) % 4800
        cents[product, "monthly"], cents[product, "yearly"] = monthly, monthly * 10
    Price.objects.bulk_create(
        Price(
            product=product,
            duration=duration,
            unit_price=Decimal(unit) / 100,
            currency=currency,
            valid_from=date(2020, 1, 1),
        )
        for (product, duration), unit in cents.items()
    )
    unit = (
        "CASE "
        + " ".join(
            f"WHEN product = '{product}' AND duration = '{duration}' THEN {c}"
            for (product, duration), c in cents.items()
        )
        + " END"
    )
    discount = "CASE (COALESCE(parent_id, id) * 7) % 5 WHEN 3 THEN 5 WHEN 4 THEN 10 ELSE 0 END"
    # In whole cents, so both databases round exactly: (x + 50) / 100 is half-up for x >= 0.
    value = f"(CAST(licenses AS BIGINT) * ({unit}) * (100 - {discount}) + 50) / 100"
    qn = connection.ops.quote_name
    table = qn(Order._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET discount_percent = {discount} WHERE term_start IS NOT NULL"
        )
        cursor.execute(
            f"UPDATE {table} SET unit_price = ({unit}) / 100.0, currency = '{currency}', "
            f"value = ({value}) / 100.0 WHERE term_start IS NOT NULL AND id % 50 <> 7"
        )
        cursor.execute(
            f"UPDATE {table} SET current_value = value, current_currency = currency "
            "WHERE parent_id IS NULL AND term_start IS NOT NULL"
        )
        latest = (
            "FROM orders_order r WHERE r.parent_id = orders_order.id AND r.term_start = "
            "(SELECT MAX(l.term_start) FROM orders_order l WHERE l.parent_id = orders_order.id)"
        )
        cursor.execute(
            f"UPDATE {table} SET current_value = (SELECT r.value {latest}), "
            f"current_currency = (SELECT r.currency {latest}) "
            "WHERE parent_id IS NULL AND id IN "
            "(SELECT parent_id FROM orders_order WHERE term_start IS NOT NULL)"
        )


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


def measure_against(fn, plain, runs: int) -> tuple[int, float, float]:
    """(queries of `fn`, its median seconds, the median ratio to `plain`), timing the two in
    turn so that a busy machine slows both alike."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        fn()
    count = len(queries)
    plain()
    times, ratios = [], []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        middle = time.perf_counter()
        plain()
        ended = time.perf_counter()
        times.append(middle - started)
        ratios.append((middle - started) / (ended - middle))
    return count, statistics.median(times), statistics.median(ratios)


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
    "SELECT subscription_id AS order_id, MAX(effective_on) AS cancelled_on "
    "FROM orders_subscriptionchange WHERE status_after = 'cancelled' GROUP BY subscription_id"
)


def revenue_raw_sql(today: date) -> dict[str, tuple[str, list]]:
    """Each dashboard revenue figure written by hand, as its definition in the README reads."""
    from django.conf import settings
    from django.db import connection

    from orders.money import revenue

    def d(day: date):
        return connection.ops.adapt_datefield_value(day)

    cur = settings.PORTAL_CURRENCY
    priced = "current_value IS NOT NULL AND current_currency = %s"
    today_priced = "tv IS NOT NULL AND tc = %s"
    # The term running today: a renewal made early (starting after today) counts from its start.
    running = (
        "SELECT t.{} FROM orders_order t WHERE (t.id = o.id OR t.parent_id = o.id) "
        "AND t.term_start <= %s ORDER BY t.term_start DESC LIMIT 1"
    )
    early = "EXISTS (SELECT 1 FROM orders_order r WHERE r.parent_id = o.id AND r.term_start > %s)"
    recurring = (
        "SELECT product, "
        "SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status = 'suspended' THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN NOT ({today_priced}) THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN status = 'active' AND duration = 'monthly' AND {today_priced} "
        "THEN tv END), "
        f"SUM(CASE WHEN status = 'active' AND duration = 'yearly' AND {today_priced} "
        "THEN tv END) "
        f"FROM (SELECT o.*, CASE WHEN {early} THEN ({running.format('value')}) "
        f"ELSE o.current_value END AS tv, CASE WHEN {early} THEN ({running.format('currency')}) "
        "ELSE o.current_currency END AS tc "
        "FROM orders_order o WHERE o.parent_id IS NULL AND o.status IN ('active', 'suspended') "
        "AND o.current_term_end >= %s) s GROUP BY product ORDER BY product"
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
        since = d(today - timedelta(days=days - 1))
        first = d(today - timedelta(days=days))
        churn_parts += [
            "SUM(CASE WHEN o.status = 'cancelled' AND c.cancelled_on >= %s THEN 1 ELSE 0 END)",
            "SUM(CASE WHEN o.status = 'cancelled' AND c.cancelled_on >= %s "
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
    renewed_that_day = (
        "EXISTS (SELECT 1 FROM orders_order n WHERE n.parent_id = COALESCE(o.parent_id, o.id) "
        "AND n.term_start = o.term_end)"
    )
    for day in days:
        for duration in ("monthly", "yearly"):
            month_parts.append(
                "SUM(CASE WHEN term_start <= %s AND (term_end > %s OR (term_end = %s AND NOT "
                f"{renewed_that_day})) AND duration = %s AND "
                "(c.cancelled_on IS NULL OR c.cancelled_on > %s) THEN value END)"
            )
            month_params += [d(day), d(day), d(day), duration, d(day)]
    months = (
        f"SELECT {', '.join(month_parts)} FROM orders_order o "
        f"LEFT JOIN ({CANCEL_DATES}) c ON c.order_id = COALESCE(o.parent_id, o.id) "
        "WHERE value IS NOT NULL AND currency = %s AND term_start <= %s AND term_end >= %s"
    )
    weeks = (
        "SELECT current_term_end, COUNT(*), "
        f"SUM(CASE WHEN {priced} THEN current_value END) FROM orders_order "
        "WHERE parent_id IS NULL AND status IN ('active', 'suspended') "
        "AND current_term_end >= %s AND current_term_end <= %s GROUP BY current_term_end"
    )
    return {
        "MRR and ARR by product": (recurring, [cur, cur, cur, *[d(today)] * 4, d(today)]),
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
    # Half-up, as the figures round: MRR by month can fall on a half cent (a yearly sum ÷ 12).
    return Decimal(str(amount or 0)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def revenue_checks(today: date, raw: dict[str, list]) -> None:
    """The ORM's figures equal the hand-written SQL's: same definition, same numbers. On
    SQLite, which sums decimals as floats, two sums taken in another order may round a cent
    apart."""
    from django.db import connection

    from orders.money import revenue

    cent = Decimal("0.01") if connection.vendor == "sqlite" else Decimal(0)

    def same(label: str, ours: list, theirs: list) -> None:
        assert len(ours) == len(theirs) and all(
            x == y if isinstance(x, int) else abs(x - y) <= cent
            for x, y in zip(ours, theirs, strict=True)
        ), (label, ours, theirs)

    recurring = revenue.revenue_recurring(today=today)
    exact = sum(
        (Decimal(str(row[4] or 0)) + Decimal(str(row[5] or 0)) / 12)
        for row in raw["MRR and ARR by product"]
    )
    same("MRR", [recurring.mrr], [_money(exact)])
    due = revenue.revenue_renewals_due(today=today)
    flat = raw["renewals due 15/30/90 days, lapsed"][0]
    same(
        "due",
        [x for a in due for x in (a.count, a.value)],
        [int(v or 0) if i % 2 == 0 else _money(v) for i, v in enumerate(flat)],
    )
    churn = revenue.revenue_churn(today=today)
    flat = raw["churn, last 30/90 days"][0]
    same(
        "churn",
        [x for c in churn for x in (c.cancelled, c.cancelled_value, c.lapsed, c.lapsed_value)],
        [int(v or 0) if i % 2 == 0 else _money(v) for i, v in enumerate(flat)],
    )
    rate = revenue.revenue_renewal_rate(today=today)
    same(
        "renewal rate",
        [rate.came_due, rate.renewed],
        [int(v or 0) for v in raw["renewal rate, last 90 days"][0]],
    )
    months = revenue.revenue_mrr_by_month(today=today)[:-1]
    flat = raw["MRR by month, last 12 months"][0]
    same(
        "MRR by month",
        [p.value for p in months],
        [
            _money(Decimal(str(flat[2 * i] or 0)) + Decimal(str(flat[2 * i + 1] or 0)) / 12)
            for i in range(len(months))
        ],
    )
    weeks = revenue.revenue_due_per_week(today=today)
    counts, values = [0] * len(weeks), [Decimal(0)] * len(weeks)
    for day, count, value in raw["renewal value due per week, 12 weeks"]:
        index = (date.fromisoformat(str(day)) - today).days // 7
        counts[index] += count
        values[index] += Decimal(str(value or 0))
    same("due per week", [w.count for w in weeks], counts)
    same("due per week", [w.value for w in weeks], [_money(v) for v in values])


# Django's own search over the fields each list searched before: a substring match on each.
BEFORE_SEARCH = {
    "orders.order": ["number", "customer__name", "customer__code"],
    "customers.customer": ["code", "name", "admin_email", "admin_display_name"],
    "portal.provisioningcall": ["customer__code", "customer__name", "order__number", "error"],
}


def variants(real):
    """(plain, before) admins for the same model as the real one: "plain" is Django's change
    list with the same columns and rows and nothing else (no filters, date hierarchy or search);
    "before" adds the real list's filters and date hierarchy with Django's own machinery (a
    DISTINCT for the years, two counts per page, substring search)."""
    from django.contrib import admin

    site = admin.AdminSite(name="bench")
    real_class = type(real)
    base = {
        "list_display": real.list_display,
        "list_select_related": real.list_select_related,
        "list_per_page": real.list_per_page,
        "get_changelist": real_class.get_changelist,
    }
    for name in real.list_display:
        if isinstance(name, str) and hasattr(real_class, name):
            base[name] = getattr(real_class, name)
    plain = type("PlainAdmin", (admin.ModelAdmin,), dict(base))
    label = real.model._meta.label_lower
    before = type(
        "BeforeAdmin",
        (admin.ModelAdmin,),
        {
            **base,
            "list_filter": real.list_filter,
            "date_hierarchy": real.date_hierarchy,
            "search_fields": BEFORE_SEARCH[label],
        },
    )
    return plain(real.model, site), before(real.model, site)


def growth_tables(args, client, today) -> None:
    """The reminder job once, and the pages that grow with it."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from orders.models import Order, RenewalReminder
    from orders.renewals.reminders import send_renewal_reminders

    rows = []
    reset_queries()
    RenewalReminder.objects.all().delete()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        run = send_renewal_reminders(today=today)
        seconds = time.perf_counter() - started
    rows.append(
        (
            f"reminder job ({run.due_count + run.lapsed_count:,} due or lapsed, "
            f"{run.sent_count:,} reminded, {run.emails_sent} emails)",
            len(queries),
            seconds,
        )
    )
    from django.core import mail

    biggest = max((len(m.body) for m in mail.outbox), default=0)
    mail.outbox = []

    def page(url: str):
        def get():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            return len(response.content)

        return get

    run_url = reverse("admin:orders_reminderrun_change", args=[run.pk])
    queries, seconds, size = measure(page(run_url), args.runs)
    rows.append((f"reminder run page ({size / 1024:,.0f} KB)", queries, seconds))
    listed = reverse("admin:orders_renewalreminder_changelist") + f"?run__id__exact={run.pk}"
    queries, seconds, _ = measure(page(listed), args.runs)
    rows.append(("that run's reminders, first page", queries, seconds))
    renewed = Order.objects.filter(number__startswith="BENCH-M").values_list("parent", flat=True)[0]
    count = Order.objects.filter(parent=renewed).count()
    queries, seconds, size = measure(
        page(reverse("admin:orders_order_change", args=[renewed])), args.runs
    )
    rows.append((f"order page with {count:,} renewals ({size / 1024:,.0f} KB)", queries, seconds))
    print(f"### reminders and pages that grow ({Order.objects.count():,} orders)\n")
    print("| measurement | SQL queries | ms |")
    print("|---|---:|---:|")
    for label, queries, seconds in rows:
        print(f"| {label} | {queries} | {seconds * 1000:,.1f} |")
    print(f"\nLargest reminder email: {biggest / 1024:,.1f} KB.\n")


def scale_tables(args, client, user, today) -> None:
    """The reminder job, the pages that grow with it, and the three big lists against
    Django's plain change list, at the size filled."""
    from django.contrib import admin
    from django.test import RequestFactory

    from customers.models import Customer
    from orders.models import Order
    from portal.models import ProvisioningCall

    if not args.lists_only:
        growth_tables(args, client, today)

    factory = RequestFactory()

    def changelist(modeladmin, query: str = ""):
        def get():
            request = factory.get("/bench/?" + query)
            request.user = user
            response = modeladmin.changelist_view(request)
            response.render()
            return len(response.content)

        return get

    some_order = Order.objects.filter(parent__isnull=True).order_by("pk")[
        Order.objects.count() // 3
    ]
    some_customer = some_order.customer
    lists = [
        (
            Order,
            "order list",
            [
                ("", "list"),
                (f"q={some_order.number}", "search an order id"),
                (f"q={some_customer.code}", "search a customer id"),
                ("q=Customer+4711+", "search a customer name"),
            ],
        ),
        (
            ProvisioningCall,
            "call log",
            [("", "list"), (f"q={some_order.number}", "search an order id")],
        ),
        (
            Customer,
            "customer list",
            [("", "list"), (f"q={some_customer.code}", "search a customer id")],
        ),
    ]
    calls = ProvisioningCall.objects.count()
    print(
        f"### lists against Django's plain change list ({Order.objects.count():,} orders, "
        f"{calls:,} calls, {Customer.objects.count():,} customers)\n"
    )
    print("| list | SQL queries | ms | x plain | Django's default: queries | ms | x plain |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for model, name, cases in lists:
        real = admin.site._registry[model]
        plain, before = variants(real)
        _, plain_seconds, _ = measure(changelist(plain), args.runs)
        for query, label in cases:
            queries, seconds, ratio = measure_against(
                changelist(real, query), changelist(plain), args.runs
            )
            b_queries, b_seconds, b_ratio = measure_against(
                changelist(before, query), changelist(plain), args.before_runs
            )
            print(
                f"| {name}, {label} | {queries} | {seconds * 1000:,.1f} | {ratio:.2f}x | "
                f"{b_queries} | {b_seconds * 1000:,.1f} | {b_ratio:.2f}x |"
            )
        print(f"| {name}, plain change list | | {plain_seconds * 1000:,.1f} | 1.00x | | | |")
    print(
        "\nx plain: the median, over runs taken in turn with the plain list, of the time "
        "against it."
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

    from orders.models import Order
    from orders.renewals import selectors

    today = timezone.localdate()
    call_command("migrate", verbosity=0)
    calls = args.orders if args.calls is None else args.calls
    expected = args.orders + args.renewals_of_one
    existing = Order.objects.count()
    if existing != expected:
        if existing:
            print(f"The database holds {existing} orders, not {expected}: run without --reuse.")
            return 2
        started = time.perf_counter()
        fill(args.orders, today, calls, args.renewals_of_one)
        cancelled = Order.objects.filter(parent__isnull=True, status="cancelled").count()
        print(
            f"Filled {args.orders:,} orders and {calls:,} calls (and {cancelled:,} "
            f"cancellations) in {time.perf_counter() - started:.1f} s.\n"
        )
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

    if args.lists_only:
        scale_tables(args, client, user, today)
        return 0
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

    from orders.money import revenue

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
    print()
    scale_tables(args, client, user, today)
    for note in notes:
        print(f"\n{note}")
    if args.explain:
        print("\nDue selector's plan:\n")
        print(selectors.order_list_due_for_renewal(today=today).explain())
    return 0


if __name__ == "__main__":
    sys.exit(main())
