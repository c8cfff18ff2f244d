"""/healthz and /readyz: open without a login, 200 or 503 with a short JSON, nothing secret."""

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.urls import reverse
from django_q.models import Schedule

from orders.models import ReminderRun
from portal.management.commands.setup_schedules import RENEWAL_REMINDERS, RETRY_STRANDED
from portal.ops import health

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 5, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def healthy(clock, settings):
    """A portal whose cluster's scheduler is running and whose reminders ran this morning."""
    settings.REDIS_URL = ""
    call_command("setup_schedules", stdout=open("/dev/null", "w"))  # noqa: SIM115
    ReminderRun.objects.create(started_at=NOW - timedelta(hours=5), finished_at=NOW)


def get(client, name: str = "healthz"):
    response = client.get(reverse(name))
    return response.status_code, json.loads(response.content)


def test_healthz_ok(client, healthy):
    status, body = get(client)

    assert status == 200
    assert body["status"] == "ok"
    assert {name for name, check in body["checks"].items() if check["ok"]} == {
        "database",
        "migrations",
        "broker",
        "cluster",
        "reminders",
    }
    assert body["checks"]["broker"]["kind"] == "database"
    assert body["needs_attention"] == {"customers": 0, "orders": 0}


def test_healthz_needs_no_login_and_sets_no_cookie(client, healthy, settings):
    settings.STAFF_2FA_REQUIRED = True
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert not response.cookies
    assert "no-cache" in response["Cache-Control"]


def test_healthz_counts_what_needs_attention(client, healthy, order_in):
    order_in("pending")

    status, body = get(client)

    assert status == 200
    assert body["needs_attention"] == {"customers": 0, "orders": 1}


def test_healthz_503_when_the_cluster_stopped(client, healthy, clock, settings):
    # The sweep came due and nobody moved it on.
    clock.shift(timedelta(minutes=10) + timedelta(seconds=settings.HEALTH_CLUSTER_MAX_AGE_SECONDS))
    clock.shift(timedelta(seconds=1))

    status, body = get(client)

    assert status == 503
    assert body["status"] == "failing"
    assert body["checks"]["cluster"]["ok"] is False
    assert body["checks"]["cluster"]["age_seconds"] > settings.HEALTH_CLUSTER_MAX_AGE_SECONDS


def test_healthz_cluster_late_within_the_allowed_age_is_ok(client, healthy, clock, settings):
    clock.shift(timedelta(minutes=10) + timedelta(seconds=settings.HEALTH_CLUSTER_MAX_AGE_SECONDS))

    status, body = get(client)

    assert status == 200, body


def test_healthz_503_without_schedules(client, clock, settings):
    settings.REDIS_URL = ""

    status, body = get(client)

    assert status == 503
    assert body["checks"]["cluster"]["ok"] is False
    assert body["checks"]["reminders"]["ok"] is False


def test_healthz_ok_before_the_first_reminder_run(client, clock, settings):
    settings.REDIS_URL = ""
    call_command("setup_schedules", stdout=open("/dev/null", "w"))  # noqa: SIM115

    status, body = get(client)

    assert status == 200, body
    assert body["checks"]["reminders"] == {"ok": True, "last_run": None, "error": False}


def test_healthz_503_when_the_last_reminder_run_failed(client, healthy):
    ReminderRun.objects.create(started_at=NOW - timedelta(hours=1), error="SMTP refused")

    status, body = get(client)

    assert status == 503
    assert body["checks"]["reminders"]["error"] is True
    assert "SMTP" not in json.dumps(body)


def test_healthz_503_when_the_last_reminder_run_is_too_old(client, healthy, clock, settings):
    Schedule.objects.filter(name=RENEWAL_REMINDERS).update(next_run=NOW + timedelta(days=3))
    Schedule.objects.filter(name=RETRY_STRANDED).update(next_run=NOW + timedelta(days=3))
    clock.shift(timedelta(hours=settings.HEALTH_REMINDER_MAX_AGE_HOURS))

    status, body = get(client)

    assert status == 503
    assert body["checks"]["reminders"]["ok"] is False
    assert body["checks"]["cluster"]["ok"] is True


def test_healthz_503_when_migrations_are_missing(client, healthy, monkeypatch):
    monkeypatch.setattr(health, "_migrations_applied", False)
    with connection.cursor() as cursor:
        # The newest migration on disk, as if this code were deployed before `migrate` ran.
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = %s AND name = %s",
            list(MigrationLoader(connection).graph.leaf_nodes("portal")[0]),
        )

    status, body = get(client)

    assert status == 503
    assert body["checks"]["migrations"] == {"ok": False, "unapplied": 1}


@pytest.mark.redis
def test_healthz_pings_redis(client, healthy, settings):
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL not set")
    settings.REDIS_URL = url

    status, body = get(client)

    assert body["checks"]["broker"] == {"ok": True, "kind": "redis"}


def test_healthz_503_when_redis_does_not_answer(client, healthy, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port

    status, body = get(client)

    assert status == 503
    assert body["checks"]["broker"] == {"ok": False, "kind": "redis"}
    assert "127.0.0.1:9" not in json.dumps(body)


@pytest.fixture
def database_down():
    """The default database made unreachable for real: a path or a port nothing serves."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent/portal.sqlite3"
    else:
        connection.settings_dict["PORT"] = "9"
    yield
    connection.close()
    connection.settings_dict.clear()
    connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_healthz_and_readyz_503_when_the_database_is_down(client, database_down, settings):
    settings.REDIS_URL = ""
    status, body = get(client)
    assert status == 503
    assert body == {
        "status": "failing",
        "checks": {"database": {"ok": False}, "broker": {"ok": False, "kind": "database"}},
    }
    assert get(client, "readyz") == (503, {"status": "failing"})


def test_readyz_ok(client):
    assert get(client, "readyz") == (200, {"status": "ok"})


@pytest.mark.parametrize("name", ["healthz", "readyz"])
def test_health_endpoints_refuse_post(client, name):
    assert client.post(reverse(name)).status_code == 405


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")
def test_healthz_sees_a_real_clusters_heartbeat_in_redis(client, settings, sandbox, tmp_path):
    from tests.test_redis_cluster import BASE_DIR, _stop, cluster_env

    settings.REDIS_URL = os.environ["REDIS_URL"]
    assert get(client)[1]["checks"]["cluster"]["ok"] is False  # nothing running, no sweep
    env = cluster_env(sandbox, settings, Q_WORKERS="1")
    seen = None
    with (tmp_path / "qcluster.log").open("w") as out:
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and cluster.poll() is None:
                seen = get(client)[1]["checks"]["cluster"]
                if seen["ok"]:
                    break
                time.sleep(0.5)
        finally:
            _stop(cluster)

    log = (tmp_path / "qcluster.log").read_text()[-2000:]
    assert seen is not None and (seen["ok"], seen["source"]) == (True, "status"), log
    assert seen["age_seconds"] <= 3
    # Its status expires within seconds of the cluster stopping.
    time.sleep(4)
    assert get(client)[1]["checks"]["cluster"]["ok"] is False
