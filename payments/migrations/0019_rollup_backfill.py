"""Fill the home page's rollup (0015) from the Events of payments made before it existed."""

from django.db import migrations


def backfill(apps, schema_editor):
    from payments.services.lifecycle.rollups import rollup_rebuild

    rollup_rebuild(
        event_model=apps.get_model("payments", "Event"),
        stat_model=apps.get_model("payments", "PaymentDailyStat"),
    )


class Migration(migrations.Migration):
    dependencies = [("payments", "0018_fraud_controls")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
