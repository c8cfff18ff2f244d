from django.db import migrations


def sync_groups(apps, schema_editor):
    from portal.roles import sync_groups

    sync_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_reminders"),
    ]

    # portal.roles grants the reminder permissions, which exist from 0003 on.
    operations = [migrations.RunPython(sync_groups, migrations.RunPython.noop)]
