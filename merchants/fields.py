"""A text field encrypted at rest with Fernet (keys from settings.FIELD_ENCRYPTION_KEY).

The database holds only the Fernet token; Python code sees a `Secret`, a
str whose repr is masked so it does not leak into logs, tracebacks or the
debug page by accident.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from merchants.crypto import decrypt, encrypt


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

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))
