"""Which of the merchant's funding accounts a batch pays from, and when it may start."""

from __future__ import annotations

from datetime import date

from django.utils import timezone

from merchants.models import FundingAccount
from payments.models import PaymentBatch


def funding_account_for(batch: PaymentBatch, currency: str) -> FundingAccount | None:
    """The enabled account that pays a batch's rows in `currency`, or None.

    The account named at upload pays the rows of its currency; the rows of any
    other currency are paid from the merchant's default account for theirs.
    """
    named = batch.funding_account
    if named is not None and named.enabled and named.currency == currency:
        return named
    return FundingAccount.objects.filter(
        merchant_id=batch.merchant_id, currency=currency, is_default=True, enabled=True
    ).first()


def today() -> date:
    """The merchant's business day (PayDesk's TIME_ZONE): execution dates are compared with it."""
    return timezone.localdate()


def batch_due(batch: PaymentBatch, on: date | None = None) -> bool:
    """Whether an approved batch may start now: it asks for no date, or its date has come."""
    return batch.execution_date is None or batch.execution_date <= (on or today())
