"""The form that enters a merchant's gateway credentials: secrets are write-only.

A stored private key or secret is never rendered again; leaving its field
blank keeps it, typing a new value replaces it. Provider public keys are
added (or replaced) one per submission under their key id, and removed by
ticking them.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from merchants.crypto import load_private_key, load_public_key
from merchants.models import GatewayAccount

ALIPAY_KEY_ID = "alipay"


def masked(value: str) -> str:
    """Describe a stored secret without revealing any of it."""
    return str(_("•••••••• (set)")) if value else str(_("not set"))


class GatewayAccountForm(forms.ModelForm):
    new_private_key = forms.CharField(
        label=_("private key"),
        required=False,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text=_("PEM or base64. Write-only: leave blank to keep the stored key."),
    )
    new_secret = forms.CharField(
        label=_("secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("WeChat Pay APIv3 key or PayPal client secret. Write-only: leave blank to keep it."),
    )
    public_key_id = forms.CharField(
        label=_("public key id"),
        required=False,
        max_length=128,
        help_text=_("WeChat Pay: the platform certificate serial or public key id. Alipay: leave blank."),
    )
    public_key = forms.CharField(
        label=_("add public key"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Provider public key or certificate (PEM or base64) to add or replace."),
    )
    remove_public_keys = forms.MultipleChoiceField(
        label=_("remove public keys"), required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = GatewayAccount
        fields = [
            "merchant",
            "gateway",
            "environment",
            "enabled",
            "app_id",
            "mch_id",
            "key_serial",
            "webhook_id",
            "app_certificate",
            "root_certificate",
            "transfer_scene_id",
            "transfer_scene_report_infos",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        keys = sorted((self.instance.public_keys or {}).keys()) if self.instance.pk else []
        self.fields["remove_public_keys"].choices = [(k, k) for k in keys]

    def clean_transfer_scene_report_infos(self) -> list:
        """A list of {"info_type", "info_content"} objects (WeChat Pay's transfer scene report)."""
        value = self.cleaned_data.get("transfer_scene_report_infos") or []
        if not isinstance(value, list) or not all(
            isinstance(item, dict) and set(item) == {"info_type", "info_content"} for item in value
        ):
            raise forms.ValidationError(_('Give a list of {"info_type": ..., "info_content": ...} objects.'))
        return value

    def clean_new_private_key(self) -> str:
        value = self.cleaned_data["new_private_key"]
        if value:
            try:
                load_private_key(value)
            except ValueError:
                raise forms.ValidationError(_("Not a readable RSA private key.")) from None
        return value

    def clean_public_key(self) -> str:
        value = self.cleaned_data["public_key"]
        if value:
            try:
                load_public_key(value)
            except ValueError:
                raise forms.ValidationError(_("Not a readable RSA public key or certificate.")) from None
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        gateway = cleaned.get("gateway")
        secret = cleaned.get("new_secret", "")
        if gateway == GatewayAccount.Gateway.WECHAT_PAY and secret and len(secret.encode()) != 32:
            self.add_error("new_secret", _("The WeChat Pay APIv3 key is 32 characters long."))
        key_id = cleaned.get("public_key_id", "")
        if cleaned.get("public_key") and not key_id:
            if gateway == GatewayAccount.Gateway.WECHAT_PAY:
                self.add_error("public_key_id", _("WeChat Pay keys are selected by their serial: enter it."))
            key_id = ALIPAY_KEY_ID
        cleaned["public_key_id"] = key_id
        if not self.errors:
            account = self._apply(self.instance, cleaned)
            missing = account.missing_fields() if cleaned.get("enabled") else []
            if missing:
                raise forms.ValidationError(
                    _("An enabled %(gateway)s account needs: %(fields)s.")
                    % {"gateway": account.get_gateway_display(), "fields": ", ".join(missing)}
                )
        return cleaned

    def _apply(self, account: GatewayAccount, cleaned: dict) -> GatewayAccount:
        for name in self._meta.fields:
            if name in cleaned:
                setattr(account, name, cleaned[name])
        if cleaned.get("new_private_key"):
            account.private_key = cleaned["new_private_key"]
        if cleaned.get("new_secret"):
            account.secret = cleaned["new_secret"]
        keys = dict(account.public_keys or {})
        for key_id in cleaned.get("remove_public_keys") or []:
            keys.pop(key_id, None)
        if cleaned.get("public_key"):
            keys[cleaned["public_key_id"]] = cleaned["public_key"].strip()
        account.public_keys = keys
        return account
