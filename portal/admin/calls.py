"""The OneOffice call log: the list, the filter by subscription, and the short timeline that
customer and order pages show."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from orders.models import Order
from portal.admin import changelists
from portal.admin.changelists import LargeListAdminMixin
from portal.admin.records import ReadOnlyAdmin
from portal.models import ProvisioningCall


def call_log_url(**filters) -> str:
    query = "&".join(f"{key}={value}" for key, value in filters.items())
    return reverse("admin:portal_provisioningcall_changelist") + "?" + query


def call_log_link(obj, **filters) -> str:
    """A link to the call log, filtered to one customer or order."""
    return format_html('<a href="{}">OneOffice calls</a>', call_log_url(**filters))


TIMELINE_LENGTH = 10


def timeline(calls, log_url: str) -> str:
    """The latest provisioning calls as a short table: when (with its zone), what, outcome, who."""
    calls = list(calls[: TIMELINE_LENGTH + 1])
    if not calls:
        return mark_safe('<p class="timeline-empty">Nothing sent to OneOffice yet.</p>')
    rows = format_html_join(
        "",
        '<tr><td class="nowrap">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
        (
            (
                date_format(timezone.localtime(call.started_at), "DATETIME_FORMAT"),
                call.method,
                call.order.number if call.order_id else "",
                call.get_outcome_display()
                + (f" (attempt {call.attempt})" if call.attempt > 1 else ""),
                call.triggered_by_label,
            )
            for call in calls[:TIMELINE_LENGTH]
        ),
    )
    more = (
        f"Latest {TIMELINE_LENGTH} shown; the call log has all of them."
        if len(calls) > TIMELINE_LENGTH
        else "The call log has what was sent and answered."
    )
    return format_html(
        '<table class="timeline"><thead><tr><th>When</th><th>Call</th><th>Order</th>'
        "<th>Outcome</th><th>By</th></tr></thead><tbody>{}</tbody></table>"
        '<p class="help">{} <a href="{}">Open the call log</a></p>',
        rows,
        more,
        log_url,
    )


class SubscriptionCallsFilter(admin.SimpleListFilter):
    """The calls of one subscription: its first order's and its renewals'. Reached by link."""

    title = "subscription"
    parameter_name = "subscription"

    def _pk(self) -> int | None:
        value = self.value()
        return int(value) if value and value.isascii() and value.isdigit() else None

    def lookups(self, request, model_admin):
        number = Order.objects.filter(pk=self._pk()).values_list("number", flat=True).first()
        return [(str(self._pk()), f"{number} and its renewals")] if number else []

    def queryset(self, request, queryset):
        if self._pk() is not None:
            return queryset.filter(Q(order_id=self._pk()) | Q(order__parent_id=self._pk()))
        return queryset


@admin.register(ProvisioningCall)
class ProvisioningCallAdmin(LargeListAdminMixin, ReadOnlyAdmin):
    list_display = [
        "started",
        "method",
        "outcome_label",
        "customer_name",
        "order",
        "triggered_by_label",
    ]
    list_display_links = ["started"]
    list_filter = [SubscriptionCallsFilter, "method", "outcome", "settled_earlier"]
    list_select_related = ["customer", "order", "triggered_by"]
    search_fields = ["customer__code", "customer__name", "order__number"]
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in ProvisioningCall._meta.fields]

    def get_search_results(self, request, queryset, search_term):
        """Calls about an order by its id (with or without its prefix), or about a customer
        found as the customer list finds it: its registration and its orders' calls."""
        term = changelists.search_term(search_term)
        if not term:
            return queryset, False
        customers = changelists.matching_customers(term)
        matches = (
            Q(order__in=changelists.order_ids(term))
            | Q(customer__in=customers)
            | Q(order__in=Order.objects.filter(customer__in=customers).values("pk"))
        )
        return queryset.filter(matches), False

    @admin.display(description="triggered by")
    def triggered_by_label(self, obj):
        return obj.triggered_by_label

    @admin.display(description="started at", ordering="started_at")
    def started(self, obj):
        # Date above time: the list keeps its columns inside 1280 px with long order ids.
        moment = timezone.localtime(obj.started_at)
        return format_html(
            '{}<small class="below">{}</small>',
            date_format(moment, "SHORT_DATE_FORMAT"),
            date_format(moment, "H:i:s T"),
        )

    @admin.display(description="outcome", ordering="outcome")
    def outcome_label(self, obj):
        label = obj.get_outcome_display()
        if obj.attempt > 1:
            label = f"{label}, attempt {obj.attempt}"
        answer = f"HTTP {obj.http_status or '-'}"
        if obj.duration_ms is not None:
            answer += f", {obj.duration_ms} ms"
        return format_html('{}<small class="below">{}</small>', label, answer)

    @admin.display(description="customer", ordering="customer__name")
    def customer_name(self, obj):
        if obj.customer_id is None:
            return "-"
        return format_html(
            '<span class="truncate short" title="{}">{}</span>', obj.customer, obj.customer.name
        )
