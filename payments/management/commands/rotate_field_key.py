"""Re-encrypt every value encrypted at rest under the first FIELD_ENCRYPTION_KEY, and recompute hashes.

Rotation: put the new key first in FIELD_ENCRYPTION_KEY (`NEW,OLD`), deploy, run
this command, then drop the old key. It walks every model: fields of type
EncryptedTextField (payments' beneficiary data, gateway credentials) and the
token columns of webhook endpoints' secrets; each row is read with any
configured key and written back under the first. The keyed hashes of
beneficiary accounts are recomputed with the current FIELD_HASH_KEY in the
same pass, so the command also completes a change of that key. Rows are
handled in batches of --batch-size, each in its own transaction, so the
command can be stopped and run again.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from merchants.crypto import SecretUnreadable, reencrypt
from merchants.fields import DerivedAccountField, EncryptedTextField

# Plain text columns that hold Fernet tokens written with merchants.crypto.encrypt.
TOKEN_COLUMNS = {"merchants.webhookendpoint": ("secret_encrypted", "previous_secret_encrypted")}


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field under the first FIELD_ENCRYPTION_KEY; recompute account hashes."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=2000)

    def handle(self, *args, **options) -> None:
        size = options["batch_size"]
        total = 0
        for model in apps.get_models():
            encrypted = [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
            derived = [f for f in model._meta.concrete_fields if isinstance(f, DerivedAccountField)]
            tokens = list(TOKEN_COLUMNS.get(model._meta.label_lower, ()))
            if not (encrypted or tokens):
                continue
            count = self._rotate(model, encrypted, derived, tokens, size)
            total += count
            self.stdout.write(f"{model._meta.label}: {count} rows re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"{total} rows re-encrypted under the first key"))

    def _rotate(self, model, encrypted: list[str], derived: list, tokens: list[str], size: int) -> int:
        fields = [*encrypted, *(f.attname for f in derived), *tokens]
        last_pk, count = None, 0
        while True:
            with transaction.atomic():
                qs = model._base_manager.order_by("pk").only("pk", *encrypted, *tokens)
                if last_pk is not None:
                    qs = qs.filter(pk__gt=last_pk)
                try:
                    # Loading decrypts with any configured key; saving encrypts with the first.
                    rows = list(qs.select_for_update()[:size])
                except SecretUnreadable as exc:
                    raise CommandError(
                        f"{model._meta.label}: {exc} (is the old key still configured?)"
                    ) from None
                if not rows:
                    return count
                for row in rows:
                    for field in derived:
                        field.pre_save(row, False)  # the keyed hash / last four, recomputed
                    for name in tokens:
                        value = getattr(row, name)
                        if value:
                            try:
                                setattr(row, name, reencrypt(value))
                            except SecretUnreadable as exc:
                                raise CommandError(f"{model._meta.label} {row.pk}: {exc}") from None
                model._base_manager.bulk_update(rows, fields)
                count += len(rows)
                last_pk = rows[-1].pk
