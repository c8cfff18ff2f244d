"""The two staff roles and what each may do. Migrations apply this with `sync_groups`."""

from django.contrib.auth.management import create_permissions

SALES = "Sales"
MANAGERS = "Managers"

_VIEW_ALL = [
    "customers.view_customer",
    "orders.view_order",
    "portal.view_provisioningcall",
    "orders.view_renewalreminder",
    "orders.view_reminderrun",
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
    MANAGERS: [*_VIEW_ALL, "orders.export_order", "orders.resend_reminder"],
}


def sync_groups(apps) -> None:
    """Create the groups and set their permissions to exactly ROLES (those that exist yet)."""
    for app_config in apps.get_app_configs():
        # Permissions of a model are normally created after all migrations have run.
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            wanted += Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            )
        group.permissions.set(wanted)
