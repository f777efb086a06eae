from django.conf import settings
from django.db import migrations, models
from django.utils.module_loading import import_string


def collecting_gateways() -> list[str]:
    """The slugs of the gateways that collect (QR codes, checkouts), read off their classes."""
    slugs = []
    for slug, path in settings.PAYDESK_GATEWAYS.items():
        try:
            gateway_class = import_string(path)
        except ImportError:
            continue
        if getattr(gateway_class, "collects", False):
            slugs.append(slug)
    return slugs


def store_directions(apps, schema_editor):
    """Existing real-time payments collect when their gateway does; every batch row pays out."""
    Payment = apps.get_model("payments", "Payment")
    Payment.objects.filter(batch__isnull=True, gateway__in=collecting_gateways()).update(
        direction="collection"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0010_payout_rails"),
    ]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="direction",
            field=models.CharField(
                choices=[("payout", "Payout"), ("collection", "Collection")],
                db_default="payout",
                default="payout",
                max_length=10,
            ),
        ),
        migrations.RunPython(store_directions, migrations.RunPython.noop),
    ]
