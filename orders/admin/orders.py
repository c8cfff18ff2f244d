from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from customers.models import Customer
from orders.admin.filters import SubscriptionNeedsAttentionFilter
from orders.admin.renewals import RenewalWindowFilter
from orders.book.export import order_export
from orders.models import ALIGN_PERMISSIONS, Order
from orders.money.pricing import format_money
from orders.renewals import terms
from portal import provisioning
from portal.admin import changelists
from portal.admin.actions import Provisioning, ProvisioningAdminMixin, attempts_label
from portal.admin.calls import call_log_link, call_log_url, timeline
from portal.admin.changelists import LargeListAdminMixin
from portal.admin.widgets import SafeAutocompleteMixin
from portal.core.people import display_name
from portal.models import ProvisioningCall

S = Order.Status
SALE_FIELDS = ["customer", "number", "product", "licenses", "duration", "discount_percent"]
BOOKKEEPING = [
    "status",
    "unit_price",
    "currency",
    "value",
    "current_value",
    "pending_action",
    "term_start",
    "term_end",
    "current_term_end",
    "last_error",
    "attempts_display",
    "oneoffice_calls",
    "created_by",
    "created_at",
]


def _describe(order: Order) -> str:
    term = f"current term ends {order.current_term_end:%d %b %Y}" if order.current_term_end else ""
    return (
        f"{order.number} for {order.customer.name}: {order.licenses} × {order.product}, "
        f"{order.duration}, {term}"
    )


def _confirm_cancel(order: Order) -> str:
    return (
        f"Cancel subscription {_describe(order)}. OneOffice ends the subscription; "
        "licenses are not refunded and the portal cannot undo it."
    )


def _confirm_suspend(order: Order) -> str:
    return (
        f"Suspend subscription {_describe(order)}. OneOffice has no resume call: "
        "only a renewal makes it active again."
    )


def _confirm_renew(order: Order) -> str:
    """The renewal as the portal will record it: the same arithmetic as the service. Whether
    the portal refuses it is the service's own check (`order_renew_refusal`)."""
    if order.current_term_end is None:
        return f"Renew {_describe(order)}."
    today = terms.vendor_date()  # the service dates the term from OneOffice's today
    start = terms.renewal_start(order.current_term_end, today)
    end = terms.term_end(start, order.duration)
    return (
        f"Renew subscription {_describe(order)}. OneOffice creates a renewal order, billed as "
        f"a new {order.duration} term from {start:%d %b %Y} to {end:%d %b %Y}."
    )


def _confirm_align(order: Order) -> str:
    """What bringing the record in line will record: OneOffice's words, and the change."""
    call = order.oneoffice_status_call
    if not order.out_of_line or call is None:
        return f"Bring {order.number} in line with OneOffice."
    return (
        f"Bring subscription {_describe(order)} in line with OneOffice. OneOffice answered "
        f'"{call.error}" to {call.method} on {call.started_at:%d %b %Y %H:%M} UTC (call '
        f"#{call.pk}): it holds the subscription as {order.oneoffice_status}. The portal "
        f"records it as {order.oneoffice_status} instead of {order.get_status_display()}, "
        "with OneOffice's answer, your name and the time, and the figures follow. "
        "Nothing is sent to OneOffice."
    )


EXPORT_PERMISSION = "orders.export_order"


def _confirm_resolution(renewed: bool):
    def confirm(order: Order) -> str:
        outcome = (
            "renewed: the subscription's term end moves on, as if the first attempt had landed"
            if renewed
            else "not renewed: it is marked failed and the subscription can be renewed again"
        )
        return (
            f"Renewal {order.number} of {order.parent}: OneOffice's answer to a retry did not "
            f"say whether it renewed. Check with OneOffice first. Record it as {outcome}. "
            "Nothing is sent to OneOffice."
        )

    return confirm


RENEWALS_SHOWN = 20


class LatestRenewalsFormSet(BaseInlineFormSet):
    """The newest renewals only: a subscription renewed monthly for years has hundreds."""

    def get_queryset(self):
        if not hasattr(self, "_latest"):
            self._latest = super().get_queryset()[:RENEWALS_SHOWN]
        return self._latest


class RenewalInline(admin.TabularInline):
    model = Order
    formset = LatestRenewalsFormSet
    fk_name = "parent"
    verbose_name = "renewal"
    verbose_name_plural = "renewals"
    fields = [
        "number",
        "status",
        "term_start",
        "term_end",
        "last_error",
        "attempts_display",
        "created_at",
    ]
    readonly_fields = fields
    template = "admin/orders/order/renewal_inline.html"
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="attempts")
    def attempts_display(self, obj):
        return attempts_label(obj)

    def get_formset(self, request, obj=None, **kwargs):
        if obj is not None:
            total = obj.renewals.count()
            if total > RENEWALS_SHOWN:
                url = reverse("admin:orders_order_changelist") + f"?parent__id__exact={obj.pk}"
                self.verbose_name_plural = format_html(
                    'renewals: the latest {} of {} <a href="{}">(all renewals)</a>',
                    RENEWALS_SHOWN,
                    f"{total:,}",
                    url,
                )
        return super().get_formset(request, obj, **kwargs)


