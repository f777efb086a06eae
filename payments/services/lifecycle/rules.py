"""The merchant's hold rules, applied by the core to every new payment (real-time or batch row).

Refusals (the blocklist) are part of input validation; this module decides
which valid payments are held for review, and why (payments/controls.py).
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext as _

from merchants.crypto import field_hash
from merchants.models import Merchant
from payments.controls import HoldReason, hold_reasons, is_new_beneficiary
from payments.models import Payment


def payment_hold_reasons(
    payment: Payment, *, realtime: bool = True, memo: dict | None = None
) -> list[HoldReason]:
    """Why this new (unsaved) payment must be held; empty if it may go on."""
    account_hash = payment.beneficiary_account_hash or field_hash(payment.beneficiary_account)
    merchant = payment.merchant
    new = bool(merchant.first_payment_cap_minor) and is_new_beneficiary(merchant, account_hash)
    return hold_reasons(
        merchant,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        beneficiary_name=payment.beneficiary_name,
        account_hash=account_hash,
        new_beneficiary=new,
        realtime=realtime,
        memo=memo,
    )


def risk_hold_reason(merchant: Merchant, probability: Decimal | None) -> HoldReason | None:
    """The risk rule, one for every entry point: held when the hold probability of the payment's
    score is above the merchant's threshold (payments/risk.py)."""
    if probability is None or probability <= merchant.risk_threshold:
        return None
    return HoldReason(
        "risk_score",
        _("The risk score's hold probability %(p)s is above the merchant's threshold %(t)s.")
        % {"p": probability, "t": merchant.risk_threshold},
    )
