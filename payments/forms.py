from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Layout, Row, Submit
from django import forms
from django.utils.translation import gettext_lazy as _

from payments.models import Method

COMMON_CURRENCIES = ["USD", "EUR", "GBP", "CNY", "JPY", "HKD", "SGD", "KWD"]


class PaymentForm(forms.Form):
    """Collects a real-time payment; the service validates money and limits."""

    reference = forms.CharField(label=_("Reference"), max_length=140)
    amount = forms.CharField(
        label=_("Amount"), max_length=32, widget=forms.TextInput(attrs={"inputmode": "decimal"})
    )
    currency = forms.ChoiceField(label=_("Currency"))
    method = forms.ChoiceField(label=_("Method"), choices=Method.choices)
    beneficiary_name = forms.CharField(label=_("Beneficiary name"), max_length=140)
    beneficiary_account = forms.CharField(label=_("Beneficiary account"), max_length=64)
    beneficiary_email = forms.EmailField(label=_("Beneficiary email"), required=False)
    beneficiary_phone = forms.CharField(label=_("Beneficiary phone"), max_length=32, required=False)
    description = forms.CharField(
        label=_("Description"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, merchant=None, **kwargs):
        super().__init__(*args, **kwargs)
        currencies = (merchant.allowed_currencies if merchant else None) or COMMON_CURRENCIES
        self.fields["currency"].choices = [(c, c) for c in currencies]
        self.helper = FormHelper()
        self.helper.layout = Layout(
            Row(Column("reference", css_class="col-md-6"), Column("method", css_class="col-md-6")),
            Row(Column("amount", css_class="col-md-8"), Column("currency", css_class="col-md-4")),
            Row(
                Column("beneficiary_name", css_class="col-md-6"),
                Column("beneficiary_account", css_class="col-md-6"),
            ),
            Row(
                Column("beneficiary_email", css_class="col-md-6"),
                Column("beneficiary_phone", css_class="col-md-6"),
            ),
            "description",
            Submit("review", _("Review payment"), css_class="btn-primary"),
        )


class RefundForm(forms.Form):
    amount = forms.CharField(
        label=_("Amount"),
        max_length=32,
        required=False,
        help_text=_("Leave empty to refund everything still refundable."),
    )
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)
