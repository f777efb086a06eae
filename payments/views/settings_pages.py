"""Settings pages: the merchant profile (owners, step-up) and each member's own notification settings.

Views parse input, call one service, render (payments/services/merchant_profile.py,
merchants/services.py membership_notifications_set).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from merchants.accounts.policy import step_up_redirect
from merchants.models import NOTIFICATION_DEFAULTS, Membership, NotificationTopic
from merchants.services import membership_notifications_set
from payments.services.merchant_profile import (
    AMOUNT_FIELDS,
    MerchantProfileInvalid,
    merchant_profile_initial,
    merchant_profile_update,
)
from payments.views.dashboard import merchant_required

OFF = gettext_lazy("0 turns it off.")


def _amount(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=32,
        help_text=help_text,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )


def _count(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=9,
        help_text=help_text,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )


class MerchantProfileForm(forms.Form):
    """The fields and labels of the profile page; the service checks the values."""

    base_currency = forms.CharField(
        label=gettext_lazy("Base currency"),
        max_length=3,
        help_text=gettext_lazy("ISO 4217 code. The amounts below are in this currency."),
    )
    allowed_currencies = forms.CharField(
        label=gettext_lazy("Allowed currencies"),
        required=False,
        max_length=400,
        help_text=gettext_lazy("ISO 4217 codes separated by spaces; empty allows every currency."),
    )
    per_payment_limit = _amount(
        gettext_lazy("Per-payment limit"),
        gettext_lazy(
            "No single payment may be larger. Applies as the same number of "
            "minor units in every currency; 0 turns it off."
        ),
    )
    batch_approval_threshold = _amount(
        gettext_lazy("Batch approval threshold"),
        gettext_lazy(
            "Batches above this total in any currency need a member with the approver role. 0 turns it off."
        ),
    )
    four_eyes = forms.BooleanField(
        label=gettext_lazy("Four-eyes rule"),
        required=False,
        help_text=gettext_lazy("Batches must be approved by someone other than the uploader."),
    )
    first_payment_cap = _amount(
        gettext_lazy("First payment cap"),
        gettext_lazy(
            "A payment above this to a beneficiary never paid before is held for review. 0 turns it off."
        ),
    )
    daily_cap = _amount(
        gettext_lazy("Daily volume cap"),
        gettext_lazy("Payments that would take today's volume above this are held. 0 turns it off."),
    )
    monthly_cap = _amount(
        gettext_lazy("Monthly volume cap"),
        gettext_lazy("Payments that would take this month's volume above this are held. 0 turns it off."),
    )
    velocity_per_beneficiary_hour = _count(
        gettext_lazy("Payments per beneficiary per hour"),
        gettext_lazy("More payments than this to one account within an hour are held. 0 turns it off."),
    )
    velocity_per_minute = _count(
        gettext_lazy("Real-time payments per minute"),
        gettext_lazy("More real-time payments than this within a minute are held. 0 turns it off."),
    )
    risk_threshold = forms.CharField(
        label=gettext_lazy("Risk hold threshold"),
        max_length=8,
        help_text=gettext_lazy("Payments whose risk probability is above this (0 to 1) are held for review."),
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    require_two_factor = forms.BooleanField(
        label=gettext_lazy("Require two-factor sign-in for everyone"),
        required=False,
        help_text=gettext_lazy(
            "Owners, approvers and staff always need a second factor; this asks it of every member."
        ),
    )
    full_beneficiary_data = forms.BooleanField(
        label=gettext_lazy("Full beneficiary data in the API and webhooks"),
        required=False,
        help_text=gettext_lazy(
            "Full account numbers, e-mails and phone numbers instead of the masked form (•••• 1234)."
        ),
    )

    SECTIONS = (
        (gettext_lazy("Currencies"), ("base_currency", "allowed_currencies")),
        (gettext_lazy("Limits and approval"), ("per_payment_limit", "batch_approval_threshold", "four_eyes")),
        (
            gettext_lazy("Risk controls"),
            (
                "first_payment_cap",
                "daily_cap",
                "monthly_cap",
                "velocity_per_beneficiary_hour",
                "velocity_per_minute",
                "risk_threshold",
            ),
        ),
        (gettext_lazy("Security and privacy"), ("require_two_factor", "full_beneficiary_data")),
    )

    def sections(self):
        return [(title, [self[name] for name in names]) for title, names in self.SECTIONS]


def _owner(request: HttpRequest) -> bool:
    return request.membership is not None and request.membership.role == Membership.Role.OWNER


@merchant_required
def merchant_profile(request: HttpRequest) -> HttpResponse:
    """The merchant's limits and rules: owners only; a change needs a fresh second factor."""
    if not _owner(request):
        return render(request, "accounts/owners_only.html", status=403)
    form = MerchantProfileForm(
        request.POST or None, initial=merchant_profile_initial(merchant=request.merchant)
    )
    if request.method == "POST":
        refused = step_up_redirect(request)
        if refused is not None:
            return refused
        if form.is_valid():
            try:
                changed = merchant_profile_update(
                    merchant=request.merchant, data=form.cleaned_data, user=request.user, request=request
                )
            except MerchantProfileInvalid as exc:
                for field, message in exc.errors.items():
                    form.add_error(field if field in form.fields else None, message)
            else:
                if changed:
                    messages.success(request, _("Merchant profile saved."))
                else:
                    messages.info(request, _("Nothing changed."))
                return redirect("dashboard:merchant_profile")
    return render(
        request, "settings/merchant_profile.html", {"form": form, "amount_fields": list(AMOUNT_FIELDS)}
    )


@merchant_required
def my_notifications(request: HttpRequest) -> HttpResponse:
    """The signed-in member's own choice, per topic: in-app notice and/or e-mail."""
    membership = request.membership
    channels = tuple(NOTIFICATION_DEFAULTS)
    if request.method == "POST":
        choices = {
            topic: {channel: request.POST.get(f"{topic}-{channel}") == "on" for channel in channels}
            for topic in NotificationTopic.values
        }
        membership_notifications_set(membership=membership, choices=choices)
        messages.success(request, _("Your notification settings are saved."))
        return redirect("dashboard:my_notifications")
    topics = [
        (topic, label, {channel: membership.wants(topic, channel) for channel in channels})
        for topic, label in NotificationTopic.choices
    ]
    return render(
        request,
        "settings/my_notifications.html",
        {"topics": topics, "email": request.user.email},
    )
