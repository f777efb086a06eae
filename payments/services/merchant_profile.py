"""The merchant profile: an owner changes the merchant's limits and rules, all at once and audited.

Amounts come in as decimal strings in the major unit of the merchant's base
currency ("2500.00" EUR) and are stored as integer minor units; "0" or an
empty field turns a limit off. This module sits in payments (not merchants)
because it converts money with payments/money.py, which merchants may not
import (DESIGN section 2).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from merchants.audit import audit_record
from merchants.models import Merchant
from payments.money import MoneyError, format_minor, normalize_currency, parse_amount

# Form field -> model field, for the amounts (minor units of the base currency; 0 = off).
AMOUNT_FIELDS = {
    "per_payment_limit": "per_payment_limit_minor",
    "batch_approval_threshold": "batch_approval_threshold_minor",
    "first_payment_cap": "first_payment_cap_minor",
    "daily_cap": "daily_cap_minor",
    "monthly_cap": "monthly_cap_minor",
}
COUNT_FIELDS = ("velocity_per_beneficiary_hour", "velocity_per_minute")
FLAG_FIELDS = ("four_eyes", "require_two_factor", "full_beneficiary_data")
PROFILE_FIELDS = (
    "base_currency",
    "allowed_currencies",
    "risk_threshold",
    *AMOUNT_FIELDS.values(),
    *COUNT_FIELDS,
    *FLAG_FIELDS,
)
MAX_COUNT = 1_000_000


class MerchantProfileInvalid(ValueError):
    """The input cannot be saved; `errors` maps a form field to its message. Nothing was changed."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def merchant_profile_initial(*, merchant: Merchant) -> dict[str, Any]:
    """Return the profile as the form shows it: amounts as decimal strings of the base currency."""
    initial: dict[str, Any] = {
        form: format_minor(getattr(merchant, model), merchant.base_currency)
        if getattr(merchant, model)
        else "0"
        for form, model in AMOUNT_FIELDS.items()
    }
    initial.update({name: getattr(merchant, name) for name in (*COUNT_FIELDS, *FLAG_FIELDS)})
    initial["base_currency"] = merchant.base_currency
    initial["allowed_currencies"] = " ".join(merchant.allowed_currencies or [])
    initial["risk_threshold"] = str(merchant.risk_threshold)
    return initial


def _amount(text: str, currency: str) -> int:
    text = (text or "").strip()
    if text.strip("0.") == "" and text.count(".") <= 1:  # "", "0", "0.00": the limit is off
        return 0
    if text.startswith("-"):
        raise MoneyError("amount_not_positive", _("Give a positive amount, or 0 to turn this off."))
    return parse_amount(text, currency)


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    """Return the model values of the form's `data`, or raise MerchantProfileInvalid with every error."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    try:
        values["base_currency"] = normalize_currency(data.get("base_currency") or "")
    except MoneyError as exc:
        errors["base_currency"] = exc.message
    codes = [c for c in str(data.get("allowed_currencies") or "").replace(",", " ").split() if c]
    allowed = []
    for code in codes:
        try:
            allowed.append(normalize_currency(code))
        except MoneyError:
            errors["allowed_currencies"] = _("%(code)s is not an ISO 4217 currency code.") % {"code": code}
            break
    values["allowed_currencies"] = sorted(set(allowed))
    if "base_currency" in values:
        for form, model in AMOUNT_FIELDS.items():
            try:
                values[model] = _amount(str(data.get(form) or ""), values["base_currency"])
            except MoneyError as exc:
                errors[form] = exc.message
    for name in COUNT_FIELDS:
        text = str(data.get(name) if data.get(name) is not None else "").strip() or "0"
        if not (text.isascii() and text.isdigit()) or int(text) > MAX_COUNT:
            errors[name] = _("Give a whole number from 0 to %(max)d (0 turns it off).") % {"max": MAX_COUNT}
        else:
            values[name] = int(text)
    try:
        risk = Decimal(str(data.get("risk_threshold") or "").strip())
        if not risk.is_finite() or not Decimal(0) <= risk <= Decimal(1) or risk.as_tuple().exponent < -3:
            raise InvalidOperation
        values["risk_threshold"] = risk.quantize(Decimal("0.001"))
    except InvalidOperation:
        errors["risk_threshold"] = _("Give a number from 0 to 1 with at most three decimals, such as 0.950.")
    for name in FLAG_FIELDS:
        values[name] = bool(data.get(name))
    if errors:
        raise MerchantProfileInvalid(errors)
    return values


def _shown(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def merchant_profile_update(
    *, merchant: Merchant, data: dict[str, Any], user=None, request=None
) -> list[str]:
    """Check every field, then save the changed ones in one transaction with one audit entry.

    `data` is the form's input (strings, booleans). Raise MerchantProfileInvalid
    with every field's error and change nothing when any field is wrong.
    Return the names of the model fields that changed (empty: nothing to save,
    nothing audited).
    """
    values = _clean(data)
    with transaction.atomic():
        locked = Merchant.objects.select_for_update().get(pk=merchant.pk)
        changed = [name for name in PROFILE_FIELDS if getattr(locked, name) != values[name]]
        if not changed:
            return []
        before = {name: _shown(getattr(locked, name)) for name in changed}
        for name in changed:
            setattr(locked, name, values[name])
        locked.save(update_fields=changed)
        audit_record(
            action="merchant.profile_updated",
            user=user,
            merchant=locked,
            obj=locked,
            before=before,
            after={name: _shown(values[name]) for name in changed},
            request=request,
        )
    for name in changed:
        setattr(merchant, name, values[name])
    return changed
