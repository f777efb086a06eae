"""The admin's form for funding accounts: the same checks as the dashboard and the command."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from merchants.models import FundingAccount
from merchants.services import FundingAccountInvalid, funding_account_clean


class FundingAccountAdminForm(forms.ModelForm):
    class Meta:
        model = FundingAccount
        fields = [
            "merchant",
            "name",
            "currency",
            "iban",
            "account_number",
            "bic",
            "bank_code",
            "is_default",
            "enabled",
        ]

    def clean(self) -> dict:
        cleaned = super().clean()
        try:
            clean = funding_account_clean(
                name=cleaned.get("name", ""),
                currency=cleaned.get("currency", ""),
                iban=cleaned.get("iban", ""),
                account_number=cleaned.get("account_number", ""),
                bic=cleaned.get("bic", ""),
                bank_code=cleaned.get("bank_code", ""),
            )
        except FundingAccountInvalid as exc:
            for field, message in exc.errors.items():
                self.add_error(field if field in self.fields else None, message)
            return cleaned
        cleaned.update(clean)
        merchant = cleaned.get("merchant")
        if cleaned.get("is_default") and merchant is not None:
            others = FundingAccount.objects.filter(
                merchant=merchant, currency=clean["currency"], is_default=True
            )
            if self.instance.pk:
                others = others.exclude(pk=self.instance.pk)
            if others.exists():
                self.add_error("is_default", _("Another account is already the default of this currency."))
        return cleaned
