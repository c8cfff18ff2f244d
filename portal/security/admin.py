"""Admin for two-factor sign-in: the superusers' reset action on users, and the two-factor log.

Devices are not editable in the admin: they change only through enrolment and the reset
action, both of which are recorded.
"""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Exists, OuterRef
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.admin.records import ReadOnlyAdmin
from portal.models import TwoFactorEvent
from portal.security import twofactor

User = get_user_model()

for model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
base = type(admin.site.get_model_admin(User)) if admin.site.is_registered(User) else UserAdmin
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class PortalUserAdmin(base):
    list_display = [*base.list_display, "two_factor"]
    actions = [*(base.actions or []), "reset_two_factor_selected"]

    def get_queryset(self, request):
        enrolled = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        return super().get_queryset(request).annotate(has_two_factor=Exists(enrolled))

    @admin.display(boolean=True, description="two-factor", ordering="has_two_factor")
    def two_factor(self, obj):
        return obj.has_two_factor

    def has_reset_two_factor_permission(self, request):
        return request.user.is_superuser

    @admin.action(
        permissions=["reset_two_factor"], description="Reset two-factor devices (selected)"
    )
    def reset_two_factor_selected(self, request, queryset):
        for user in queryset:
            deleted = twofactor.reset_devices(user=user, by=request.user, request=request)
            self.message_user(
                request,
                f"{user.get_username()}: {deleted} device(s) deleted; "
                "they enrol again at their next sign-in.",
                messages.SUCCESS,
            )


@admin.register(TwoFactorEvent)
class TwoFactorEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "username", "kind", "by", "ip_address", "detail"]
    list_filter = ["kind"]
    search_fields = ["username", "ip_address"]
    date_hierarchy = "at"
    list_select_related = ["by"]

    # Superusers only, whatever permissions a group is given.
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser
