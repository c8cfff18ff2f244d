from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, apps=None, **kwargs) -> None:
    from portal.roles import sync_groups

    if apps is None:
        # A flush, not a migration: the tables are emptied, the schema has not changed.
        return
    # The price list's permissions exist only once its models are migrated.
    sync_groups(apps)


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="orders_sync_roles")
