from django.db import migrations, models

from portal.core.search import TrigramIndex, search_column

SEARCHED_FIELDS = ("code", "name", "admin_email", "admin_display_name")


def fill_search_text(apps, schema_editor):
    Customer = apps.get_model("customers", "Customer")
    rows = Customer.objects.only("pk", *SEARCHED_FIELDS).order_by("pk")
    changed = []
    for customer in rows.iterator(chunk_size=2000):
        customer.search_text = search_column(*(getattr(customer, f) for f in SEARCHED_FIELDS))
        changed.append(customer)
        if len(changed) == 2000:
            Customer.objects.bulk_update(changed, ["search_text"])
            changed = []
    Customer.objects.bulk_update(changed, ["search_text"])


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="search_text",
            field=models.TextField(blank=True, db_default="", default="", editable=False),
        ),
        migrations.RemoveIndex(model_name="customer", name="customer_name_upper"),
        migrations.RunPython(fill_search_text, migrations.RunPython.noop),
        TrigramIndex(
            table="customers_customer", column="search_text", name="customer_search_trgm"
        ),
    ]
