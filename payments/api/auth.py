"""API key authentication for the REST API: `Authorization: Bearer <key>`.

Keys look like `pdk_<12 hex prefix>_<secret>`. The prefix finds the row (unique
index), the SHA-256 of the whole key is compared in constant time, and only
the hash is stored. A key is accepted in the Authorization header only: a key
in the query string ends up in logs and browser history, so it is refused.
"""

from __future__ import annotations

import math
import re

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.settings import api_settings

from merchants.models import ApiKey, hash_api_key
from merchants.ratelimit import client_address, parse_rate, rate_hit
from payments.selectors import api_key_for_prefix

LAST_USED_RESOLUTION_SECONDS = 60
PREFIX_RE = re.compile(r"[0-9a-f]{12}")
# Query parameters that look like an attempt to pass credentials in the URL.
QUERY_KEY_NAMES = frozenset({"api_key", "apikey", "api-key", "key", "access_token", "token"})
# Compared against when no key has the given prefix, so unknown and wrong keys take the same time.
_DUMMY_HASH = hash_api_key("pdk_000000000000_unknown")


def parse_bearer(header: str) -> str | None:
    """Return the key of an `Authorization: Bearer <key>` header, or None if it is not of that form."""
    scheme, _sep, raw = header.partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw or " " in raw:
        return None
    return raw


def api_key_lookup(raw: str) -> ApiKey | None:
    """Return the active key whose prefix and hash match `raw`, or None."""
    parts = raw.split("_", 2)
    prefix = parts[1] if len(parts) == 3 and parts[0] == "pdk" else ""
    key = None
    if PREFIX_RE.fullmatch(prefix):
        key = api_key_for_prefix(prefix)
    if key is None:
        # Keep the work constant whether or not the prefix exists.
        ApiKey(key_hash=_DUMMY_HASH).matches(raw)
        return None
    if not key.matches(raw) or not key.is_active:
        return None
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Find the key by its prefix, compare its hash in constant time; revoked or unknown is 401."""

    keyword = "Bearer"

    def authenticate(self, request):
        for name, values in request.query_params.lists():
            if name.lower() in QUERY_KEY_NAMES or any(v.startswith("pdk_") for v in values):
                raise exceptions.AuthenticationFailed(
                    _("API keys are accepted only in the Authorization header, never in the URL."),
                    code="key_in_query",
                )
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        raw = parse_bearer(header)
        if raw is None:
            raise exceptions.AuthenticationFailed(
                _("Use the header 'Authorization: Bearer <api key>'."), code="invalid_authorization"
            )
        key = api_key_lookup(raw)
        if key is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."), code="invalid_api_key")
        if key.merchant.status != "active":
            raise exceptions.AuthenticationFailed(_("This merchant is suspended."), code="merchant_suspended")
        now = timezone.now()
        if (
            key.last_used_at is None
            or (now - key.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS
        ):
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        request.merchant = key.merchant
        return (None, key)

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class HasApiKeyScope(permissions.BasePermission):
    """Reads need `read`; unsafe methods need `write`, or the scope the view names in `required_scope`.

    `required_scope` may be a string or a dict from HTTP method to scope
    (e.g. `{"POST": "approve"}`); methods not in the dict use the default.
    """

    message = _("This API key lacks the scope this request needs.")
    code = "insufficient_scope"

    def has_permission(self, request, view):
        key = request.auth
        if not isinstance(key, ApiKey):
            raise exceptions.NotAuthenticated(
                _("Authenticate with the header 'Authorization: Bearer <api key>'.")
            )
        return key.has_scope(required_scope(request.method, view))


def required_scope(method: str, view) -> str:
    default = "read" if method in permissions.SAFE_METHODS else "write"
    declared = getattr(view, "required_scope", None)
    if isinstance(declared, dict):
        return declared.get(method, default)
    return declared or default


class ApiKeyRateThrottle(throttling.BaseThrottle):
    """A fixed-window request counter per API key (per client address when unauthenticated).

    Counted by merchants/ratelimit.py (one atomic cache increment per request).
    The rate comes from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["api_key"],
    e.g. "6000/min".
    """

    scope = "api_key"

    def __init__(self) -> None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        self.num_requests, self.duration = parse_rate(rate)
        self.retry_after: float | None = None

    def ident_for(self, request) -> str:
        key = request.auth
        if isinstance(key, ApiKey):
            return f"key:{key.prefix}"
        return f"addr:{client_address(request)}"

    def allow_request(self, request, view) -> bool:
        if self.num_requests is None:
            return True
        hit = rate_hit(self.scope, self.ident_for(request), self.num_requests, self.duration)
        self.retry_after = hit.wait
        return hit.wait is None

    def wait(self) -> float | None:
        if self.retry_after is None:
            return None
        return max(1, math.ceil(self.retry_after))
