from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from customers import selectors
from customers.models import Customer
from orders.money import revenue
from orders.money.pricing import format_money
from orders.renewals import terms
from orders.renewals.selectors import RENEWABLE
from portal.admin import changelists
from portal.admin.actions import Provisioning, ProvisioningAdminMixin, attempts_label
from portal.admin.calls import call_log_link, call_log_url
from portal.admin.changelists import LargeListAdminMixin, NeedsAttentionFilter

ORDERS_SHOWN = 20
TIMELINE_LENGTH = 20
# Who may see each kind of event on a customer's timeline.
TIMELINE_PERMS = {
    selectors.CALLS: "portal.view_provisioningcall",
    selectors.CHANGES: "orders.view_order",
    selectors.REMINDERS: "orders.view_renewalreminder",
    selectors.BATCHES: "portal.view_batch",
}
TIMELINE_LABELS = {
    selectors.CALLS: "OneOffice calls",
    selectors.CHANGES: "subscription changes",
    selectors.REMINDERS: "renewal reminders",
    selectors.BATCHES: "batches",
}

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
    change_form_template = "admin/customers/customer/change_form.html"
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
        fixed = [*BOOKKEEPING, *MIRRORED]
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

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["overview"] = self.overview(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def overview(self, request, customer: Customer) -> dict:
        """What the top of a customer's page shows, each part only to those who may see it:
        its subscriptions, MRR and next renewal, then one timeline of what happened."""
        user = request.user
        overview: dict = {"timeline_kinds": []}
        if user.has_perm("orders.view_order"):
            overview.update(self._subscriptions(request, customer))
        kinds = {kind for kind, perm in TIMELINE_PERMS.items() if user.has_perm(perm)}
        events, more = selectors.customer_timeline(
            customer=customer, kinds=kinds, limit=TIMELINE_LENGTH
        )
        overview["timeline"] = [
            (event, self._url_if_allowed(request, event.obj)) for event in events
        ]
        overview["timeline_more"] = more
        overview["timeline_kinds"] = [
            TIMELINE_LABELS[kind] for kind in selectors.KINDS if kind in kinds
        ]
        if user.has_perm("portal.view_provisioningcall"):
            overview["calls_url"] = call_log_url(q=customer.code)
        return overview

    def _subscriptions(self, request, customer: Customer) -> dict:
        today = timezone.localdate()
        found = list(selectors.customer_subscriptions(customer=customer)[: ORDERS_SHOWN + 1])
        rows = [
            {
                "order": order,
                "url": self._url_if_allowed(request, order),
                "value": format_money(order.current_value, order.current_currency)
                if order.current_term_end
                else "",
                "lapsed": order.status in RENEWABLE
                and order.current_term_end is not None
                and order.current_term_end < today,
            }
            for order in found[:ORDERS_SHOWN]
        ]
        recurring = revenue.revenue_recurring(today=today, customer_id=customer.pk)
        upcoming = selectors.customer_next_renewal(customer=customer, today=today)
        next_renewal = None
        if upcoming is not None:
            _, last = terms.renewal_window(today=today)
            next_renewal = {
                "order": upcoming,
                "url": self._url_if_allowed(request, upcoming),
                "days_left": terms.days_left(upcoming.current_term_end, today),
                "due": upcoming.current_term_end <= last,
            }
        can_add = customer.status == Customer.Status.REGISTERED and request.user.has_perm(
            "orders.add_order"
        )
        return {
            "show_subscriptions": True,
            "subscriptions": rows,
            "more_subscriptions": len(found) > ORDERS_SHOWN,
            "orders_url": f"{reverse('admin:orders_order_changelist')}?customer__id__exact="
            f"{customer.pk}",
            "add_order_url": f"{reverse('admin:orders_order_add')}?customer={customer.pk}"
            if can_add
            else "",
            "mrr": format_money(recurring.mrr, recurring.currency),
            "suspended_mrr": format_money(recurring.suspended_mrr, recurring.currency)
            if recurring.suspended_mrr
            else "",
            "unpriced": recurring.unpriced,
            "next_renewal": next_renewal,
        }

    def _url_if_allowed(self, request, obj) -> str:
        """The object's page, when the person may open it; empty otherwise."""
        model_admin = self.admin_site._registry.get(type(obj))
        if model_admin is None or not model_admin.has_view_permission(request, obj):
            return ""
        opts = obj._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
