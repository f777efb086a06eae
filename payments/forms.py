from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Layout, Row, Submit
from django import forms
from django.utils.translation import gettext_lazy as _

from payments.models import Method
from payments.validation import TEXT

COMMON_CURRENCIES = ["USD", "EUR", "GBP", "CNY", "JPY", "HKD", "SGD", "KWD"]


def _text(label, name: str, widget=None, **kwargs) -> forms.CharField:
    """A text input of the payment form: the browser gets the limit, the rules are the specification's."""
    spec = TEXT[name]
    attrs = {"maxlength": spec.max_length}
    if spec.required:
        attrs["required"] = True
    widget = widget or forms.TextInput
    return forms.CharField(label=label, required=False, widget=widget(attrs=attrs), **kwargs)


class PaymentForm(forms.Form):
    """Collects a real-time payment as strings; payments.validation judges them (via the service).

    The form checks nothing itself, so the dashboard gives the same verdict
    and the same error codes as the API and a batch row; the view shows the
    service's errors on their fields.
    """

    reference = _text(_("Reference"), "reference")
    amount = forms.CharField(
        label=_("Amount"),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "maxlength": 32, "required": True}),
    )
    currency = forms.CharField(label=_("Currency"), required=False, widget=forms.Select)
    method = forms.CharField(label=_("Method"), required=False, widget=forms.Select(choices=Method.choices))
    beneficiary_name = _text(_("Beneficiary name"), "beneficiary_name")
    beneficiary_account = _text(_("Beneficiary account"), "beneficiary_account")
    beneficiary_email = _text(_("Beneficiary email"), "beneficiary_email", widget=forms.EmailInput)
    beneficiary_phone = _text(_("Beneficiary phone"), "beneficiary_phone")
    description = _text(_("Description"), "description", widget=forms.Textarea)

    def __init__(self, *args, merchant=None, **kwargs):
        super().__init__(*args, **kwargs)
        currencies = (merchant.allowed_currencies if merchant else None) or COMMON_CURRENCIES
        self.fields["currency"].widget.choices = [(c, c) for c in currencies]
        self.fields["description"].widget.attrs["rows"] = 2
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
