"""The managers' dashboard: what is running, what is due, what needs a person. Read-only."""

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from orders import reports
from orders.money import revenue
from orders.renewals import selectors

VIEW_PERMISSION = "orders.view_order"


def _bars(figures, *, value=lambda f: f.count) -> list[dict]:
    """Each figure with its bar length as a percentage of the largest."""
    largest = max((value(f) for f in figures), default=0)
    return [
        {"figure": f, "percent": round(100 * value(f) / largest) if largest else 0} for f in figures
    ]


def dashboard_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    today = timezone.localdate()
    orders_url = reverse("admin:orders_order_changelist")
    weeks = reports.order_renewals_per_week(today=today)
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "today": today,
        "orders_url": orders_url,
        "customers_url": reverse("admin:customers_customer_changelist"),
        "by_status": _bars(reports.order_count_by_status()),
        "by_product": _bars(reports.order_licenses_by_product(), value=lambda f: f.licenses),
        "weeks": _bars(weeks),
        "weeks_total": sum(week.count for week in weeks),
        "renewal_states": reports.order_renewal_state_counts(today=today),
        "attention": reports.needs_attention_counts(),
        "due": selectors.DUE,
        "lapsed": selectors.LAPSED,
        "window_days": settings.ONEOFFICE_RENEWAL_WINDOW_DAYS,
        **revenue.dashboard_context(today=today),
    }
    return TemplateResponse(request, "admin/portal/dashboard.html", context)
