"""Checks every entry point that moves money goes through."""

from __future__ import annotations

from django.utils.translation import gettext as _

from merchants.models import Merchant


class MerchantSuspended(Exception):
    """The merchant is suspended: no payment, batch, retry, release or refund may move money."""

    code = "merchant_suspended"

    def __init__(self, merchant: Merchant) -> None:
        super().__init__(_("This merchant is suspended: no money can be moved."))
        self.merchant = merchant


def ensure_may_move_money(merchant: Merchant) -> None:
    """Raise MerchantSuspended unless `merchant` is active.

    Called where a use case starts (payment creation, batch approval, release,
    retry, refund) and again where a gateway attempt is created, so a merchant
    suspended between the two still moves nothing.
    """
    if merchant.status != Merchant.Status.ACTIVE:
        raise MerchantSuspended(merchant)
