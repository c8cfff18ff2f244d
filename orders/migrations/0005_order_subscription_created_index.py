from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0004_reminder_roles"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["parent", "created_at"], name="order_subscription_created"),
        ),
    ]
