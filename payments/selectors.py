"""Merchant-scoped reads: every view, API endpoint and admin screen goes through these.

An object of another merchant is simply not found (404), never forbidden.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, Min, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext

from merchants.crypto import field_hash
from merchants.models import ApiKey, Merchant
from payments.db import first_joined
from payments.models import Event, Payment, PaymentBatch, Refund, RefundStatus
from payments.rates import RateUnavailable, convert_minor, latest_rates

# Batches whose payments exist but may not be sent yet: not ordinary "created" payments.
UNAPPROVED_BATCH_STATES = ("uploaded", "validating", "validated")


def payment_list(*, merchant: Merchant, filters: dict | None = None) -> QuerySet[Payment]:
    """The merchant's payments, newest first, filtered.

    Filters: `status` (one value or a list), `method`, `currency`, `reference`,
    `account` (exact, through the keyed hash),
    `batch` (public id), `created_gte` / `created_lt` (datetimes),
    `amount_min_minor` / `amount_max_minor` (with `currency`), `beneficiary`
    (name contains), and `hide_unapproved_batches` (leave out the payments of
    batches not yet approved, which are not ordinary "created" payments).
    """
    qs = Payment.objects.filter(merchant=merchant).select_related("batch")
    filters = filters or {}
    status = filters.get("status")
    if isinstance(status, list | tuple):
        if status:
            qs = qs.filter(status__in=status)
    elif status:
        qs = qs.filter(status=status)
    for field in ("method", "currency", "reference"):
        if filters.get(field):
            qs = qs.filter(**{field: filters[field]})
    if filters.get("account"):
        # Exact match through the keyed hash: the account itself is encrypted (docs/privacy.md).
        qs = qs.filter(beneficiary_account_hash=field_hash(filters["account"]))
    if filters.get("batch"):
        qs = qs.filter(batch__public_id=filters["batch"])
    if filters.get("created_gte"):
        qs = qs.filter(created_at__gte=filters["created_gte"])
    if filters.get("created_lt"):
        qs = qs.filter(created_at__lt=filters["created_lt"])
    if filters.get("amount_min_minor") is not None:
        qs = qs.filter(amount_minor__gte=filters["amount_min_minor"])
    if filters.get("amount_max_minor") is not None:
        qs = qs.filter(amount_minor__lte=filters["amount_max_minor"])
    if filters.get("beneficiary"):
        qs = qs.filter(beneficiary_name__icontains=filters["beneficiary"])
    if filters.get("hide_unapproved_batches"):
        # A few batch ids in a subquery, not a join of every payment to its batch.
        waiting = PaymentBatch.objects.filter(merchant=merchant, status__in=UNAPPROVED_BATCH_STATES)
        qs = qs.exclude(batch_id__in=waiting.values("pk"))
    return qs.order_by("-created_at", "-id")


def payment_get(*, merchant: Merchant, public_id: str) -> Payment:
    return get_object_or_404(
        Payment.objects.select_related("batch", "merchant"), merchant=merchant, public_id=public_id
    )


def beneficiary_history(*, payment: Payment) -> dict:
    """The merchant's other payments to this payment's beneficiary account: count, first, per status."""
    others = Payment.objects.filter(
        merchant_id=payment.merchant_id, beneficiary_account_hash=payment.beneficiary_account_hash
    ).exclude(pk=payment.pk)
    by_status = {
        row["status"]: row["n"]
        for row in others.order_by().values("status").annotate(n=Count("id")).values("status", "n")
    }
    first = others.aggregate(first=Min("created_at"))["first"]
    return {"count": sum(by_status.values()), "first": first, "by_status": by_status}


def payment_events(*, payment: Payment) -> QuerySet[Event]:
    return Event.objects.filter(payment=payment).order_by("created_at", "id")


def event_list(*, merchant: Merchant) -> QuerySet[Event]:
    return Event.objects.filter(merchant=merchant).order_by("-created_at", "-id")


def event_get(*, merchant: Merchant, public_id: str) -> Event:
    return get_object_or_404(Event, merchant=merchant, public_id=public_id)


def refund_list(*, payment: Payment) -> QuerySet[Refund]:
    return Refund.objects.filter(payment=payment).select_related("payment").order_by("created_at")


def payment_refundable_minor(*, payment: Payment) -> int:
    """What can still be refunded: the amount less refunds made and refunds pending (shown, not enforced)."""
    pending = (
        payment.refunds.filter(status=RefundStatus.PENDING, kind=Refund.Kind.REQUESTED).aggregate(
            total=Sum("amount_minor")
        )["total"]
        or 0
    )
    return payment.amount_minor - payment.refunded_minor - pending


def batch_list(*, merchant: Merchant) -> QuerySet[PaymentBatch]:
    return PaymentBatch.objects.filter(merchant=merchant).order_by("-created_at", "-id")


def batch_get(*, merchant: Merchant, public_id: str) -> PaymentBatch:
    # Who uploaded and approved it is on every batch page and API answer: one query, not five.
    related = ("uploaded_by", "uploaded_by_key", "approved_by", "approved_by_key", "duplicate_of")
    return get_object_or_404(
        PaymentBatch.objects.select_related(*related), merchant=merchant, public_id=public_id
    )


def count_at_most(qs: QuerySet, limit: int) -> int:
    """`qs.count()`, but reading at most `limit` rows (an index-only walk on a merchant's lists)."""
    return qs.order_by().values("pk")[:limit].count()


def api_key_for_prefix(prefix: str) -> ApiKey | None:
    """The API key with this prefix and its merchant (read on every API request: revocation is immediate)."""
    return first_joined(ApiKey, "merchant", field="prefix", value=prefix)


def amounts_in_base(amounts: dict[str, int], base: str) -> tuple[int | None, str]:
    """(the sum of per-currency minor amounts in `base`, "") through the reference rates, or (None, why
    not) when a rate is missing or older than PAYDESK_RATE_MAX_AGE_DAYS; one query for the rates."""
    memo: dict = {"rates_table": latest_rates(set(amounts) | {base})}
    try:
        return sum(convert_minor(minor, currency, base, memo=memo) for currency, minor in amounts.items()), ""
    except RateUnavailable:
        return None, gettext("a reference rate is missing or older than %(days)d days") % {
            "days": settings.PAYDESK_RATE_MAX_AGE_DAYS
        }
