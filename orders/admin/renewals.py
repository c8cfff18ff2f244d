"""Renewals in the admin: the "Renewals due" page, the reminder job's runs and what they sent,
and the order list's "renewal window" filter. Read-only apart from two buttons: Renew (the
order admin's provisioning URL) and Re-send reminder (`reminders.reminder_resend`)."""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from orders.models import Order, ReminderRun, RenewalDue, RenewalReminder
from orders.money.pricing import format_money
from orders.renewals import terms
from orders.renewals.reminders import NO_MANAGER, ReminderError, reminder_resend
from orders.renewals.selectors import (
    DUE,
    LAPSED,
    NOT_YET_DUE,
    order_list_due_for_renewal,
    renewal_state_q,
)
from portal.admin import changelists
from portal.admin.changelists import LargeListAdminMixin
from portal.admin.records import ReadOnlyAdmin
from portal.core.people import display_name, without_inbox_q

RENEWALS_PER_PAGE = 100
SORT_BY_VALUE = "value"


def _manager_label(manager: str) -> str:
    if manager == NO_MANAGER:
        return "Customers whose reminders go to managers only"
    if not manager:
        return ""
    user = get_user_model().objects.filter(pk=int(manager)).first()
    name = display_name(user) if user else f"user #{manager}"
    return f"Customers of {name}"


class RenewalWindowFilter(admin.SimpleListFilter):
    """Subscriptions by where their term end falls against today and the renewal window."""

    title = "renewal window"
    parameter_name = "renewal"

    def lookups(self, request, model_admin):
        return [(DUE, "Due"), (LAPSED, "Lapsed"), (NOT_YET_DUE, "Not yet due")]

    def queryset(self, request, queryset):
        if self.value() in {DUE, LAPSED, NOT_YET_DUE}:
            return queryset.filter(renewal_state_q(self.value()))
        return queryset


@admin.register(ReminderRun)
class ReminderRunAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "finished_at",
        "due_count",
        "lapsed_count",
        "sent_count",
        "emails_sent",
        "succeeded",
    ]
    date_hierarchy = "started_at"
    fields = [*list_display[:-1], "reminders", "error"]
    readonly_fields = fields

    # A run may remind tens of thousands of subscriptions: counts and a link, never the rows.
    @admin.display(description="reminders recorded")
    def reminders(self, obj):
        counts = obj.reminders.aggregate(
            total=Count("pk"), unsent=Count("pk", filter=Q(sent_at__isnull=True))
        )
        url = reverse("admin:orders_renewalreminder_changelist") + f"?run__id__exact={obj.pk}"
        unsent = f", {counts['unsent']:,} not sent yet" if counts["unsent"] else ""
        return format_html(
            '{} reminders{} <a href="{}">List them</a>', f"{counts['total']:,}", unsent, url
        )

    @admin.display(description="no errors", boolean=True)
    def succeeded(self, obj):
        if obj.finished_at is None:
            return None
        return not obj.error


@admin.register(RenewalReminder)
class RenewalReminderAdmin(LargeListAdminMixin, ReadOnlyAdmin):
    list_display = [
        "subscription",
        "customer",
        "term_end",
        "sent_at",
        "recipients",
        "forced",
        "requested_by",
        "run",
    ]
    list_filter = ["forced", "term_end"]
    list_select_related = ["subscription__customer", "requested_by", "run"]
    search_fields = ["subscription__number", "subscription__customer__name"]
    date_hierarchy = "sent_at"
    readonly_fields = [
        "subscription",
        "term_end",
        "run",
        "sent_at",
        "recipients",
        "forced",
        "requested_by",
        "created_at",
    ]
    fields = readonly_fields

    def get_search_results(self, request, queryset, search_term):
        """Reminders about a subscription, found as the order list finds it."""
        term = changelists.search_term(search_term)
        if not term:
            return queryset, False
        matches = changelists.subscription_search_q(term, prefix="subscription__")
        return queryset.filter(matches), False

    @admin.display(description="customer", ordering="subscription__customer__name")
    def customer(self, obj):
        return obj.subscription.customer.name


