"""Merchant, membership and API key use cases."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import slugify

from merchants.models import ApiKey, Membership, Merchant

VALID_SCOPES = {s.value for s in ApiKey.Scope}


def merchant_create(*, name: str, owner_email: str, slug: str = "") -> Merchant:
    """Create a merchant and make the user with `owner_email` (created if new) its owner."""
    base = slugify(slug or name)[:70] or "merchant"
    candidate, n = base, 1
    while Merchant.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    User = get_user_model()
    with transaction.atomic():
        merchant = Merchant.objects.create(name=name, slug=candidate)
        user = User.objects.filter(email__iexact=owner_email).first()
        if user is None:
            user = User.objects.create_user(username=owner_email, email=owner_email)
        Membership.objects.create(user=user, merchant=merchant, role=Membership.Role.OWNER)
    return merchant


def api_key_create(
    *, merchant: Merchant, scopes: list[str], name: str = "", created_by=None
) -> tuple[ApiKey, str]:
    """Create an API key; return it and the raw secret, which is never retrievable again."""
    unknown = set(scopes) - VALID_SCOPES
    if unknown or not scopes:
        raise ValueError(f"Scopes must be among {sorted(VALID_SCOPES)}; got {sorted(scopes)}")
    raw, prefix, key_hash = ApiKey.generate()
    key = ApiKey.objects.create(
        merchant=merchant,
        name=name,
        prefix=prefix,
        key_hash=key_hash,
        scopes=sorted(set(scopes)),
        created_by=created_by,
    )
    return key, raw
