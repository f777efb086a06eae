"""Session lifetime (idle and absolute) and the second-factor gate in front of every page."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.translation import gettext as _
from django_otp import user_has_device

from merchants.accounts.policy import is_verified, two_factor_required

SIGNED_IN_AT_SESSION_KEY = "paydesk_signed_in_at"
LAST_SEEN_SESSION_KEY = "paydesk_last_seen"
# Seconds between two writes of "last seen", so that a busy page does not save its session on every request.
LAST_SEEN_RESOLUTION = 30

# Paths an authenticated but not yet verified user may reach: signing in and out, the second
# factor itself, password reset and invitations, the API (authenticated by keys, not sessions),
# gateway callbacks, health and static files.
OPEN_PREFIXES = (
    "/accounts/login/",
    "/accounts/logout/",
    "/accounts/two-factor/verify/",
    "/accounts/two-factor/setup/",
    "/accounts/password-reset/",
    "/accounts/reset/",
    "/accounts/invitations/",
    "/admin/login/",
    "/admin/logout/",
    "/api/",
    "/callbacks/",
    "/healthz",
    "/static/",
    "/sandbox/",
)


class SessionLifetimeMiddleware:
    """Sign out a session idle for PAYDESK_SESSION_IDLE_MINUTES or older than PAYDESK_SESSION_MAX_HOURS."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            session = request.session
            signed_in_at = session.get(SIGNED_IN_AT_SESSION_KEY)
            last_seen = session.get(LAST_SEEN_SESSION_KEY)
            if signed_in_at is None:
                # A session from before this rule (or a test's force_login): it starts now.
                session[SIGNED_IN_AT_SESSION_KEY] = signed_in_at = now
            idle = last_seen is not None and now - last_seen > settings.PAYDESK_SESSION_IDLE_MINUTES * 60
            expired = now - signed_in_at > settings.PAYDESK_SESSION_MAX_HOURS * 3600
            if idle or expired:
                logout(request)
                messages.info(
                    request,
                    _("You were signed out after a period of inactivity.")
                    if idle
                    else _("Your session has ended: please sign in again."),
                )
                return HttpResponseRedirect(
                    resolve_url(settings.LOGIN_URL) + "?" + urlencode({"next": request.get_full_path()})
                )
            if last_seen is None or now - last_seen >= LAST_SEEN_RESOLUTION:
                session[LAST_SEEN_SESSION_KEY] = now
        return self.get_response(request)


class TwoFactorRequiredMiddleware:
    """Send a signed-in user to the second-factor step until their session has passed it.

    A user with a confirmed device verifies it after the password; a user who
    must have one (policy.two_factor_required) and has none enrols first.
    Dashboard and admin alike.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(OPEN_PREFIXES)
            and not is_verified(request)
        ):
            back = urlencode({"next": request.get_full_path()})
            if user_has_device(user):
                return HttpResponseRedirect(reverse("accounts:two_factor_verify") + "?" + back)
            if two_factor_required(user):
                return HttpResponseRedirect(reverse("accounts:two_factor_setup") + "?" + back)
        return self.get_response(request)