@admin.register(RenewalDue)
class RenewalDueAdmin(admin.ModelAdmin):
    """The "Renewals due" page, in place of a change list: due and lapsed subscriptions."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("orders.view_order")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        opts = self.model._meta
        prefix = f"{opts.app_label}_{opts.model_name}"
        return [
            path("", self.admin_site.admin_view(self.renewals_view), name=f"{prefix}_changelist"),
            path(
                "<int:order_id>/resend/",
                self.admin_site.admin_view(self.resend_view),
                name=f"{prefix}_resend",
            ),
        ]

    def get_renewals(
        self,
        state: str | None = None,
        sort: str | None = None,
        manager: str | None = None,
        q: str = "",
    ):
        last_sent = (
            RenewalReminder.objects.filter(subscription=OuterRef("pk"), sent_at__isnull=False)
            .order_by("-sent_at")
            .values("sent_at")[:1]
        )
        renewals = order_list_due_for_renewal().annotate(last_reminder_sent=Subquery(last_sent))
        if state in {DUE, LAPSED}:
            renewals = renewals.filter(renewal_state=state)
        if sort == SORT_BY_VALUE:
            renewals = renewals.order_by(
                F("current_value").desc(nulls_last=True), "current_term_end", "number"
            )
        if manager == NO_MANAGER:
            # Whose reminders go to managers only (see orders.renewals.reminders).
            renewals = renewals.filter(without_inbox_q("customer__account_manager"))
        elif manager and manager.isdigit():
            renewals = renewals.filter(customer__account_manager_id=int(manager))
        if q:
            renewals = renewals.filter(changelists.subscriptions_found_q(q))
        return renewals

    def renewals_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        state = request.GET.get("state")
        sort = SORT_BY_VALUE if request.GET.get("sort") == SORT_BY_VALUE else ""
        manager = request.GET.get("manager", "")
        manager = manager if manager == NO_MANAGER or manager.isdigit() else ""
        q = changelists.search_term(request.GET.get("q", ""))
        renewals = self.get_renewals(state, sort, manager, q)
        page = Paginator(renewals, RENEWALS_PER_PAGE).get_page(request.GET.get("p"))
        today = terms.vendor_date()
        for order in page:
            order.days_left_today = terms.days_left(order.current_term_end, today)
            order.value_display = format_money(order.current_value, order.current_currency)
            order.manager_name = display_name(order.customer.account_manager)
        user = request.user
        context = {
            **self.admin_site.each_context(request),
            "title": "Renewals due",
            "opts": self.model._meta,
            "page": page,
            "state": state if state in {DUE, LAPSED} else "",
            "sort": sort,
            "manager": manager,
            "manager_label": _manager_label(manager),
            "q": q,
            "q_param": f"{urlencode({'q': q})}&" if q else "",
            "states": [("", "All"), (DUE, "Due"), (LAPSED, "Lapsed")],
            "today": today,
            "window_days": settings.ONEOFFICE_RENEWAL_WINDOW_DAYS,
            "can_renew": user.has_perm("orders.renew_order"),
            "can_resend": user.has_perm("orders.resend_reminder"),
            "can_view_reminders": user.has_perm("orders.view_renewalreminder"),
        }
        return TemplateResponse(request, "admin/orders/renewals_due.html", context)

    def resend_view(self, request, order_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("orders.resend_reminder"):
            raise PermissionDenied
        order = get_object_or_404(
            Order.objects.select_related("customer"), pk=order_id, parent__isnull=True
        )
        try:
            reminder = reminder_resend(subscription=order, by=request.user)
        except ReminderError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(
                request,
                f"Reminder for {order} re-sent to {reminder.recipients}.",
                messages.SUCCESS,
            )
        opts = self.model._meta
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
