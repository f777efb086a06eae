"""Bulk encryption (batch ingestion) makes standard Fernet tokens, each with its own IV."""

import base64
import time

from cryptography.fernet import Fernet

from merchants.crypto import encrypt_many, field_hash, field_hashes

VALUES = [
    "GB29NWBK60161331926819",
    "",
    "x" * 16,
    "x" * 15,
    "李雷 +86 138 0013 8000",
    "a",
    "GB29NWBK60161331926819",
]


def test_every_bulk_token_is_a_fernet_token_of_its_value(settings):
    key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = f"{key},{Fernet.generate_key().decode()}"
    tokens = encrypt_many(VALUES)
    fernet = Fernet(key)  # the library's own implementation, first key only
    assert [fernet.decrypt(t.encode(), ttl=60).decode() if t else "" for t in tokens] == VALUES
    assert tokens[1] == ""
    assert abs(fernet.extract_timestamp(tokens[0].encode()) - time.time()) < 60


def test_bulk_tokens_have_distinct_ivs_even_for_equal_values(settings):
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    tokens = [t for t in encrypt_many(["same"] * 200 + ["other"] * 200) if t]
    ivs = {base64.urlsafe_b64decode(t)[9:25] for t in tokens}
    assert len(ivs) == len(tokens) == 400
    assert len(set(tokens)) == 400


def test_bulk_hashes_equal_the_single_hash():
    assert field_hashes(["gb29 nwbk 6016 1331 9268 19", "", "X1"]) == [
        field_hash("GB29NWBK60161331926819"),
        "",
        field_hash("X1"),
    ]


def test_bulk_decryption_opens_tokens_of_every_key_and_refuses_tampering(settings):
    import pytest

    from merchants.crypto import SecretUnreadable, decrypt_many, encrypt

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = old
    under_old = encrypt("from the old key")
    settings.FIELD_ENCRYPTION_KEY = f"{new},{old}"
    tokens = encrypt_many(VALUES)
    single = Fernet(new).encrypt(b"by Fernet itself").decode()
    assert decrypt_many([*tokens, under_old, single]) == [*VALUES, "from the old key", "by Fernet itself"]
    raw = bytearray(base64.urlsafe_b64decode(tokens[0]))
    raw[30] ^= 1
    with pytest.raises(SecretUnreadable):
        decrypt_many([base64.urlsafe_b64encode(bytes(raw)).decode()])
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    with pytest.raises(SecretUnreadable):
        decrypt_many(tokens[:1])
