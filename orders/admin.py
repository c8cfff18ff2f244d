import csv
from collections.abc import Iterable, Iterator

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, ChangeList
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone

from orders import terms
from orders.admin_renewals import RenewalWindowFilter
from orders.filters import SubscriptionNeedsAttentionFilter
from orders.models import Order
from portal import provisioning
from portal.admin import Provisioning, ProvisioningAdminMixin, call_log_link
from portal.spreadsheets import csv_cell

S = Order.Status
BOOKKEEPING = [
    "status",
    "pending_action",
    "term_start",
    "term_end",
    "current_term_end",
    "last_error",
    "attempts",
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


EXPORT_PERMISSION = "orders.export_order"
EXPORT_COLUMNS = [
    ("order id", "number"),
    ("customer id", "customer__code"),
    ("customer", "customer__name"),
    ("account manager", "customer__account_manager__username"),
    ("product", "product"),
    ("licenses", "licenses"),
    ("duration", "duration"),
    ("status", "status"),
    ("pending action", "pending_action"),
    ("current term end", "current_term_end"),
    ("created at", "created_at"),
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(rows: Iterable[tuple], today) -> Iterator[str]:
    writer = csv.writer(_Echo())
    # A byte-order mark, so spreadsheets read the file as UTF-8.
    yield "\ufeff" + writer.writerow([header for header, _ in EXPORT_COLUMNS] + ["days left"])
    for row in rows:
        term_end = row[9]
        days_left = terms.days_left(term_end, today) if term_end is not None else None
        created_at = timezone.localtime(row[10]).isoformat(timespec="seconds")
        yield writer.writerow([csv_cell(v) for v in (*row[:10], created_at, days_left)])


class RenewalInline(admin.TabularInline):
    model = Order
    fk_name = "parent"
    verbose_name = "renewal"
    verbose_name_plural = "renewals"
    fields = ["number", "status", "term_start", "term_end", "last_error", "attempts", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None):
        return False


class FirstOrderChangeList(ChangeList):
    """The order list shows subscriptions (first orders); renewals live on their pages."""

    # Everything the list counts and filters starts here, the "N total" count included.
    @property
    def root_queryset(self):
        return self._root_queryset

    @root_queryset.setter
    def root_queryset(self, queryset):
        self._root_queryset = queryset.filter(parent__isnull=True)


@admin.register(Order)
class OrderAdmin(ProvisioningAdminMixin, admin.ModelAdmin):
    list_display = [
        "number",
        "customer",
        "product",
        "licenses",
        "duration",
        "status",
        "pending_action",
        "current_term_end",
        "customer__account_manager",
    ]
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
            run=lambda order, by: provisioning.order_place(order=order, by=by),
            possible=lambda o: o.can(Order.Action.PLACE),
            done="placed",
        ),
        Provisioning(
            name="renew",
            label="Renew",
            perms=("orders.renew_order",),
            run=lambda order, by: provisioning.order_renew(order=order, by=by),
            possible=lambda o: o.can(Order.Action.RENEW),
            done="renewed",
        ),
        Provisioning(
            name="suspend",
            label="Suspend",
            perms=("orders.suspend_order",),
            run=lambda order, by: provisioning.order_suspend(order=order, by=by),
            possible=lambda o: o.can(Order.Action.SUSPEND),
            confirm=_confirm_suspend,
            done="suspended",
        ),
        Provisioning(
            name="cancel",
            label="Cancel subscription",
            perms=("orders.cancel_order",),
            run=lambda order, by: provisioning.order_cancel(order=order, by=by),
            possible=lambda o: o.can(Order.Action.CANCEL),
            confirm=_confirm_cancel,
            done="cancelled",
        ),
        Provisioning(
            name="retry",
            label="Retry",
            perms=tuple(f"orders.{verb}_order" for verb in ("place", "renew", "suspend", "cancel")),
            object_perm=lambda o: "orders." + provisioning.order_permission_for(o),
            run=lambda order, by: provisioning.order_retry(order=order, by=by),
            possible=lambda o: o.can_retry(),
            done="retried",
        ),
    )

    def get_changelist(self, request, **kwargs):
        return FirstOrderChangeList

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
        fields = [field for _, field in EXPORT_COLUMNS]
        rows = changelist.queryset.values_list(*fields).iterator(chunk_size=2000)
        today = timezone.localdate()
        response = StreamingHttpResponse(
            _csv_rows(rows, today), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="orders-{today:%Y-%m-%d}.csv"'
        return response

    def get_fields(self, request, obj=None):
        return ["customer", "number", "product", "licenses", "duration", "auto_renew", *BOOKKEEPING]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.is_editable:
            return ["customer", "number", "product", "licenses", "duration", *BOOKKEEPING]
        return BOOKKEEPING

    def get_inlines(self, request, obj):
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

    @admin.display(description="call log")
    def oneoffice_calls(self, obj):
        if obj.pk is None:
            return "-"
        return call_log_link(obj, order__id__exact=obj.pk)
