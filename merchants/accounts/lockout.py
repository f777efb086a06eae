"""The page django-axes shows once sign-in is locked: 429, "try again in N minutes", audited."""

from __future__ import annotations

import math

from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from merchants.audit import audit_record
from merchants.ratelimit import client_ip_or_none


def minutes_left(request: HttpRequest, username: str) -> int:
    """Whole minutes until the newest failure for this username or address has cooled off."""
    cool_off = get_cool_off(request)
    ip = client_ip_or_none(request)
    match = Q(username=username) if username else Q(pk__in=[])
    if ip:
        match |= Q(ip_address=ip)
    last = AccessAttempt.objects.filter(match).aggregate(last=Max("attempt_time"))["last"]
    if cool_off is None or last is None:
        return math.ceil(cool_off.total_seconds() / 60) if cool_off else 0
    return max(1, math.ceil((last + cool_off - timezone.now()).total_seconds() / 60))


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    username = get_client_username(request, credentials) or ""
    audit_record(
        action="auth.locked_out", object_type="auth.user", after={"username": username[:150]}, request=request
    )
    return render(
        request, "registration/locked_out.html", {"minutes": minutes_left(request, username)}, status=429
    )
