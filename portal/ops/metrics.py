"""/metrics: Prometheus figures, computed from the database at each scrape.

Nothing is counted in process memory: every figure is read from the tables at scrape time,
in a fixed number of queries, so any web process gives the same answer whatever the number of
gunicorn workers and task clusters (no multiprocess mode needed).

Open only to METRICS_ALLOWED_IPS (addresses or networks, matched against the connecting
address) or to a request with `Authorization: Bearer METRICS_TOKEN`; 404 when neither is set.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections import defaultdict
from collections.abc import Iterator

from axes.models import AccessFailureLog
from django.conf import settings
from django.db.models import Count, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_q.models import Schedule
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from customers.models import Customer
from orders.models import Order, ReminderRun, RenewalReminder
from portal.models import ProvisioningCall, TwoFactorEvent

# Upper bounds of the latency buckets, in milliseconds (the call log's unit).
DURATION_BUCKETS_MS = (100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000)


def _calls() -> list[dict]:
    """Calls per method and outcome, with their latency buckets: one query."""
    buckets = {
        f"le_{bound}": Count("id", filter=Q(duration_ms__lte=bound))
        for bound in DURATION_BUCKETS_MS
    }
    return list(
        ProvisioningCall.objects.order_by()
        .values("method", "outcome")
        .annotate(
            count=Count("id"),
            timed=Count("duration_ms"),
            duration_sum=Sum("duration_ms"),
            **buckets,
        )
    )


def _objects(model, now) -> dict:
    return model.objects.aggregate(
        pending=Count("id", filter=Q(status=model.Status.PENDING)),
        attention=Count("id", filter=model.needs_attention_q(now=now)),
    )


class PortalCollector:
    """Reads every figure from the database when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield from self._vendor_calls()

        pending = GaugeMetricFamily(
            "portal_objects_pending",
            "Customers and orders with a OneOffice operation pending.",
            labels=["kind"],
        )
        attention = GaugeMetricFamily(
            "portal_objects_needing_attention",
            "Pending customers and orders no request is working on (free or expired lease).",
            labels=["kind"],
        )
        for kind, model in (("customer", Customer), ("order", Order)):
            figures = _objects(model, now)
            pending.add_metric([kind], figures["pending"])
            attention.add_metric([kind], figures["attention"])
        yield pending
        yield attention

        retries = Schedule.objects.filter(
            Q(name__startswith="retry customer ") | Q(name__startswith="retry order ")
        ).count()
        yield GaugeMetricFamily(
            "portal_retries_scheduled", "Automatic retries waiting to run.", value=retries
        )

        sent = RenewalReminder.objects.filter(sent_at__isnull=False).count()
        yield CounterMetricFamily(
            "portal_reminders_sent", "Renewal reminders sent (every one ever).", value=sent
        )
        run = ReminderRun.objects.only("started_at", "error").first()
        yield GaugeMetricFamily(
            "portal_reminder_last_run_timestamp_seconds",
            "When the last renewal reminder run started (Unix time; 0: never).",
            value=run.started_at.timestamp() if run else 0,
        )
        yield GaugeMetricFamily(
            "portal_reminder_last_run_failed",
            "1 if the last renewal reminder run recorded an error.",
            value=1 if run and run.error else 0,
        )

        yield CounterMetricFamily(
            "portal_login_failures",
            "Failed admin sign-ins: wrong passwords and wrong two-factor codes.",
            value=AccessFailureLog.objects.count(),
        )
        events = CounterMetricFamily(
            "portal_two_factor_events",
            "Two-factor enrolments, resets, recovery-code uses and wrong codes.",
            labels=["kind"],
        )
        counts = dict(
            TwoFactorEvent.objects.order_by()
            .values_list("kind")
            .annotate(count=Count("id"))
            .values_list("kind", "count")
        )
        for kind in TwoFactorEvent.Kind.values:
            events.add_metric([kind], counts.get(kind, 0))
        yield events

    def _vendor_calls(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "oneoffice_calls",
            "Calls to OneOffice by method and outcome (in-flight ones included).",
            labels=["method", "outcome"],
        )
        by_method: dict[str, dict] = defaultdict(lambda: defaultdict(int))
        for row in _calls():
            calls.add_metric([row["method"], row["outcome"]], row["count"])
            totals = by_method[row["method"]]
            for key in ("timed", "duration_sum", *(f"le_{b}" for b in DURATION_BUCKETS_MS)):
                totals[key] += row[key] or 0
        yield calls

        latency = HistogramMetricFamily(
            "oneoffice_call_duration_seconds",
            "How long finished OneOffice calls took.",
            labels=["method"],
        )
        for method, totals in sorted(by_method.items()):
            buckets = [(str(b / 1000), totals[f"le_{b}"]) for b in DURATION_BUCKETS_MS]
            buckets.append(("+Inf", totals["timed"]))
            latency.add_metric([method], buckets, sum_value=totals["duration_sum"] / 1000)
        yield latency


registry = CollectorRegistry(auto_describe=False)
registry.register(PortalCollector())


def _client_allowed(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for allowed in settings.METRICS_ALLOWED_IPS:
        try:
            if address in ipaddress.ip_network(allowed, strict=False):
                return True
        except ValueError:
            continue
    return False


def _token_given(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Compared as bytes: a header is any Latin-1 text, and compare_digest refuses non-ASCII str.
    return (
        bool(token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))
    )


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_ALLOWED_IPS and not settings.METRICS_TOKEN:
        raise Http404
    if not (_client_allowed(request) or _token_given(request)):
        return HttpResponseForbidden("Metrics are open to the configured addresses or token.")
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
