"""Benchmark: a bulk Renew of N subscriptions as a batch, worked by a real `qcluster` against the
sandbox answering with a set latency. A script, not a test (`make bench-batch`):

    .venv/bin/python tests/benchmarks/bench_batch.py [--n 200] [--latency 0.1]
    .venv/bin/python tests/benchmarks/bench_batch.py \\
        --database-url postgres://postgres@127.0.0.1:5432/oneoffice_bench_batch \\
        --redis-url redis://127.0.0.1:6379/6

It builds a scratch database of its own (the name must contain "bench"), places N
subscriptions on the sandbox with no latency, then sets the latency, starts a cluster, posts
the admin's Renew on all N and measures: the POST's answer time, the batch's wall time
against the sequential floor (N x latency), SQL statements per item (a second batch of
--probe items worked by one thread in this process under a query counter, claims shared as in
the big batch), and the most requests the sandbox saw at once.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import time

from bench_orders import BASE_DIR, database_name, recreate_database, setup_django

DEFAULT_URL = f"sqlite:///{BASE_DIR / 'var' / 'bench-batch.sqlite3'}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--redis-url", default="", help="use the Redis broker (else the ORM)")
    parser.add_argument("--n", type=int, default=200, help="subscriptions to renew")
    parser.add_argument("--latency", type=float, default=0.1, help="sandbox latency, seconds")
    parser.add_argument("--workers", type=int, default=2, help="cluster workers")
    parser.add_argument("--probe", type=int, default=20, help="items counted for statements")
    parser.add_argument(
        "--show-queries", action="store_true", help="print the probe's SQL statements"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if "bench" not in database_name(args.database_url):
        sys.exit("The database name must contain 'bench': it is dropped and rebuilt.")
    recreate_database(args.database_url)
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from portal.oneoffice.sandbox import Sandbox

    window = 40  # monthly terms placed today are then due at once
    sandbox = Sandbox(api_key="bench-key", renewal_window_days=window).start()
    os.environ.update(
        ONEOFFICE_URL=sandbox.url,
        ONEOFFICE_API_KEY="bench-key",
        ONEOFFICE_RENEWAL_WINDOW_DAYS=str(window),
        REDIS_URL=args.redis_url,
        AUTO_RENEW_ENABLED="0",
    )
    setup_django(args.database_url)
    from django.conf import settings
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from customers.models import Customer
    from orders.models import Order
    from portal import provisioning
    from portal.models import Batch
    from portal.provisioning import batches

    call_command("migrate", verbosity=0)
    customer = provisioning.customer_register(
        customer=Customer.objects.create(
            name="Bench Ltd",
            admin_email="a@bench.example",
            admin_phone="+30 210 555 0100",
            admin_display_name="Bench",
        )
    )

    def placed(n: int) -> list[Order]:
        return [
            provisioning.order_place(
                order=Order.objects.create(
                    customer=customer, product="oo-std", licenses=5, duration="monthly"
                )
            )
            for _ in range(n)
        ]

    subs = placed(args.n)
    user = get_user_model().objects.create_superuser("bench", "b@bench.example", "x")
    client = Client()
    client.force_login(user)

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_DEBUG": "on",
        "Q_WORKERS": str(args.workers),
    }
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(3)  # the cluster's start-up is not what is measured
        sandbox.latency = args.latency
        sandbox.max_in_flight = 0
        # As "Select all" on the list posts it (one id, and the whole list), confirmed.
        data = {
            "action": "renew_selected",
            ACTION_CHECKBOX_NAME: [subs[0].pk],
            "select_across": 1,
            "index": 0,
            "post": "yes",
        }
        started = time.monotonic()
        response = client.post(reverse("admin:orders_order_changelist"), data)
        post_seconds = time.monotonic() - started
        assert response.status_code == 302, response.status_code
        batch = Batch.objects.latest("pk")
        while not Batch.objects.filter(pk=batch.pk, finished_at__isnull=False).exists():
            time.sleep(0.05)
            if time.monotonic() - started > 30 + 2 * args.n * args.latency:
                sys.exit("The batch did not finish in time.")
        batch_seconds = time.monotonic() - started
    finally:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait(timeout=10)
    counts = batches.counts(batch)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cluster_cpu = usage.ru_utime + usage.ru_stime

    # Statements per item: a second batch worked by one thread here, under a counter, each
    # claim taking as many items as the big batch's did.
    sandbox.latency = 0
    extra = placed(args.probe)
    probe = batches.batch_start(kind="order", action="renew", label="probe", objects=extra, by=user)
    Batch.objects.filter(pk=probe.pk).update(worked_until=None)
    work = batches._Slice(
        batch=probe, deadline=time.monotonic() + 600, claim_size=batches._claim_size(args.n)
    )
    with CaptureQueriesContext(connection) as queries:
        batches._worker(work)
    assert batches.counts(probe)["done"] == args.probe, batches.counts(probe)
    statements = [query["sql"] for query in queries.captured_queries]
    control = [sql for sql in statements if sql.split()[0] in ("BEGIN", "COMMIT", "ROLLBACK")]
    if args.show_queries:
        for number, sql in enumerate(statements, 1):
            print(f"{number:3} {sql[:300]}")
    floor = args.n * args.latency
    engine = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
    broker = "Redis" if args.redis_url else "ORM"
    print(f"\nBatch renew of {args.n} subscriptions, sandbox latency {args.latency * 1000:.0f} ms,")
    print(
        f"{engine} + {broker} broker, ONEOFFICE_MAX_IN_FLIGHT="
        f"{settings.ONEOFFICE_MAX_IN_FLIGHT}, {args.workers} cluster workers, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    assert batch.total == args.n, batch.total
    print("| measure | figure | target |")
    print("|---|---|---|")
    print(f"| admin POST answered | {post_seconds:.2f} s | < 1 s |")
    print(
        f"| batch finished | {batch_seconds:.1f} s = {batch_seconds / floor:.2f}x the "
        f"sequential floor ({floor:.0f} s) | <= 0.2x (8 in flight: 0.125x at best) |"
    )
    print(
        f"| SQL queries per item (reads and writes) | "
        f"{(len(statements) - len(control)) / args.probe:.2f} | <= 12 |"
    )
    print(f"| and BEGIN/COMMIT per item (two transactions) | {len(control) / args.probe:.2f} | |")
    print(
        f"| most requests in flight at the sandbox | {sandbox.max_in_flight} | "
        f"<= {settings.ONEOFFICE_MAX_IN_FLIGHT} |"
    )
    print(f"| items done | {counts['done']} of {batch.total} | all |")
    print(
        f"| cluster CPU time (start-up included) | {cluster_cpu:.1f} s, "
        f"{1000 * cluster_cpu / args.n:.0f} ms per item | |"
    )
    sandbox.stop()


if __name__ == "__main__":
    main()
