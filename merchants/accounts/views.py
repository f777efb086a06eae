"""Account pages: the second factor (set up, verify, recovery codes, remove) and the security overview."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_otp import user_has_device

from merchants.accounts import services
from merchants.accounts.forms import CodeForm, SetupForm
from merchants.accounts.policy import (
    is_verified,
    mark_verified,
    safe_next,
    step_up_required,
    two_factor_required,
    verified_required,
)

RECOVERY_CODES_SESSION_KEY = "paydesk_new_recovery_codes"


@login_required
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: scan the QR code (or type the key), confirm with a code."""
    next_url = safe_next(request, request.GET.get("next") or request.POST.get("next"))
    if user_has_device(request.user) and not is_verified(request):
        # Replacing an app needs the current one first.
        return redirect(_with_next("accounts:two_factor_verify", request.get_full_path()))
    device = services.totp_setup_start(user=request.user)
    form = SetupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = services.totp_setup_confirm(device=device, token=form.cleaned_data["code"], request=request)
        if codes is not None:
            mark_verified(request, device)
            request.session[RECOVERY_CODES_SESSION_KEY] = codes
            messages.success(request, _("Two-factor sign-in is on."))
            return redirect(_with_next("accounts:recovery_codes", next_url))
        form.add_error(
            "code", _("That code is not right: check the time on your phone and try the next one.")
        )
    return render(
        request,
        "accounts/two_factor_setup.html",
        {
            "form": form,
            "qr_svg": services.totp_qr_svg(device),
            "secret": _b32(device),
            "next": next_url,
            "required": two_factor_required(request.user),
        },
    )


def _with_next(name: str, next_url: str) -> str:
    return reverse(name) + "?" + urlencode({"next": next_url})


def _b32(device) -> str:
    raw = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


@login_required
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """The second step of signing in, and the step-up before a sensitive action."""
    next_url = safe_next(request, request.GET.get("next") or request.POST.get("next"))
    if not user_has_device(request.user):
        return redirect(_with_next("accounts:two_factor_setup", next_url))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = services.second_factor_verify(
            user=request.user, token=form.cleaned_data["code"], request=request
        )
        if device is not None:
            mark_verified(request, device)
            return HttpResponseRedirect(next_url)
        form.add_error("code", _("That code is not right, or was used already."))
    return render(
        request,
        "accounts/two_factor_verify.html",
        {
            "form": form,
            "next": next_url,
            "step_up": request.GET.get("step_up") == "1" or is_verified(request),
        },
    )


@verified_required
def security(request: HttpRequest) -> HttpResponse:
    """The user's security page: second factor, recovery codes left, password."""
    return render(
        request,
        "accounts/security.html",
        {
            "has_device": user_has_device(request.user),
            "required": two_factor_required(request.user),
            "codes_left": services.recovery_codes_left(request.user),
            "step_up_minutes": settings.PAYDESK_STEP_UP_SECONDS // 60,
        },
    )


@verified_required
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """Show freshly made recovery codes once; a POST (with a fresh second factor) makes new ones."""
    if request.method == "POST":
        return _regenerate(request)
    codes = request.session.pop(RECOVERY_CODES_SESSION_KEY, None)
    if codes is None:
        return redirect("accounts:security")
    next_url = safe_next(request, request.GET.get("next"))
    return render(request, "accounts/recovery_codes.html", {"codes": codes, "next": next_url})


@step_up_required
def _regenerate(request: HttpRequest) -> HttpResponse:
    request.session[RECOVERY_CODES_SESSION_KEY] = services.recovery_codes_regenerate(
        user=request.user, request=request
    )
    return redirect("accounts:recovery_codes")


@require_POST
@verified_required
@step_up_required
def two_factor_remove(request: HttpRequest) -> HttpResponse:
    services.two_factor_remove(user=request.user, request=request)
    messages.success(request, _("Two-factor sign-in is off."))
    return redirect("accounts:security")
