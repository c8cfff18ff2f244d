from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from customers.models import Customer
from portal.admin import changelists
from portal.admin.actions import Provisioning, ProvisioningAdminMixin, attempts_label
from portal.admin.calls import call_log_link, call_log_url, timeline
from portal.admin.changelists import LargeListAdminMixin, NeedsAttentionFilter
from portal.models import ProvisioningCall

ORDERS_SHOWN = 20

REGISTER = "customers.register_customer"

MIRRORED = list(Customer.MIRRORED_FIELDS)
BOOKKEEPING = [
    "status",
    "last_error",
    "attempts_display",
    "oneoffice_calls",
    "created_at",
    "updated_at",
]


@admin.register(Customer)
class CustomerAdmin(LargeListAdminMixin, ProvisioningAdminMixin, admin.ModelAdmin):
    list_display = [
        "code",
        "customer_name",
        "email",
        "account_manager",
        "status_badge",
        "oneoffice_id",
    ]
    list_display_links = ["code"]
    list_filter = ["status", NeedsAttentionFilter, "account_manager"]
    list_select_related = ["account_manager"]
    search_fields = ["code", "name", "admin_email", "admin_display_name"]
    fieldsets = [
        (None, {"fields": ["code", "name", "account_manager", "auto_renew_default"]}),
        (
            "Customer's OneOffice admin",
            {"fields": ["admin_email", "admin_phone", "admin_display_name"]},
        ),
        ("Provisioning", {"fields": BOOKKEEPING}),
        ("What OneOffice returned", {"fields": MIRRORED}),
    ]
    # Shown on an existing customer's page only.
    extra_fieldsets = [
        ("Orders", {"fields": ["order_list"]}),
        ("OneOffice timeline", {"fields": ["timeline"]}),
    ]
    provisioning_actions = (
        Provisioning(
            name="register",
            label="Register on OneOffice",
            perms=(REGISTER,),
            possible=lambda c: c.can(Customer.Action.REGISTER),
        ),
        Provisioning(
            name="retry",
            label="Retry",
            perms=(REGISTER,),
            possible=lambda c: c.can_retry(),
        ),
    )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        return [*fieldsets, *self.extra_fieldsets] if obj is not None else fieldsets

    def get_search_results(self, request, queryset, search_term):
        """A customer id (with or without its prefix), or words anywhere in the id, name or
        admin's email and name, accents and case aside."""
        # The order form's customer picker offers only customers that can take orders.
        if request.GET.get("model_name") == "order" and request.GET.get("field_name") == "customer":
            queryset = queryset.filter(status=Customer.Status.REGISTERED)
        term = changelists.search_term(search_term)
        if not term:
            return queryset, False
        return queryset.filter(changelists.customer_search_q(term)), False

    def get_readonly_fields(self, request, obj=None):
        fixed = [*BOOKKEEPING, *MIRRORED, "order_list", "timeline"]
        if obj is not None and not obj.is_editable:
            # Registered data mirrors OneOffice, which has no update call.
            return [*fixed, "code", "name", "admin_email", "admin_phone", "admin_display_name"]
        return fixed

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.status != Customer.Status.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description="call log")
    def oneoffice_calls(self, obj):
        return call_log_link(obj, customer__id__exact=obj.pk) if obj.pk else "-"

    @admin.display(description="name", ordering="name")
    def customer_name(self, obj):
        return format_html('<span class="truncate" title="{}">{}</span>', obj.name, obj.name)

    @admin.display(description="admin email", ordering="admin_email")
    def email(self, obj):
        return format_html(
            '<span class="truncate short" title="{}">{}</span>', obj.admin_email, obj.admin_email
        )

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return format_html(
            '<span class="badge badge-{}">{}</span>', obj.status, obj.get_status_display()
        )

    @admin.display(description="attempts")
    def attempts_display(self, obj):
        return attempts_label(obj)

    @admin.display(description="OneOffice calls, newest first")
    def timeline(self, obj):
        calls = ProvisioningCall.objects.filter(customer=obj).select_related(
            "order", "triggered_by"
        )
        return timeline(calls, call_log_url(customer__id__exact=obj.pk))

    @admin.display(description="subscriptions, newest first")
    def order_list(self, obj):
        orders_url = reverse("admin:orders_order_changelist")
        add = ""
        if obj.status == Customer.Status.REGISTERED:
            add = format_html(
                '<a class="addlink" href="{}?customer={}">Add order for this customer</a>',
                reverse("admin:orders_order_add"),
                obj.pk,
            )
        orders = list(obj.orders.filter(parent__isnull=True)[: ORDERS_SHOWN + 1])
        if not orders:
            return format_html("<p>No orders yet.</p><p>{}</p>", add)
        rows = format_html_join(
            "",
            '<tr><td><a class="nowrap" href="{}">{}</a></td><td>{} <small>{}</small></td>'
            '<td class="number">{}</td><td><span class="badge badge-{}">{}</span></td>'
            '<td class="nowrap">{}</td></tr>',
            (
                (
                    reverse("admin:orders_order_change", args=[order.pk]),
                    order.number,
                    order.product,
                    order.duration,
                    order.licenses,
                    order.status,
                    order.get_status_display(),
                    f"{order.current_term_end:%Y-%m-%d}" if order.current_term_end else "-",
                )
                for order in orders[:ORDERS_SHOWN]
            ),
        )
        shown = f"The latest {ORDERS_SHOWN} are shown." if len(orders) > ORDERS_SHOWN else ""
        return format_html(
            '<table class="customer-orders"><thead><tr><th>Order id</th><th>Product</th>'
            "<th>Licenses</th><th>Status</th><th>Current term end</th></tr></thead>"
            "<tbody>{}</tbody></table>"
            '<p>{} <a href="{}?customer__id__exact={}">All orders of this customer</a> {}</p>',
            rows,
            shown,
            orders_url,
            obj.pk,
            add,
        )
