"""API keys from the dashboard: issue and revoke, each written to the audit log."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from merchants.audit import audit_record
from merchants.models import ApiKey, Merchant
from merchants.services import api_key_create


def api_key_issue(
    *, merchant: Merchant, name: str, scopes: list[str], user, request=None
) -> tuple[ApiKey, str]:
    """Create a key (ValueError for unknown or no scopes); return it and its secret, shown once."""
    with transaction.atomic():
        key, raw = api_key_create(merchant=merchant, scopes=scopes, name=name[:100], created_by=user)
        audit_record(
            action="api_key.created",
            user=user,
            merchant=merchant,
            obj=key,
            after={"name": key.name, "scopes": key.scopes, "prefix": key.prefix},
            request=request,
        )
    return key, raw


def api_key_revoke(*, key: ApiKey, user, request=None) -> ApiKey:
    """Revoke a key at once (the API reads it on every request); revoking twice changes nothing."""
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().get(pk=key.pk)
        if locked.revoked_at is not None:
            return locked
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit_record(
            action="api_key.revoked",
            user=user,
            merchant=locked.merchant,
            obj=locked,
            before={"revoked_at": None},
            after={"revoked_at": locked.revoked_at.isoformat()},
            request=request,
        )
    return locked
