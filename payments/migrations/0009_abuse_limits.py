"""Abuse and resource limits (issue 9, section 4).

WebhookSendSlot: the per-merchant budget of workers sending its webhooks, and
an index to find a merchant's due webhooks.

Idempotency keys stored before this change hold the answers to webhook endpoint
create and rotate-secret with the signing secret in plaintext: rewrite them as
they are stored now (the endpoint without `secret`, with `"secret_omitted": true`).
"""

import json

import django.db.models.deletion
from django.db import migrations, models

SECRET_PATHS = ("/api/v1/webhook-endpoints",)


def scrub_stored_secrets(apps, schema_editor):
    IdempotencyKey = apps.get_model("payments", "IdempotencyKey")
    rows = IdempotencyKey.objects.filter(
        method="POST", path__startswith=SECRET_PATHS[0], completed_at__isnull=False
    ).only("pk", "response_body")
    for row in rows.iterator():
        body = bytes(row.response_body or b"")
        if b"whsec_" not in body:
            continue
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and "secret" in data:
            data.pop("secret")
            data["secret_omitted"] = True
            scrubbed = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
            IdempotencyKey.objects.filter(pk=row.pk).update(response_body=scrubbed)
        else:
            # Not an answer we can rewrite: drop the key (a retry then runs as a new request).
            IdempotencyKey.objects.filter(pk=row.pk).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("merchants", "0004_gateway_accounts"),
        ("payments", "0008_payment_batch_line_covering_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="WebhookSendSlot",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.PositiveSmallIntegerField()),
                ("holder", models.CharField(blank=True, max_length=200)),
                ("leased_until", models.DateTimeField(blank=True, null=True)),
                (
                    "merchant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="merchants.merchant"
                    ),
                ),
            ],
            options={"verbose_name": "webhook send slot"},
        ),
        migrations.AddConstraint(
            model_name="webhooksendslot",
            constraint=models.UniqueConstraint(fields=("merchant", "number"), name="webhook_send_slot_unique"),
        ),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(
                condition=models.Q(("channel", "webhook"), ("status", "pending")),
                fields=["merchant", "next_attempt_at"],
                name="delivery_webhook_due",
            ),
        ),
        migrations.RunPython(scrub_stored_secrets, migrations.RunPython.noop),
    ]
