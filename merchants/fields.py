"""A text field encrypted at rest with Fernet (keys from settings.FIELD_ENCRYPTION_KEY).

The database holds only the Fernet token; Python code sees a `Secret`, a
str whose repr is masked so it does not leak into logs, tracebacks or the
debug page by accident.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldError
from django.db import models

from merchants.crypto import decrypt, encrypt, field_hash, last4


class Secret(str):
    """A decrypted credential: behaves as a str, prints masked in reprs."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('********')" if self else "Secret('')"


class EncryptedTextField(models.TextField):
    """Store a string as a Fernet token; an empty value stays empty (nothing to hide).

    Lookups other than isnull/exact-empty are meaningless on it (every write
    makes a new token). Reading a token no configured key opens raises
    merchants.crypto.SecretUnreadable.
    """

    description = "Text encrypted at rest"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Secret | None:
        if value is None:
            return None
        if value == "":
            return Secret("")
        return Secret(decrypt(value))

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, Secret):
            return value
        return Secret(str(value))

    def get_lookup(self, lookup_name: str):
        # Every write makes a new token, so `=` against a value silently finds nothing: refuse it
        # (search an account by its keyed hash instead; merchants/crypto.py field_hash).
        if lookup_name != "isnull":
            raise FieldError(f"{self.name} is encrypted at rest; it cannot be filtered with {lookup_name!r}.")
        return super().get_lookup(lookup_name)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))


class DerivedAccountField(models.CharField):
    """A value derived from another field of the row when it is written: its keyed hash or last four.

    Computed in `pre_save`, so save(), bulk_create and payments/db.py's inserts all keep it in step
    with the source field; batch ingestion's COPY computes it in bulk (merchants/crypto.py).
    """

    KINDS = ("hash", "last4")

    def __init__(self, *args: Any, source: str = "", kind: str = "hash", **kwargs: Any) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}")
        self.source, self.kind = source, kind
        kwargs.setdefault("max_length", 64 if kind == "hash" else 4)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"], kwargs["kind"] = self.source, self.kind
        return name, path, args, kwargs

    def pre_save(self, model_instance: models.Model, add: bool) -> str:
        value = getattr(model_instance, self.source) or ""
        derived = field_hash(value) if self.kind == "hash" else last4(value)
        setattr(model_instance, self.attname, derived)
        return derived
