"""The audit log: an append-only record of every sensitive action (who, what, before/after, from where).

`audit_record` is the one way to write an entry. Secret values never reach the
log: any before/after field whose name says it holds a secret is masked, and
callers pass account numbers already masked.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.db import models

from merchants.models import AuditEntry, Merchant
from merchants.ratelimit import client_ip_or_none

# Field names whose values are never written to the log, only that they changed.
SECRET_WORDS = ("secret", "password", "private_key", "api_v3_key", "token", "key_hash", "otp", "recovery")
MASK = "********"


def _masked(values: dict[str, Any] | None) -> dict[str, Any]:
    if not values:
        return {}
    return {
        name: (MASK if value not in (None, "") else value)
        if any(word in name.lower() for word in SECRET_WORDS)
        else _plain(value)
        for name, value in values.items()
    }


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a field's value (model instances by their public id or primary key)."""
    if isinstance(value, models.Model):
        return getattr(value, "public_id", None) or value.pk
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# The request being served, so that an entry written deep in a service still gets its address,
# user agent and request id (set by AuditRequestMiddleware).
current_request: ContextVar = ContextVar("paydesk_audit_request", default=None)


class AuditRequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)


def client_address(request) -> str | None:
    """The client's address: REMOTE_ADDR, or the trusted proxy's header (merchants.ratelimit)."""
    if request is None:
        return None
    return client_ip_or_none(request)


def audit_record(
    *,
    action: str,
    user=None,
    api_key=None,
    merchant: Merchant | None = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    request=None,
) -> AuditEntry:
    """Append one entry. `action` is a dotted verb (`api_key.created`); `obj` the thing acted on.

    The actor is the user, else the API key, else the request's signed-in
    user, else "system". Client address, user agent and request id come from
    `request`, or else from the request being served (AuditRequestMiddleware).
    """
    if request is None:
        request = current_request.get()
    if user is None and request is not None and getattr(request, "user", None) is not None:
        user = request.user if request.user.is_authenticated else None
    if api_key is not None:
        actor = f"api_key:{api_key.public_id}"
    elif user is not None:
        actor = f"user:{user.pk}"
    else:
        actor = "system"
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(getattr(obj, "public_id", None) or obj.pk)
    meta = request.META if request is not None else {}
    return AuditEntry.objects.create(
        actor=actor,
        actor_user=user,
        merchant=merchant,
        action=action[:64],
        object_type=object_type[:64],
        object_id=object_id[:64],
        before=_masked(before),
        after=_masked(after),
        ip=client_address(request),
        user_agent=str(meta.get("HTTP_USER_AGENT", ""))[:300],
        request_id=str(getattr(request, "request_id", "") or meta.get("HTTP_X_REQUEST_ID", ""))[:64],
    )
