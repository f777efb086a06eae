"""Admin decisions: one permission per state-changing action, a reason for each decision, audited.

`DecisionAdminMixin` on a ModelAdmin:
- an action listed in `decision_permissions` (action name -> "app_label.codename")
  is offered only to staff holding that permission, and posting it without the
  permission answers 403 (Django alone would just ignore the unknown action);
- `self.decide(request, queryset, ...)` first shows a page asking for one
  reason for the selected objects, then calls the service for each and writes
  an audit entry (who, when, reason, outcome);
- actions named in `step_up_actions` need a second factor from the last five
  minutes (merchants.accounts.policy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import models
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from merchants.accounts.policy import step_up_redirect
from merchants.audit import audit_record


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        min_length=3,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=gettext_lazy(
            "Recorded in the audit log with your name; one reason for every selected item."
        ),
    )


class DecisionAdminMixin:
    decision_permissions: dict[str, str] = {}
    step_up_actions: tuple[str, ...] = ()

    def get_actions(self, request):
        actions = super().get_actions(request)
        for name, perm in self.decision_permissions.items():
            if name in actions and not request.user.has_perm(perm):
                del actions[name]
        return actions

    def changelist_view(self, request, extra_context=None):
        name = request.POST.get("action") if request.method == "POST" else None
        perm = self.decision_permissions.get(name or "")
        if perm and not request.user.has_perm(perm):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def decide(
        self,
        request,
        queryset: models.QuerySet,
        *,
        action: str,
        title: str,
        audit_action: str,
        apply: Callable[[Any, str], Any],
        errors: tuple[type[Exception], ...] = (),
    ):
        """Ask for a reason, then `apply(obj, reason)` to each object and audit it; return the response.

        With an empty `audit_action` the service called by `apply` writes the audit entry itself.
        """
        if action in self.step_up_actions:
            refused = step_up_redirect(request)
            if refused is not None:
                return refused
        form = ReasonForm(request.POST if "reason" in request.POST else None)
        if not form.is_bound or not form.is_valid():
            return TemplateResponse(
                request,
                "admin/decision_reason.html",
                {
                    **self.admin_site.each_context(request),
                    "title": title,
                    "opts": self.model._meta,
                    "queryset": queryset,
                    "form": form,
                    "action": action,
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "select_across": request.POST.get("select_across", "0"),
                },
            )
        reason = form.cleaned_data["reason"]
        done = 0
        for obj in queryset:
            try:
                result = apply(obj, reason)
            except errors as exc:
                self.message_user(request, f"{obj}: {exc}", messages.WARNING)
                continue
            done += 1
            after = {"reason": reason}
            status = getattr(result if result is not None else obj, "status", None)
            if status is not None:
                after["status"] = status
            if not audit_action:
                continue  # the service audits itself
            audit_record(
                action=audit_action,
                user=request.user,
                merchant=getattr(obj, "merchant", None),
                obj=obj,
                after=after,
                request=request,
            )
        self.message_user(request, _("%(n)d item(s): %(title)s.") % {"n": done, "title": title})
        return None
