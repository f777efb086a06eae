"""Encryption at rest for webhook signing secrets (Fernet, keyed by settings.FIELD_ENCRYPTION_KEY).

FIELD_ENCRYPTION_KEY holds one or more Fernet keys separated by commas; the
first encrypts, every one decrypts, so keys can be rotated. While DEBUG is on
and no key is configured, settings derive one from SECRET_KEY.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with the configured keys."""


def _keys() -> list[bytes]:
    raw = getattr(settings, "FIELD_ENCRYPTION_KEY", "") or ""
    keys = [k.strip().encode() for k in str(raw).split(",") if k.strip()]
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be set.")
    return keys


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in _keys()])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Return the plaintext; raise SecretUnreadable if no configured key opens it."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY") from None
