from django.contrib import admin
from django.contrib.admin.views.main import ChangeList

from orders.models import Order
from portal import provisioning
from portal.admin import NeedsAttentionFilter, Provisioning, ProvisioningAdminMixin, call_log_link

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


def _is_subscription(order: Order, *states: str) -> bool:
    return order.is_first_order and order.status in states


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

    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).filter(parent__isnull=True)


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
    ]
    list_filter = ["status", NeedsAttentionFilter, "product", "duration"]
    list_select_related = ["customer"]
    search_fields = ["number", "customer__name", "customer__code"]
    autocomplete_fields = ["customer"]
    inlines = [RenewalInline]
    provisioning = (
        Provisioning(
            name="place",
            label="Place on OneOffice",
            perms=("orders.place_order",),
            run=lambda order, by: provisioning.order_place(order=order, by=by),
            possible=lambda o: _is_subscription(o, S.DRAFT, S.FAILED),
            done="placed",
        ),
        Provisioning(
            name="renew",
            label="Renew",
            perms=("orders.renew_order",),
            run=lambda order, by: provisioning.order_renew(order=order, by=by),
            possible=lambda o: _is_subscription(o, S.ACTIVE, S.SUSPENDED),
            done="renewed",
        ),
        Provisioning(
            name="suspend",
            label="Suspend",
            perms=("orders.suspend_order",),
            run=lambda order, by: provisioning.order_suspend(order=order, by=by),
            possible=lambda o: _is_subscription(o, S.ACTIVE),
            confirm=_confirm_suspend,
            done="suspended",
        ),
        Provisioning(
            name="cancel",
            label="Cancel subscription",
            perms=("orders.cancel_order",),
            run=lambda order, by: provisioning.order_cancel(order=order, by=by),
            possible=lambda o: _is_subscription(o, S.ACTIVE, S.SUSPENDED),
            confirm=_confirm_cancel,
            done="cancelled",
        ),
        Provisioning(
            name="retry",
            label="Retry",
            perms=tuple(f"orders.{verb}_order" for verb in ("place", "renew", "suspend", "cancel")),
            object_perm=lambda o: "orders." + provisioning.order_permission_for(o),
            run=lambda order, by: provisioning.order_retry(order=order, by=by),
            possible=lambda o: o.status == S.PENDING,
            done="retried",
        ),
    )

    def get_changelist(self, request, **kwargs):
        return FirstOrderChangeList

    def get_fields(self, request, obj=None):
        return ["customer", "number", "product", "licenses", "duration", *BOOKKEEPING]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.is_editable:
            return ["customer", "number", "product", "licenses", "duration", *BOOKKEEPING]
        return BOOKKEEPING

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None and obj.is_first_order else []

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
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
