"""Owners' pages: the team (invitations, roles), API keys, and the merchant's audit log."""

from __future__ import annotations

import csv
import functools
from datetime import datetime, time
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.password_validation import validate_password
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django_otp import user_has_device

from merchants.accounts import team
from merchants.accounts.policy import is_verified, step_up_required
from merchants.audit import audit_record
from merchants.models import ApiKey, AuditEntry, Membership
from merchants.services import api_key_create, api_key_revoke

NEW_KEY_SESSION_KEY = "paydesk_new_api_key"


def owner_required(view):
    """Only an owner of the current merchant (anyone else: 403)."""

    @login_required
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        membership = getattr(request, "membership", None)
        if membership is None or membership.role != Membership.Role.OWNER:
            return render(request, "accounts/owners_only.html", status=403)
        return view(request, *args, **kwargs)

    return wrapped


class InviteForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("E-mail"))
    role = forms.ChoiceField(
        label=gettext_lazy("Role"), choices=Membership.Role.choices, initial=Membership.Role.OPERATOR
    )


@owner_required
def team_page(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team.invitation_create(
                merchant=request.merchant,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
                accept_url=lambda raw: request.build_absolute_uri(
                    reverse("accounts:invitation_accept", args=[raw])
                ),
                request=request,
            )
        except team.TeamError as exc:
            form.add_error("email", str(exc))
        else:
            messages.success(request, _("Invitation sent."))
            return redirect("accounts:team")
    members = (
        Membership.objects.filter(merchant=request.merchant).select_related("user").order_by("user__username")
    )
    invitations = request.merchant.invitations.filter(
        accepted_at=None, revoked_at=None, expires_at__gt=timezone.now()
    )
    return render(
        request,
        "accounts/team.html",
        {
            "form": form,
            "members": members,
            "invitations": invitations,
            "roles": Membership.Role.choices,
            "invitation_hours": settings.PAYDESK_INVITATION_HOURS,
        },
    )


@require_POST
@owner_required
def team_member(request: HttpRequest, user_id: int) -> HttpResponse:
    membership = get_object_or_404(Membership, merchant=request.merchant, user_id=user_id)
    try:
        if request.POST.get("remove"):
            team.membership_remove(membership=membership, by=request.user, request=request)
            messages.success(request, _("Member removed."))
        else:
            team.membership_set_role(
                membership=membership, role=request.POST.get("role", ""), by=request.user, request=request
            )
            messages.success(request, _("Role changed."))
    except team.TeamError as exc:
        messages.error(request, str(exc))
    return redirect("accounts:team")


class JoinForm(forms.Form):
    password1 = forms.CharField(label=gettext_lazy("Choose a password"), widget=forms.PasswordInput)
    password2 = forms.CharField(label=gettext_lazy("The same password again"), widget=forms.PasswordInput)

    def clean(self):
        data = super().clean()
        if data.get("password1") != data.get("password2"):
            raise forms.ValidationError(_("The two passwords differ."))
        if data.get("password1"):
            validate_password(data["password1"])
        return data


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Open an invitation link: join with the signed-in account, or create the invited one."""
    invitation = team.invitation_open(token)
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=410)
    if request.user.is_authenticated and user_has_device(request.user) and not is_verified(request):
        return redirect(reverse("accounts:two_factor_verify") + "?" + urlencode({"next": request.path}))
    form = JoinForm(request.POST or None) if not request.user.is_authenticated else None
    if request.method == "POST":
        try:
            if request.user.is_authenticated:
                team.invitation_accept(raw=token, user=request.user, request=request)
            elif form.is_valid():
                membership = team.invitation_accept(
                    raw=token, password=form.cleaned_data["password1"], request=request
                )
                login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            else:
                return render(
                    request, "accounts/invitation_accept.html", {"invitation": invitation, "form": form}
                )
        except team.TeamError as exc:
            messages.error(request, str(exc))
            return redirect("login")
        messages.success(request, _("Welcome to %(merchant)s.") % {"merchant": invitation.merchant.name})
        return redirect("dashboard:payment_list")
    return render(request, "accounts/invitation_accept.html", {"invitation": invitation, "form": form})


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("Scopes"), choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple
    )


@owner_required
def api_keys(request: HttpRequest) -> HttpResponse:
    """List the keys (last-used time, status); create one (step-up), revoke one."""
    keys = (
        ApiKey.objects.filter(merchant=request.merchant)
        .select_related("created_by")
        .order_by("revoked_at", "-created_at")
    )
    new_key = request.session.pop(NEW_KEY_SESSION_KEY, None)
    response = render(
        request,
        "accounts/api_keys.html",
        {"keys": keys, "new_key": new_key, "scopes": ApiKey.Scope.choices},
    )
    if new_key:
        response["Cache-Control"] = "no-store"  # the secret is on this page once
    return response


@require_POST
@owner_required
@step_up_required
def api_key_new(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the key a name and choose at least one scope."))
        return redirect("accounts:api_keys")
    _key, raw = api_key_create(
        merchant=request.merchant,
        scopes=form.cleaned_data["scopes"],
        name=form.cleaned_data["name"],
        created_by=request.user,
        request=request,
    )
    # Shown once on the next page, then gone (never stored in the clear).
    request.session[NEW_KEY_SESSION_KEY] = raw
    return redirect("accounts:api_keys")


@require_POST
@owner_required
def api_key_revoke_view(request: HttpRequest, public_id: str) -> HttpResponse:
    key = get_object_or_404(ApiKey, merchant=request.merchant, public_id=public_id)
    api_key_revoke(key=key, user=request.user, reason=request.POST.get("reason", ""), request=request)
    messages.success(request, _("Key revoked."))
    return redirect("accounts:api_keys")


def _merchant_entries(request: HttpRequest):
    """The merchant's own entries, and its members' account events (sign-in, second factor: no merchant)."""
    members = Membership.objects.filter(merchant=request.merchant).values("user_id")
    return AuditEntry.objects.filter(Q(merchant=request.merchant) | Q(merchant=None, actor_user__in=members))


def _audit_entries(request: HttpRequest):
    entries = _merchant_entries(request).select_related("actor_user")
    filters = {k: request.GET.get(k, "").strip() for k in ("action", "actor", "since", "until")}
    if filters["action"]:
        entries = entries.filter(action__startswith=filters["action"])
    if filters["actor"]:
        entries = entries.filter(actor_user__username__icontains=filters["actor"])
    for name, lookup, at in (("since", "created_at__gte", time.min), ("until", "created_at__lte", time.max)):
        try:
            day = datetime.strptime(filters[name], "%Y-%m-%d").date() if filters[name] else None
        except ValueError:
            day = None
        if day is not None:
            entries = entries.filter(**{lookup: timezone.make_aware(datetime.combine(day, at))})
    return entries.order_by("-created_at", "-id"), filters


@owner_required
def audit_log(request: HttpRequest) -> HttpResponse:
    """The merchant's audit log, newest first, with filters; read-only."""
    entries, filters = _audit_entries(request)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    actions = _merchant_entries(request).order_by().values_list("action", flat=True).distinct()
    return render(
        request,
        "accounts/audit_log.html",
        {"page": page, "filters": filters, "actions": sorted(set(actions)), "query": request.GET.urlencode()},
    )


class _Echo:
    def write(self, value):
        return value


@owner_required
def audit_log_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered audit log as CSV (the export itself is audited)."""
    entries, filters = _audit_entries(request)
    audit_record(action="audit_log.exported", merchant=request.merchant, after=filters, request=request)
    writer = csv.writer(_Echo())
    header = [
        "when",
        "actor",
        "user",
        "action",
        "object_type",
        "object_id",
        "before",
        "after",
        "ip",
        "user_agent",
    ]

    def rows():
        yield writer.writerow(header + ["request_id"])
        for e in entries.iterator(chunk_size=500):
            yield writer.writerow(
                [
                    e.created_at.isoformat(),
                    e.actor,
                    e.actor_user.get_username() if e.actor_user else "",
                    e.action,
                    e.object_type,
                    e.object_id,
                    e.before,
                    e.after,
                    e.ip or "",
                    e.user_agent,
                    e.request_id,
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{request.merchant.slug}.csv"'
    return response
