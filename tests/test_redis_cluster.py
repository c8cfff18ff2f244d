"""Production shape: an automatic retry goes through the Redis broker to a real cluster worker.

Runs only when REDIS_URL is set (CI sets it, with DATABASE_URL on PostgreSQL). The cluster is
a real `manage.py qcluster` process on the production settings module, pointed at the test
database and at the sandbox.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django_q.models import OrmQ, Schedule, Success

from customers.models import Customer
from portal import provisioning
from tests.conftest import API_KEY
from tests.factories import CustomerFactory

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not settings.REDIS_URL, reason="REDIS_URL is not set"),
    pytest.mark.django_db(transaction=True),
]

BASE_DIR = Path(__file__).resolve().parent.parent
# django-q2 runs its scheduler from the guard loop about every 30 s (30 / guard_cycle cycles).
WAIT_SECONDS = 90


def _test_database_url() -> str:
    """DATABASE_URL for the database pytest-django created for this run."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    return (
        f"postgres://{user}{password}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


def cluster_env(sandbox, settings, **extra: str) -> dict[str, str]:
    """The environment of a real `qcluster` child on this run's database, broker and sandbox."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))},
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_DEBUG": "on",
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "ONEOFFICE_URL": sandbox.url,
        "ONEOFFICE_API_KEY": API_KEY,
        **extra,
    }


def _rpush_calls(client) -> int:
    return client.info("commandstats").get("cmdstat_rpush", {}).get("calls", 0)


def _stop(cluster: subprocess.Popen) -> None:
    if cluster.poll() is None:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait(timeout=10)


def test_scheduled_retry_runs_through_redis_on_a_cluster_worker(sandbox, settings, tmp_path):
    import redis

    broker = redis.Redis.from_url(settings.REDIS_URL)
    settings.ONEOFFICE_RETRY_BACKOFF_SECONDS = 0
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-before")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.customer_register(customer=customer)
    # The service scheduled the retry after its commit, due now.
    schedule = Schedule.objects.get()
    assert schedule.func == "portal.tasks.customer_retry_task"
    pushes_before = _rpush_calls(broker)

    env = cluster_env(sandbox, settings, Q_WORKERS="2")
    log = tmp_path / "qcluster.log"
    with log.open("w") as out:
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while time.monotonic() < deadline and cluster.poll() is None:
                if Success.objects.filter(func="portal.tasks.customer_retry_task").exists():
                    break
                time.sleep(0.5)
        finally:
            _stop(cluster)
    output = log.read_text()

    task = Success.objects.filter(func="portal.tasks.customer_retry_task").first()
    assert task is not None, f"no task ran within {WAIT_SECONDS} s:\n{output[-3000:]}"
    assert task.args == (customer.pk, 1)
    assert "registered" in str(task.result)
    assert Customer.objects.get(pk=customer.pk).status == Customer.Status.REGISTERED
    assert sandbox.snapshot()["customers"].keys() == {customer.code}
    # It went through Redis, not the database queue.
    assert _rpush_calls(broker) > pushes_before
    assert not OrmQ.objects.exists()
    # Ran once, and the cluster deleted the one-off schedule.
    assert not Schedule.objects.exists()
    assert cluster.returncode is not None
