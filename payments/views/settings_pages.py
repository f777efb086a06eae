"""Settings by role: API keys and the team (owners manage, other members see)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from merchants.api_keys import api_key_issue, api_key_revoke
from merchants.models import ApiKey, Membership
from merchants.team import TeamChangeRefused, membership_remove, membership_set_role
from payments.views.dashboard import merchant_required


def _is_owner(request: HttpRequest) -> bool:
    return request.membership is not None and request.membership.role == Membership.Role.OWNER


@merchant_required
def api_key_list(request: HttpRequest) -> HttpResponse:
    """List keys (owners only: a key acts for the whole merchant); create one, shown once."""
    if not _is_owner(request):
        return HttpResponseForbidden(_("Only an owner can manage API keys."))
    created = None
    if request.method == "POST":
        scopes = [s for s in request.POST.getlist("scopes") if s in ApiKey.Scope.values]
        try:
            key, raw = api_key_issue(
                merchant=request.merchant,
                name=request.POST.get("name", "").strip(),
                scopes=scopes,
                user=request.user,
                request=request,
            )
        except ValueError:
            messages.error(request, _("Choose at least one scope."))
        else:
            created = {"key": key, "secret": raw}
    keys = (
        ApiKey.objects.filter(merchant=request.merchant)
        .select_related("created_by")
        .order_by("revoked_at", "-created_at")
    )
    response = render(
        request,
        "settings/api_keys.html",
        {"keys": keys, "created": created, "scopes": ApiKey.Scope.choices},
    )
    if created:
        response["Cache-Control"] = "no-store"  # the secret is on this page once
    return response


@require_POST
@merchant_required
def api_key_revoke_view(request: HttpRequest, public_id: str) -> HttpResponse:
    if not _is_owner(request):
        return HttpResponseForbidden(_("Only an owner can manage API keys."))
    key = get_object_or_404(ApiKey, merchant=request.merchant, public_id=public_id)
    api_key_revoke(key=key, user=request.user, request=request)
    messages.success(request, _("API key %(name)s revoked.") % {"name": key.name or key.prefix})
    return redirect("dashboard:api_key_list")


@merchant_required
def team(request: HttpRequest) -> HttpResponse:
    members = (
        Membership.objects.filter(merchant=request.merchant).select_related("user").order_by("user__email")
    )
    owner = _is_owner(request)
    if request.method == "POST":
        if not owner:
            return HttpResponseForbidden(_("Only an owner can change the team."))
        member = get_object_or_404(members, user__username=request.POST.get("member", ""))
        try:
            if request.POST.get("action") == "remove":
                membership_remove(membership=member, user=request.user, request=request)
                messages.success(request, _("%(who)s removed.") % {"who": member.user.get_username()})
            else:
                membership_set_role(
                    membership=member, role=request.POST.get("role", ""), user=request.user, request=request
                )
                messages.success(request, _("%(who)s's role changed.") % {"who": member.user.get_username()})
        except TeamChangeRefused as exc:
            messages.error(request, str(exc))
        return redirect("dashboard:team")
    return render(
        request, "settings/team.html", {"members": members, "owner": owner, "roles": Membership.Role.choices}
    )