class FirstOrderChangeList(ChangeList):
    """The order list shows subscriptions (first orders); renewals live on their pages."""

    def __init__(self, request, *args, **kwargs):
        # A subscription's page links here for all its renewals.
        self.renewals_of = request.GET.get("parent__id__exact")
        super().__init__(request, *args, **kwargs)

    # Everything the list counts and filters starts here, the "N total" count included.
    @property
    def root_queryset(self):
        return self._root_queryset

    @root_queryset.setter
    def root_queryset(self, queryset):
        if self.renewals_of is None:
            queryset = queryset.filter(parent__isnull=True)
        self._root_queryset = queryset


@admin.register(Order)
class OrderAdmin(
    SafeAutocompleteMixin, LargeListAdminMixin, ProvisioningAdminMixin, admin.ModelAdmin
):
    list_display = [
        "order_id",
        "customer_name",
        "product_code",
        "licenses_and_value",
        "status_badge",
        "term_end_display",
        "account_manager",
    ]
    list_display_links = ["order_id"]
    list_filter = [
        "status",
        SubscriptionNeedsAttentionFilter,
        RenewalWindowFilter,
        "product",
        "duration",
        "customer__account_manager",
    ]
    list_select_related = ["customer", "customer__account_manager"]
    search_fields = ["number", "customer__name", "customer__code"]
    date_hierarchy = "current_term_end"
    autocomplete_fields = ["customer"]
    inlines = [RenewalInline]
    provisioning_actions = (
        Provisioning(
            name="place",
            label="Place on OneOffice",
            perms=("orders.place_order",),
            possible=lambda o: o.can(Order.Action.PLACE),
        ),
        Provisioning(
            name="renew",
            label="Renew",
            perms=("orders.renew_order",),
            possible=lambda o: o.can(Order.Action.RENEW),
            confirm=_confirm_renew,
            refusal=provisioning.order_renew_refusal,
        ),
        Provisioning(
            name="suspend",
            label="Suspend",
            perms=("orders.suspend_order",),
            possible=lambda o: o.can(Order.Action.SUSPEND),
            confirm=_confirm_suspend,
        ),
        Provisioning(
            name="cancel",
            label="Cancel subscription",
            perms=("orders.cancel_order",),
            possible=lambda o: o.can(Order.Action.CANCEL),
            confirm=_confirm_cancel,
        ),
        Provisioning(
            name="mark_renewed",
            label="Mark as renewed",
            perms=("orders.renew_order",),
            possible=provisioning.order_needs_decision,
            confirm=_confirm_resolution(True),
        ),
        Provisioning(
            name="mark_not_renewed",
            label="Mark as not renewed",
            perms=("orders.renew_order",),
            possible=provisioning.order_needs_decision,
            confirm=_confirm_resolution(False),
        ),
        Provisioning(
            name="align",
            label="Bring in line with OneOffice",
            # The permission of the action whose effect it records: whoever may cancel may
            # record that OneOffice cancelled it.
            perms=tuple(f"orders.{codename}" for codename in ALIGN_PERMISSIONS.values()),
            object_perm=lambda o: (
                "orders." + ALIGN_PERMISSIONS.get(o.oneoffice_status, "cancel_order")
            ),
            possible=lambda o: o.out_of_line and o.can(Order.Action.ALIGN),
            confirm=_confirm_align,
            refusal=provisioning.order_bring_in_line_refusal,
        ),
        Provisioning(
            name="retry",
            label="Retry",
            perms=tuple(f"orders.{verb}_order" for verb in ("place", "renew", "suspend", "cancel")),
            object_perm=lambda o: "orders." + provisioning.order_permission_for(o),
            possible=lambda o: o.can_retry(),
        ),
    )

    def get_changelist(self, request, **kwargs):
        return FirstOrderChangeList

    def get_search_results(self, request, queryset, search_term):
        """A subscription by its id or a renewal's, or by its customer (see the customer
        list's search)."""
        term = changelists.search_term(search_term)
        if not term:
            return queryset, False
        return queryset.filter(changelists.subscriptions_found_q(term)), False

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="orders_order_export",
            ),
            *super().get_urls(),
        ]

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request) and request.user.has_perm(EXPORT_PERMISSION)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "has_export_permission": self.has_export_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def export_view(self, request):
        """The order list as CSV: the changelist's own filters, search and ordering, all pages."""
        if not self.has_export_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            url = reverse("admin:orders_order_changelist")
            return HttpResponseRedirect(f"{url}?{ERROR_FLAG}=1")
        return order_export(changelist.queryset)

    def get_fields(self, request, obj=None):
        fields = [*SALE_FIELDS, "auto_renew", *BOOKKEEPING]
        if obj is not None and obj.out_of_line:
            fields.insert(fields.index("status") + 1, "oneoffice_says")
        return [*fields, "timeline"] if obj is not None else fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if "customer" in form.base_fields:
            # Only a registered customer can take orders; an order keeps the one it has.
            keep = Q(pk=obj.customer_id) if obj is not None else Q(pk__in=[])
            field = form.base_fields["customer"]
            field.queryset = field.queryset.filter(Q(status=Customer.Status.REGISTERED) | keep)
            field.error_messages["invalid_choice"] = (
                "Select a valid choice: a customer registered on OneOffice (register a draft "
                "customer first)."
            )
        return form

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.is_editable:
            fixed = [*SALE_FIELDS, *BOOKKEEPING, "oneoffice_says", "timeline"]
            # Auto-renew stays a choice while the subscription can still be renewed.
            return fixed if obj.can(Order.Action.RENEW) else [*fixed, "auto_renew"]
        return [*BOOKKEEPING, "oneoffice_says", "timeline"]

    @admin.display(description="OneOffice holds it as")
    def oneoffice_says(self, obj):
        call = obj.oneoffice_status_call
        if not obj.out_of_line or call is None:
            return "-"
        return format_html(
            '<strong class="out-of-line">{}</strong>: OneOffice answered "{}" to {} on {} UTC '
            '(<a href="{}">call #{}</a>). Nothing changed here: <em>Bring in line with '
            "OneOffice</em> records it.",
            obj.oneoffice_status,
            call.error,
            call.method,
            f"{call.started_at:%d %b %Y %H:%M}",
            reverse("admin:portal_provisioningcall_change", args=[call.pk]),
            call.pk,
        )

    def get_inlines(self, request, obj):
        # Every subscription's form carries the renewals' management form, even before a first
        # term (the template then shows nothing): a form opened while a draft and saved after
        # placing would otherwise miss it and fail with a hidden-field error.
        return self.inlines if obj is not None and obj.is_first_order else []

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            if "auto_renew" not in form.changed_data:
                obj.auto_renew = obj.customer.auto_renew_default
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.status != S.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description="licenses", ordering="licenses")
    def licenses_and_value(self, obj):
        # The term's value sits under the licences, so the list still fits 1280 px.
        return format_html(
            '{}<small class="below nowrap" title="value of the current term">{}</small>',
            obj.licenses,
            format_money(obj.current_value, obj.current_currency),
        )

    @admin.display(description="call log")
    def oneoffice_calls(self, obj):
        if obj.pk is None:
            return "-"
        return call_log_link(obj, order__id__exact=obj.pk)

    @admin.display(description="OneOffice timeline")
    def timeline(self, obj):
        calls = ProvisioningCall.objects.filter(Q(order=obj) | Q(order__parent=obj))
        return timeline(
            calls.select_related("order", "triggered_by"), call_log_url(subscription=obj.pk)
        )

    @admin.display(description="attempts")
    def attempts_display(self, obj):
        return attempts_label(obj)

    @admin.display(description="order id", ordering="number")
    def order_id(self, obj):
        return format_html('<span class="nowrap">{}</span>', obj.number)

    @admin.display(description="customer", ordering="customer__name")
    def customer_name(self, obj):
        customer = obj.customer
        return format_html(
            '<span class="truncate" title="{} ({})">{}</span>',
            customer.name,
            customer.code,
            customer.name,
        )

    @admin.display(description="product", ordering="product")
    def product_code(self, obj):
        return format_html(
            '<span class="nowrap" title="{}, {}">{}</span><small class="below">{}</small>',
            obj.get_product_display(),
            obj.duration,
            obj.product,
            obj.duration,
        )

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        label = obj.get_status_display()
        title = f"{label}: {obj.pending_action}" if obj.pending_action else label
        badge = format_html(
            '<span class="badge badge-{}" title="{}">{}</span>', obj.status, title, label
        )
        if obj.out_of_line:
            return format_html(
                '{}<small class="below out-of-line">OneOffice: {}</small>',
                badge,
                obj.oneoffice_status,
            )
        return badge

    @admin.display(description="term end", ordering="current_term_end")
    def term_end_display(self, obj):
        end = obj.current_term_end
        if end is None:
            return "-"
        if obj.status in {S.CANCELLED, S.FAILED}:
            return format_html('<span class="nowrap">{}</span>', f"{end:%Y-%m-%d}")
        left = terms.days_left(end, terms.vendor_date())
        words = f"{left} days left" if left >= 0 else f"lapsed {-left} days ago"
        return format_html(
            '<span class="nowrap">{}</span><small class="below days-left">{}</small>',
            f"{end:%Y-%m-%d}",
            words,
        )

    @admin.display(description="account manager", ordering="customer__account_manager__username")
    def account_manager(self, obj):
        manager = obj.customer.account_manager
        if manager is None:
            return "-"
        name = display_name(manager)
        return format_html('<span class="truncate short" title="{}">{}</span>', name, name)
