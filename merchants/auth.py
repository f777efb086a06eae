"""API key authentication for the REST API: `Authorization: Bearer <key>`."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling

from merchants.models import ApiKey

LAST_USED_RESOLUTION_SECONDS = 60


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Find the key by its prefix, compare its hash in constant time; revoked or unknown is 401."""

    keyword = "Bearer"

    def authenticate(self, request):
        if "api_key" in request.query_params or "key" in request.query_params:
            raise exceptions.AuthenticationFailed(
                "API keys are accepted only in the Authorization header.", code="key_in_query"
            )
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme != self.keyword or not raw.strip():
            raise exceptions.AuthenticationFailed(
                "Use the header 'Authorization: Bearer <api key>'.", code="invalid_authorization"
            )
        raw = raw.strip()
        parts = raw.split("_")
        prefix = parts[1] if len(parts) >= 3 and parts[0] == "pdk" else ""
        key = ApiKey.objects.select_related("merchant").filter(prefix=prefix).first() if prefix else None
        if key is None or not key.matches(raw) or not key.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.", code="invalid_api_key")
        if key.merchant.status != "active":
            raise exceptions.AuthenticationFailed("This merchant is suspended.", code="merchant_suspended")
        now = timezone.now()
        if (
            key.last_used_at is None
            or (now - key.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS
        ):
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        request.merchant = key.merchant
        return (None, key)

    def authenticate_header(self, request):
        return self.keyword


class HasApiKeyScope(permissions.BasePermission):
    """Reads need `read`; unsafe methods need `write` (or the scope a view names)."""

    message = "This API key lacks the scope this request needs."

    def has_permission(self, request, view):
        key = request.auth
        if not isinstance(key, ApiKey):
            raise exceptions.NotAuthenticated()
        scope = getattr(view, "required_scope", None)
        if scope is None:
            scope = "read" if request.method in permissions.SAFE_METHODS else "write"
        return key.has_scope(scope)


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    scope = "api_key"

    def get_cache_key(self, request, view):
        key = request.auth
        if isinstance(key, ApiKey):
            return self.cache_format % {"scope": self.scope, "ident": key.prefix}
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
