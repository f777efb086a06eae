"""Secrets at rest (Fernet, keyed by settings.FIELD_ENCRYPTION_KEY) and the RSA keys gateways sign with.

FIELD_ENCRYPTION_KEY holds one or more Fernet keys separated by commas; the
first encrypts, every one decrypts, so keys can be rotated. While DEBUG is on
and no key is configured, settings derive one from SECRET_KEY.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import time
from functools import lru_cache
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with the configured keys."""


def _keys() -> list[bytes]:
    raw = getattr(settings, "FIELD_ENCRYPTION_KEY", "") or ""
    keys = [k.strip().encode() for k in str(raw).split(",") if k.strip()]
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be set.")
    return keys


@lru_cache(maxsize=4)
def _fernet_for(raw: str) -> MultiFernet:
    keys = [k.strip().encode() for k in raw.split(",") if k.strip()]
    return MultiFernet([Fernet(k) for k in keys])


def _fernet() -> MultiFernet:
    # Built once per key list (a payment page decrypts dozens of values; batches 10^5), and
    # rebuilt when the setting changes (tests, rotation).
    _keys()
    return _fernet_for(str(settings.FIELD_ENCRYPTION_KEY))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def encrypt_many(values: list[str]) -> list[str]:
    """Encrypt many values under the first key: the Fernet tokens `encrypt` would make, made in bulk.

    Empty stays empty, as EncryptedTextField stores it. Batch ingestion encrypts 10^5 accounts at
    a time, and Fernet's per-call set-up (a cipher, a padder and an HMAC object per value) was
    most of its cost. Here one AES-CBC pass covers the block: each value is preceded in the stream
    by a fresh random block, whose ciphertext is that value's IV (CBC's chaining makes the value's
    blocks decrypt with it), so every token has its own unpredictable IV, as Fernet requires; the
    HMAC-SHA256 is computed per token from one keyed state. Every token is a standard Fernet token
    that `decrypt` (and any Fernet implementation) opens; tests/merchants/test_crypto_bulk.py
    checks so.
    """
    present = [i for i, v in enumerate(values) if v]
    if not present:
        return list(values)
    key = base64.urlsafe_b64decode(_keys()[0])
    signing_key, encryption_key = key[:16], key[16:]
    randoms = os.urandom(16 * len(present))
    stream, sizes = [], []
    for n, i in enumerate(present):
        data = values[i].encode()
        pad = 16 - len(data) % 16
        stream.append(randoms[16 * n : 16 * n + 16])
        stream.append(data + bytes([pad]) * pad)
        sizes.append(len(data) + pad)
    encryptor = Cipher(algorithms.AES(encryption_key), modes.CBC(os.urandom(16))).encryptor()
    ciphertext = encryptor.update(b"".join(stream)) + encryptor.finalize()
    header = b"\x80" + struct.pack(">Q", int(time.time()))
    mac = hmac.new(signing_key, digestmod=hashlib.sha256)
    out = list(values)
    pos = 0
    for i, size in zip(present, sizes, strict=True):
        body = header + ciphertext[pos : pos + 16 + size]  # IV, then the value's blocks
        pos += 16 + size
        h = mac.copy()
        h.update(body)
        out[i] = base64.urlsafe_b64encode(body + h.digest()).decode()
    return out


def decrypt_many(tokens: list[str]) -> list[str]:
    """`decrypt` of many tokens (bank files of 10^5 transfers); raise SecretUnreadable like it.

    Tokens under the first key are checked (HMAC, from one keyed state) and then deciphered in
    one AES-CBC pass: each token's IV is placed before its blocks, so CBC's chaining deciphers them
    and only the IV blocks' own output is dropped. Tokens under an older key go through `decrypt`.
    """
    key = base64.urlsafe_b64decode(_keys()[0])
    mac = hmac.new(key[:16], digestmod=hashlib.sha256)
    out: list[str] = list(tokens)
    bulk: list[tuple[int, bytes]] = []  # (index, IV + ciphertext)
    for i, token in enumerate(tokens):
        if not token:
            continue
        try:
            raw = base64.urlsafe_b64decode(token)
        except ValueError:
            raw = b""
        body, signature = raw[:-32], raw[-32:]
        h = mac.copy()
        h.update(body)
        if (
            len(raw) < 73
            or raw[0] != 0x80
            or (len(raw) - 57) % 16
            or not hmac.compare_digest(h.digest(), signature)
        ):
            out[i] = decrypt(token)  # another key, or unreadable (raises)
            continue
        bulk.append((i, body[9:]))
    if bulk:
        decryptor = Cipher(algorithms.AES(key[16:]), modes.CBC(bytes(16))).decryptor()
        plain = decryptor.update(b"".join(chunk for _, chunk in bulk)) + decryptor.finalize()
        pos = 0
        for i, chunk in bulk:
            data = plain[pos + 16 : pos + len(chunk)]
            pos += len(chunk)
            pad = data[-1] if data else 0
            if not 1 <= pad <= 16 or data[-pad:] != bytes([pad]) * pad:
                raise SecretUnreadable("stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY")
            out[i] = data[:-pad].decode()
    return out


def decrypt(token: str) -> str:
    """Return the plaintext; raise SecretUnreadable if no configured key opens it."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY") from None


def reencrypt(token: str) -> str:
    """The same plaintext under the first key (MultiFernet.rotate); raise SecretUnreadable."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY") from None


# Searchable and showable forms of personal data ---------------------------------------------

MASK = "\u2022\u2022\u2022\u2022"  # ••••


