"""Abuse and resource limits (issue 9, section 4).

Idempotency keys stored before this change hold the answers to webhook endpoint
create and rotate-secret with the signing secret in plaintext: rewrite them as
they are stored now (the endpoint without `secret`, with `"secret_omitted": true`).
"""

import json

from django.db import migrations

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
        ("payments", "0006_payment_risk_score"),
    ]

    operations = [
        migrations.RunPython(scrub_stored_secrets, migrations.RunPython.noop),
    ]
