from django.contrib import admin

from customers.models import Customer
from portal import provisioning
from portal.admin import NeedsAttentionFilter, Provisioning, ProvisioningAdminMixin, call_log_link

REGISTER = "customers.register_customer"

MIRRORED = ["oneoffice_id", "partner", "remote_created_at", "is_active", "onboarding_url"]
BOOKKEEPING = ["status", "last_error", "attempts", "oneoffice_calls", "created_at", "updated_at"]


@admin.register(Customer)
class CustomerAdmin(ProvisioningAdminMixin, admin.ModelAdmin):
    list_display = ["code", "name", "admin_email", "account_manager", "status", "oneoffice_id"]
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
    provisioning_actions = (
        Provisioning(
            name="register",
            label="Register on OneOffice",
            perms=(REGISTER,),
            run=lambda customer, by: provisioning.customer_register(customer=customer, by=by),
            possible=lambda c: c.can(Customer.Action.REGISTER),
            done="registered",
        ),
        Provisioning(
            name="retry",
            label="Retry",
            perms=(REGISTER,),
            run=lambda customer, by: provisioning.customer_retry(customer=customer, by=by),
            possible=lambda c: c.can_retry(),
            done="retried",
        ),
    )

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
