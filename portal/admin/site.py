"""The portal's admin site: the admin login asks staff for their second factor."""

from django.conf import settings
from django.contrib import admin
from django.urls import path

from portal.admin import search
from portal.security import twofactor


class PortalAdminSite(admin.AdminSite):
    site_header = "OneOffice reseller portal"
    site_title = "OneOffice portal"
    index_title = "Customers, orders and renewals"
    login_form = twofactor.TwoFactorLoginForm
    login_template = "twofactor/login.html"

    def has_permission(self, request):
        # Also checked here, not only by the middleware: no admin page opens on a password alone.
        if not super().has_permission(request):
            return False
        return not settings.STAFF_2FA_REQUIRED or twofactor.is_verified(request.user)

    def get_urls(self):
        # The two-factor page is not behind admin_view: a staff user must reach it before
        # giving a code.
        return [
            path("2fa/", twofactor.two_factor_view, name="two_factor"),
            path("search/", self.admin_view(self.search_view), name="search"),
            *super().get_urls(),
        ]

    def search_view(self, request):
        """The header's search: customers, orders and calls, grouped by kind."""
        return search.search_view(request, self)
