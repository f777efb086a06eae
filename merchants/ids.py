"""Prefixed random public ids (`pay_...`): integer keys never leave the server."""

import os
import secrets
import string

from django.db import models

ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 24


def new_public_id(prefix: str) -> str:
    """Return `<prefix>_` followed by 24 random base62 characters (~143 bits)."""
    return prefix + "_" + "".join(secrets.choice(ALPHABET) for _ in range(ID_LENGTH))


# Bytes 0..247 map evenly onto the 62 characters (4 each); 248..255 are dropped.
_ACCEPTED = 248
_ID_TABLE = bytes(ord(ALPHABET[b % len(ALPHABET)]) if b < _ACCEPTED else 0 for b in range(256))
_ID_DROP = bytes(range(_ACCEPTED, 256))


def new_public_ids(prefix: str, n: int) -> list[str]:
    """Return `n` public ids like merchants.ids.new_public_id, from one read of the OS's randomness.

    Same alphabet, length and uniform distribution (rejection sampling), but
    ~30x cheaper than one `secrets.choice` per character when minting a
    million ids for a batch.
    """
    need = n * ID_LENGTH
    pool = bytearray()
    while len(pool) < need:
        pool += os.urandom(need - len(pool) + 64).translate(_ID_TABLE, _ID_DROP)
    text = pool[:need].decode("ascii")
    head = prefix + "_"
    return [head + text[i : i + ID_LENGTH] for i in range(0, need, ID_LENGTH)]


class PublicIdField(models.CharField):
    """A unique, indexed, generated public id carrying its type prefix."""

    def __init__(self, *args, prefix: str = "", **kwargs):
        self.prefix = prefix
        kwargs.setdefault("max_length", 40)
        kwargs.setdefault("unique", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        # Field.deconstruct omits Django's own defaults (unique=False, editable=True); ours differ,
        # so a value equal to our default is dropped and any other is written out.
        current = {"max_length": self.max_length, "unique": self._unique, "editable": self.editable}
        for key, default in (("max_length", 40), ("unique", True), ("editable", False)):
            if current[key] == default:
                kwargs.pop(key, None)
            else:
                kwargs[key] = current[key]
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        if not value:
            value = new_public_id(self.prefix)
            setattr(model_instance, self.attname, value)
        return value
