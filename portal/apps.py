from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "OneOffice provisioning"

    def ready(self):
        from portal.roles import sync_groups

        post_migrate.connect(sync_groups, dispatch_uid="portal.roles.sync_groups")
