from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_order_subscription_created_index"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                condition=models.Q(("parent__isnull", True)),
                fields=["created_at", "id"],
                name="order_subscription_newest",
            ),
        ),
    ]
