"""Merchant-scoped reads: every view, API endpoint and admin screen goes through these.

An object of another merchant is simply not found (404), never forbidden.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from merchants.crypto import field_hash
from merchants.models import ApiKey, Merchant
from payments.db import first_joined
from payments.models import Event, Payment, PaymentBatch, Refund


def payment_list(*, merchant: Merchant, filters: dict | None = None) -> QuerySet[Payment]:
    qs = Payment.objects.filter(merchant=merchant).select_related("batch")
    filters = filters or {}
    for field in ("status", "method", "currency", "reference"):
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
    return qs.order_by("-created_at", "-id")


def payment_get(*, merchant: Merchant, public_id: str) -> Payment:
    return get_object_or_404(
        Payment.objects.select_related("batch", "merchant"), merchant=merchant, public_id=public_id
    )


def payment_events(*, payment: Payment) -> QuerySet[Event]:
    return Event.objects.filter(payment=payment).order_by("created_at", "id")


def event_list(*, merchant: Merchant) -> QuerySet[Event]:
    return Event.objects.filter(merchant=merchant).order_by("-created_at", "-id")


def event_get(*, merchant: Merchant, public_id: str) -> Event:
    return get_object_or_404(Event, merchant=merchant, public_id=public_id)


def refund_list(*, payment: Payment) -> QuerySet[Refund]:
    return Refund.objects.filter(payment=payment).select_related("payment").order_by("created_at")


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
