"""/healthz and /readyz: is the portal working, answered without a login and without secrets.

/healthz checks what the portal needs to do its job and answers 200 when all of it is well,
503 otherwise, with one short JSON object: database, migrations, broker, the task cluster's
heartbeat, the last reminder run, and (for information) what needs attention. /readyz checks
the database only: it is for load balancers, which should not take a web process out of
rotation because the task cluster is down.

Failures are logged here with their reasons; the answer only says which check failed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_q.models import Schedule
from django_q.status import Stat

from orders import reports
from orders.models import ReminderRun
from portal.management.commands.setup_schedules import RENEWAL_REMINDERS, RETRY_STRANDED

logger = logging.getLogger(__name__)

_migrations_applied = False
_redis_clients: dict[str, redis.Redis] = {}


def _database() -> dict:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        logger.exception("health: the database is not reachable")
        return {"ok": False}
    return {"ok": True}


def _migrations() -> dict:
    global _migrations_applied
    # Applied migrations stay applied: once seen, this process stops loading the graph.
    if not _migrations_applied:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            logger.warning("health: %d migration(s) not applied", len(plan))
            return {"ok": False, "unapplied": len(plan)}
        _migrations_applied = True
    return {"ok": True}


def _redis() -> redis.Redis:
    if settings.REDIS_URL not in _redis_clients:
        # Short timeouts: a health check that hangs is worse than one that fails.
        _redis_clients[settings.REDIS_URL] = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
    return _redis_clients[settings.REDIS_URL]


def _broker(database_ok: bool) -> dict:
    if not settings.REDIS_URL:
        return {"ok": database_ok, "kind": "database"}
    try:
        _redis().ping()
    except redis.RedisError:
        logger.exception("health: Redis (the task broker) is not reachable")
        return {"ok": False, "kind": "redis"}
    return {"ok": True, "kind": "redis"}


def _cluster(now: datetime, *, broker_ok: bool) -> dict:
    """The cluster's heartbeat: its live status in Redis, or else the scheduler's work.

    With Redis, each running cluster keeps a status there, refreshed twice a second. With the
    database broker there is none shared between processes; then the evidence is the retry
    sweep, which a running cluster's scheduler moves on every few minutes: a sweep overdue by
    more than the allowed age means no scheduler is running.
    """
    max_age = timedelta(seconds=settings.HEALTH_CLUSTER_MAX_AGE_SECONDS)
    # django-q2's own Redis connection has no timeouts: not asked when the ping failed.
    if settings.REDIS_URL and broker_ok:
        try:
            stats = Stat.get_all()
        except Exception:
            logger.exception("health: cannot read the task cluster's status")
            stats = []
        if stats:
            age = max(0, int((now - max(stat.timestamp for stat in stats)).total_seconds()))
            return {"ok": age <= max_age.total_seconds(), "source": "status", "age_seconds": age}
    sweep = Schedule.objects.filter(name=RETRY_STRANDED).values_list("next_run", flat=True)
    next_run = sweep.first()
    if next_run is None:
        logger.warning("health: the retry sweep is not scheduled (run setup_schedules)")
        return {"ok": False, "source": "scheduler", "age_seconds": None}
    late = max(0, int((now - next_run).total_seconds()))
    if late > max_age.total_seconds():
        logger.warning("health: the retry sweep is %d s overdue: no cluster is running", late)
    return {"ok": late <= max_age.total_seconds(), "source": "scheduler", "age_seconds": late}


def _reminders(now: datetime) -> dict:
    """The last reminder run finished without error and recently enough; before the first
    run, the job must at least be scheduled and not overdue."""
    max_age = timedelta(hours=settings.HEALTH_REMINDER_MAX_AGE_HOURS)
    run = ReminderRun.objects.only("started_at", "finished_at", "error").first()
    if run is None:
        next_run = (
            Schedule.objects.filter(name=RENEWAL_REMINDERS)
            .values_list("next_run", flat=True)
            .first()
        )
        # A daily job: its next run may be late by what the allowed age leaves over a day.
        ok = next_run is not None and next_run >= now - (max_age - timedelta(days=1))
        if not ok:
            logger.warning("health: the renewal reminder job has never run and is not scheduled")
        return {"ok": ok, "last_run": None, "error": False}
    error = bool(run.error)
    recent = run.started_at >= now - max_age
    if error or not recent:
        logger.warning(
            "health: last reminder run %s: %s",
            run.started_at.isoformat(),
            "failed" if error else "too old",
        )
    return {"ok": recent and not error, "last_run": run.started_at.isoformat(), "error": error}


@never_cache
@require_safe
def healthz_view(request: HttpRequest) -> JsonResponse:
    now = timezone.now()
    database = _database()
    checks = {"database": database}
    if database["ok"]:
        checks["migrations"] = _migrations()
    checks["broker"] = _broker(database["ok"])
    if database["ok"]:
        checks["cluster"] = _cluster(now, broker_ok=checks["broker"]["ok"])
        checks["reminders"] = _reminders(now)
    ok = database["ok"] and all(check["ok"] for check in checks.values())
    body = {"status": "ok" if ok else "failing", "checks": checks}
    if database["ok"]:
        body["needs_attention"] = reports.needs_attention_counts(now=now)
    return JsonResponse(body, status=200 if ok else 503)


@never_cache
@require_safe
def readyz_view(request: HttpRequest) -> JsonResponse:
    ok = _database()["ok"]
    return JsonResponse({"status": "ok" if ok else "failing"}, status=200 if ok else 503)
