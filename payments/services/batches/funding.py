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


def funding_by_currency(batch: PaymentBatch) -> dict[str, bool]:
    """For every currency the merchant holds an enabled funding account in: whether `batch` has one to
    pay from (`funding_account_for`). A currency missing from the answer has none. One query, read
    before ingestion streams its COPY (no query may run on the connection while it does).
    """
    currencies = set(
        FundingAccount.objects.filter(merchant_id=batch.merchant_id, enabled=True).values_list(
            "currency", flat=True
        )
    )
    return {currency: funding_account_for(batch, currency) is not None for currency in currencies}


def today() -> date:
    """The merchant's business day (PayDesk's TIME_ZONE): execution dates are compared with it."""
    return timezone.localdate()


def batch_due(batch: PaymentBatch, on: date | None = None) -> bool:
    """Whether an approved batch may start now: it asks for no date, or its date has come."""
    return batch.execution_date is None or batch.execution_date <= (on or today())
