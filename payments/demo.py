"""The demo merchant's logins and API key, shared by `seed_demo` (which creates them) and `run_demo`."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

from merchants.models import Membership

DEMO_SLUG = "demo"
# Only while DEBUG: with DEBUG off, seed_demo gives each new login a random password.
DEMO_PASSWORD = "paydesk-demo"  # noqa: S105 - printed for the local demo only
ADMIN_USERNAME = "admin"
USERS = [
    ("owner@demo.paydesk.local", Membership.Role.OWNER),
    ("operator@demo.paydesk.local", Membership.Role.OPERATOR),
    ("approver@demo.paydesk.local", Membership.Role.APPROVER),
]


def demo_api_key() -> tuple[str, str]:
    """Derive the demo key from SECRET_KEY so that running the seed twice prints the same key."""
    digest = hmac.new(settings.SECRET_KEY.encode(), b"paydesk-demo-key", hashlib.sha256).hexdigest()
    prefix = digest[:12]
    return f"pdk_{prefix}_{digest[12:56]}", prefix
