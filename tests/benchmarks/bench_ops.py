"""Benchmark: /metrics, /healthz and /readyz at 100,000 orders and 200,000 logged vendor calls.
A script, not a test:

    .venv/bin/python tests/benchmarks/bench_ops.py [--orders 100000] [--calls 200000] [--runs 7]
    .venv/bin/python tests/benchmarks/bench_ops.py \\
        --database-url postgres://postgres@127.0.0.1:5432/oneoffice_ops_bench

Like bench_orders.py it fills a scratch database of its own (var/bench_ops.sqlite3 unless
--database-url names another; the name must contain "bench"; dropped and rebuilt each run),
then prints, per endpoint, the SQL queries of one request and the median time of --runs runs.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_orders  # noqa: E402

DEFAULT_URL = f"sqlite:///{bench_orders.BASE_DIR / 'var' / 'bench_ops.sqlite3'}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help=f"default {DEFAULT_URL}")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--calls", type=int, help="logged calls (default: twice the orders)")
    parser.add_argument("--runs", type=int, default=7)
    return parser.parse_args()


def fill_calls(total: int) -> None:
    """`total` call-log rows over every method and outcome, with realistic durations."""
    from django.db import connection, transaction
    from django.utils import timezone

    from orders.models import Order
    from portal.models import ProvisioningCall

    rng = random.Random(20260101)
    methods = list(ProvisioningCall.Method)
    # Mostly ok, some refused or unknown, a few of every other outcome.
    weight = {"ok": 90, "refused": 5, "unknown": 2}
    outcomes = ProvisioningCall.Outcome.values
    weights = [weight.get(outcome, 1) for outcome in outcomes]
    order_ids = list(Order.objects.values_list("id", flat=True)[:10_000])
    now = timezone.now()
    with transaction.atomic():
        for start in range(0, total, bench_orders.BATCH):
            ProvisioningCall.objects.bulk_create(
                ProvisioningCall(
                    method=rng.choice(methods),
                    outcome=rng.choices(outcomes, weights=weights)[0],
                    params={},
                    order_id=rng.choice(order_ids),
                    started_at=now - timedelta(minutes=i),
                    duration_ms=int(rng.lognormvariate(6, 1)),
                )
                for i in range(start, min(start + bench_orders.BATCH, total))
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def main() -> int:
    args = parse_args()
    if "bench" not in bench_orders.database_name(args.database_url):
        print("Refusing: the scratch database's name must contain 'bench'.", file=sys.stderr)
        return 2
    bench_orders.recreate_database(args.database_url)
    bench_orders.setup_django(args.database_url)

    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    call_command("setup_schedules", verbosity=0, stdout=open("/dev/null", "w"))  # noqa: SIM115
    started = time.perf_counter()
    calls = 2 * args.orders if args.calls is None else args.calls
    bench_orders.fill(args.orders, timezone.localdate(), calls=0, renewals_of_one=0)
    fill_calls(calls)
    print(
        f"Filled {args.orders:,} orders and {calls:,} calls "
        f"in {time.perf_counter() - started:.1f} s.\n"
    )
    settings.DEBUG = False
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1"]
    client = Client()

    def get(url: str):
        def run():
            response = client.get(url)
            assert response.status_code in (200, 503), (url, response.status_code)
            return response.status_code

        return run

    print(f"| endpoint ({args.orders:,} orders, {calls:,} calls) | SQL queries | ms |")
    print("|---|---:|---:|")
    for url in ("/metrics", "/healthz", "/readyz"):
        queries, seconds, _ = bench_orders.measure(get(url), args.runs)
        print(f"| {url} | {queries} | {seconds * 1000:,.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
