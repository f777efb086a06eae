"""The payments list's filters: one form, shared by the list page and its CSV export."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.models import Method, PaymentStatus
from payments.validation import amount_parse


class PaymentFilterForm(forms.Form):
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    status = forms.MultipleChoiceField(
        label=_("Status"), required=False, choices=PaymentStatus.choices, widget=forms.CheckboxSelectMultiple
    )
    method = forms.ChoiceField(
        label=_("Method"), required=False, choices=[("", _("Any method")), *Method.choices]
    )
    currency = forms.CharField(label=_("Currency"), required=False, max_length=3)
    amount_min = forms.CharField(label=_("Amount from"), required=False, max_length=32)
    amount_max = forms.CharField(label=_("Amount to"), required=False, max_length=32)
    beneficiary = forms.CharField(label=_("Beneficiary name"), required=False, max_length=140)
    reference = forms.CharField(label=_("Reference"), required=False, max_length=140)
    # Exact, through the keyed hash (the account is encrypted; docs/privacy.md): no partial matches.
    account = forms.CharField(label=_("Exact account"), required=False, max_length=64)
    batch = forms.CharField(label=_("Batch"), required=False, max_length=40)
    unapproved = forms.BooleanField(label=_("Include payments of batches awaiting approval"), required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if name in ("status", "unapproved"):
                field.widget.attrs["class"] = "form-check-input"
            elif name == "method":
                field.widget.attrs["class"] = "form-select"
            else:
                field.widget.attrs["class"] = "form-control"
        self.fields["amount_min"].widget.attrs["inputmode"] = "decimal"
        self.fields["amount_max"].widget.attrs["inputmode"] = "decimal"

    def clean_currency(self) -> str:
        return self.cleaned_data["currency"].strip().upper()

    def clean(self) -> dict:
        data = super().clean()
        currency = data.get("currency") or ""
        for name in ("amount_min", "amount_max"):
            raw = (data.get(name) or "").strip()
            data[name + "_minor"] = None
            if not raw:
                continue
            if not currency:
                self.add_error(name, _("Choose a currency to filter by amount."))
                continue
            minor, problem = amount_parse(raw, currency)
            if minor is None:
                self.add_error(name, problem)
            data[name + "_minor"] = minor
        return data

    def filters(self) -> dict:
        """The selector's filters (payments.selectors.payment_list) of a valid form; {} if invalid."""
        if not self.is_valid():
            return {"hide_unapproved_batches": True}
        d = self.cleaned_data
        tz = timezone.get_current_timezone()
        out = {
            "status": d["status"],
            "method": d["method"],
            "currency": d["currency"],
            "reference": d["reference"].strip(),
            "account": d["account"].strip(),
            "beneficiary": d["beneficiary"].strip(),
            "batch": d["batch"].strip(),
            "amount_min_minor": d.get("amount_min_minor"),
            "amount_max_minor": d.get("amount_max_minor"),
            # A batch's own list shows its payments whatever the batch's state.
            "hide_unapproved_batches": not d["unapproved"] and not d["batch"].strip(),
        }
        if d["date_from"]:
            out["created_gte"] = datetime.combine(d["date_from"], time.min, tzinfo=tz)
        if d["date_to"]:
            out["created_lt"] = datetime.combine(d["date_to"] + timedelta(days=1), time.min, tzinfo=tz)
        return out
