"""The two staff roles and what each may do.

`sync_groups` runs after every `migrate` (a `post_migrate` handler, as Django creates
permissions), so a change to ROLES takes effect on the next migrate without a data migration.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions

SALES = "Sales"
MANAGERS = "Managers"

_VIEW_ALL = [
    "customers.view_customer",
    "orders.view_order",
    "portal.view_provisioningcall",
    "orders.view_renewalreminder",
    "orders.view_reminderrun",
    "orders.view_price",
    "orders.view_discountpolicy",
    "portal.view_batch",
]

ROLES: dict[str, list[str]] = {
    # Sales staff create and edit customers and orders and run every provisioning action.
    SALES: [
        *_VIEW_ALL,
        "customers.add_customer",
        "customers.change_customer",
        "customers.delete_customer",
        "customers.register_customer",
        "orders.add_order",
        "orders.change_order",
        "orders.delete_order",
        "orders.place_order",
        "orders.renew_order",
        "orders.suspend_order",
        "orders.cancel_order",
        "orders.export_order",
    ],
    # Managers read everything, export and see the dashboard; they provision nothing.
    # They also keep the price list and the maximum discount sales staff may give.
    MANAGERS: [
        *_VIEW_ALL,
        "orders.export_order",
        "orders.resend_reminder",
        "orders.add_price",
        "orders.change_price",
        "orders.delete_price",
        "orders.add_discountpolicy",
        "orders.change_discountpolicy",
    ],
}


def sync_groups(*, sender=None, using: str = "default", **kwargs) -> None:
    """Create the groups and set their permissions to exactly ROLES.

    Connected to `post_migrate`, which is sent once per app with models: it acts on the last
    one only, once every app's permissions can be created.
    """
    from django.contrib.auth.models import Group, Permission

    with_models = [config for config in global_apps.get_app_configs() if config.models_module]
    if sender is not None and sender is not with_models[-1]:
        return
    for app_config in with_models:
        create_permissions(app_config, verbosity=0, using=using)
    for name, perms in ROLES.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            wanted += (
                Permission.objects.using(using)
                .select_related("content_type")
                .filter(content_type__app_label=app_label, codename=codename)
            )
        missing = set(perms) - {f"{p.content_type.app_label}.{p.codename}" for p in wanted}
        if missing:
            raise LookupError(f"ROLES names permissions that do not exist: {sorted(missing)}")
        group.permissions.set(wanted)
