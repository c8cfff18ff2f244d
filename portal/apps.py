from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "OneOffice provisioning"

    def ready(self):
        from portal.roles import sync_groups

        post_migrate.connect(sync_groups, dispatch_uid="portal.roles.sync_groups")


class PortalAdminConfig(admin_apps.AdminConfig):
    """The admin app, with `admin.site` a site that asks staff for their second factor."""

    default = False  # named in INSTALLED_APPS instead of django.contrib.admin
    default_site = "portal.admin_site.PortalAdminSite"

    def ready(self):
        super().ready()
        # After every app's admin module: it replaces the registration of User.
        from portal import admin_security  # noqa: F401
