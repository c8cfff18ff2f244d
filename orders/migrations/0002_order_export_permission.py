from django.db import migrations


def sync_groups(apps, schema_editor):
    from portal.roles import sync_groups

    sync_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
        ("portal", "0002_roles"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="order",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [
                    ("place_order", "Can place orders on OneOffice"),
                    ("renew_order", "Can renew subscriptions on OneOffice"),
                    ("suspend_order", "Can suspend subscriptions on OneOffice"),
                    ("cancel_order", "Can cancel subscriptions on OneOffice"),
                    ("export_order", "Can export the order list"),
                ],
            },
        ),
        # The Managers and Sales groups are granted the new permission (portal.roles).
        migrations.RunPython(sync_groups, migrations.RunPython.noop),
    ]
