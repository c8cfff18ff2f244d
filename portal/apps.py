from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "OneOffice provisioning"

    def ready(self):
        from portal.provisioning.operations import register_operations
        from portal.security.roles import sync_groups

        register_operations()
        post_migrate.connect(sync_groups, dispatch_uid="portal.security.roles.sync_groups")


class PortalAdminConfig(admin_apps.AdminConfig):
    """The admin app, with `admin.site` a site that asks staff for their second factor."""

    default = False  # named in INSTALLED_APPS instead of django.contrib.admin
    default_site = "portal.admin.site.PortalAdminSite"

    def ready(self):
        super().ready()
        # The portal's own admins, after every app's admin module: the last one replaces the
        # registration of User.
        from portal.admin import batches, calls  # noqa: F401
        from portal.security import admin as security_admin  # noqa: F401