@lru_cache(maxsize=4)
def _hasher(key: str):
    return hmac.new(key.encode(), digestmod=hashlib.sha256)


def field_hashes(values: list[str]) -> list[str]:
    """`field_hash` of many values (batch ingestion): one keyed state, copied per value."""
    mac = _hasher(str(settings.FIELD_HASH_KEY))
    out = []
    for value in values:
        if value:
            h = mac.copy()
            h.update("".join(value.split()).upper().encode())
            out.append(h.hexdigest())
        else:
            out.append("")
    return out


def field_hash(value: str) -> str:
    """The keyed hash (HMAC-SHA256, key FIELD_HASH_KEY) of a normalised value, for exact search.

    Normalised as account numbers are compared by people: spaces dropped, letters in capitals,
    so `gb29 nwbk ...` finds `GB29NWBK...`. Empty stays empty.
    """
    if not value:
        return ""
    h = _hasher(str(settings.FIELD_HASH_KEY)).copy()
    h.update(normalise_account(value).encode())
    return h.hexdigest()


def normalise_account(value: str) -> str:
    return "".join(str(value).split()).upper()


def last4(value: str) -> str:
    """The last four characters shown in place of a full account number."""
    return normalise_account(value)[-4:] if value else ""


def masked(last_four: str) -> str:
    """`•••• 1234`: how an account number is shown wherever the full value is not needed."""
    return f"{MASK} {last_four}" if last_four else ""


def masked_email(email: str) -> str:
    """`a••••@example.com`: the first character and the domain, enough to recognise it."""
    if not email:
        return ""
    local, _, domain = str(email).rpartition("@")
    return f"{local[:1]}{MASK}@{domain}" if local else MASK


def masked_phone(phone: str) -> str:
    """`•••• 5678`: the last four digits of a phone number."""
    digits = "".join(c for c in str(phone or "") if c.isdigit())
    return masked(digits[-4:]) if digits else ""


# RSA keys of gateway accounts (PEM or bare base64 DER) ------------------------------------


def _pem_or_der(text: str) -> tuple[bool, bytes]:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return True, text.encode()
    try:
        return False, base64.b64decode("".join(text.split()), validate=True)
    except ValueError:
        raise ValueError("not PEM and not base64") from None


@lru_cache(maxsize=64)
def load_private_key(text: str) -> RSAPrivateKey:
    """Parse an RSA private key given as PEM (PKCS#1 or PKCS#8) or bare base64 DER; raise ValueError."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    is_pem, data = _pem_or_der(text)
    loader = serialization.load_pem_private_key if is_pem else serialization.load_der_private_key
    try:
        key = loader(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"unreadable private key: {exc}") from None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


@lru_cache(maxsize=256)
def load_public_key(text: str) -> RSAPublicKey:
    """Parse an RSA public key (PEM, bare base64 SubjectPublicKeyInfo, or an X.509 certificate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    is_pem, data = _pem_or_der(text)
    try:
        if is_pem and b"CERTIFICATE" in data.split(b"\n", 1)[0]:
            key = x509.load_pem_x509_certificate(data).public_key()
        elif is_pem:
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_der_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"unreadable public key: {exc}") from None
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def rsa_sha256_sign(private_key_text: str, message: bytes) -> str:
    """Return the base64 SHA256withRSA (PKCS#1 v1.5) signature of `message`."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signature = load_private_key(private_key_text).sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def rsa_sha256_verify(public_key_text: str, message: bytes, signature_b64: str) -> bool:
    """Return whether `signature_b64` is a valid SHA256withRSA signature of `message`."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        signature = base64.b64decode(signature_b64, validate=True)
        load_public_key(public_key_text).verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def rsa_oaep_encrypt(public_key_text: str, plaintext: str) -> str:
    """Encrypt `plaintext` for the holder of the key (RSA-OAEP, SHA-1 as WeChat Pay asks); base64."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    ciphertext = load_public_key(public_key_text).encrypt(
        plaintext.encode(),
        padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None),  # noqa: S303
    )
    return base64.b64encode(ciphertext).decode()


# Signature algorithms whose root certificates count in Alipay's alipay_root_cert_sn.
_ALIPAY_ROOT_ALGORITHMS = ("1.2.840.113549.1.1.5", "1.2.840.113549.1.1.11")  # sha1/sha256 with RSA


def _certificates(pem_text: str) -> list:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(pem_text.strip().encode())
    except ValueError as exc:
        raise ValueError(f"unreadable certificate: {exc}") from None


def _cert_sn(certificate) -> str:
    # Alipay's SN: MD5 of the issuer's distinguished name as Java prints it (RFC 2253 order,
    # "CN=...,OU=...,O=...,C=...") followed by the decimal serial number.
    issuer = certificate.issuer.rfc4514_string()
    return hashlib.md5((issuer + str(certificate.serial_number)).encode(), usedforsecurity=False).hexdigest()


def alipay_cert_sn(pem_text: str) -> str:
    """The SN Alipay gives a public-key certificate (app_cert_sn, alipay_cert_sn); raise ValueError."""
    return _cert_sn(_certificates(pem_text)[0])


def alipay_root_cert_sn(pem_text: str) -> str:
    """alipay_root_cert_sn: the SNs of the RSA root certificates of Alipay's chain, joined by `_`."""
    return "_".join(
        _cert_sn(c)
        for c in _certificates(pem_text)
        if c.signature_algorithm_oid.dotted_string in _ALIPAY_ROOT_ALGORITHMS
    )
