"""Who must use a second factor, and the step-up rule for sensitive actions.

A user must verify a second factor (django-otp) at sign-in when they have a
confirmed device; they must enrol one when they are staff, hold the owner or
approver role anywhere, or belong to a merchant that requires it of everyone.

Step-up: approving a batch, releasing a held payment, revealing a full
account number, creating an API key, saving the merchant profile and
changing gateway credentials need a
second factor verified within settings.PAYDESK_STEP_UP_SECONDS (5 minutes).
Use `step_up_required` on a view, or `step_up_redirect(request)` inside one
(an admin action): it returns None when the last verification is fresh, else
the redirect to the verification page that brings the user back.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django_otp import DEVICE_ID_SESSION_KEY, user_has_device
from django_otp import login as otp_login

from merchants.models import Membership

# Unix time of the last second-factor verification in this session.
VERIFIED_AT_SESSION_KEY = "paydesk_otp_verified_at"
STRONG_ROLES = (Membership.Role.OWNER, Membership.Role.APPROVER)


def two_factor_required(user) -> bool:
    """Whether `user` may use PayDesk only after enrolling a second factor."""
    if not user.is_authenticated:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return (
        Membership.objects.filter(user=user).filter(role__in=STRONG_ROLES).exists()
        or Membership.objects.filter(user=user, merchant__require_two_factor=True).exists()
    )


def is_verified(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and getattr(user, "is_verified", lambda: False)())


def mark_verified(request: HttpRequest, device) -> None:
    """Record a successful second factor: the session is verified and fresh for step-up."""
    otp_login(request, device)
    request.session[VERIFIED_AT_SESSION_KEY] = time.time()


def step_up_fresh(request: HttpRequest) -> bool:
    """Whether this session verified a second factor within PAYDESK_STEP_UP_SECONDS."""
    if not is_verified(request):
        return False
    verified_at = request.session.get(VERIFIED_AT_SESSION_KEY)
    return verified_at is not None and time.time() - float(verified_at) <= settings.PAYDESK_STEP_UP_SECONDS


def safe_next(request: HttpRequest, candidate: str | None, default: str = "") -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default or resolve_url(settings.LOGIN_REDIRECT_URL)


def step_up_redirect(request: HttpRequest) -> HttpResponse | None:
    """None when the second factor is fresh; else a redirect to verify it (or to enrol one).

    After a POST the user comes back to the page they posted from (the form is
    not replayed: they confirm the action again); after a GET, to the same URL.
    """
    if step_up_fresh(request):
        return None
    if request.method == "GET":
        back = request.get_full_path()
    else:
        back = safe_next(request, request.META.get("HTTP_REFERER"))
    if not user_has_device(request.user):
        messages.info(request, _("This action needs a second factor: set one up first."))
        return HttpResponseRedirect(reverse("accounts:two_factor_setup") + "?" + urlencode({"next": back}))
    messages.info(
        request,
        _("Confirm it is you: enter a code from your authenticator app, then repeat the action."),
    )
    return HttpResponseRedirect(
        reverse("accounts:two_factor_verify") + "?" + urlencode({"next": back, "step_up": "1"})
    )


def step_up_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate a view that needs a second factor verified within the last five minutes."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        refused = step_up_redirect(request)
        if refused is not None:
            return refused
        return view(request, *args, **kwargs)

    return wrapped


def verified_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate a view for signed-in users whose session passed its second factor, if they have one."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return HttpResponseRedirect(
                resolve_url(settings.LOGIN_URL) + "?" + urlencode({"next": request.path})
            )
        if user_has_device(request.user) and not is_verified(request):
            return HttpResponseRedirect(
                reverse("accounts:two_factor_verify") + "?" + urlencode({"next": request.get_full_path()})
            )
        return view(request, *args, **kwargs)

    return wrapped


__all__ = [
    "DEVICE_ID_SESSION_KEY",
    "VERIFIED_AT_SESSION_KEY",
    "is_verified",
    "mark_verified",
    "step_up_fresh",
    "step_up_redirect",
    "step_up_required",
    "two_factor_required",
    "verified_required",
]
