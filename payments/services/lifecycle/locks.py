"""Row locks, always taken in one order: merchant, then batch, then payments, then refund.

Every service that changes money locks through these helpers, so two of them
that touch the same rows take the locks in the same order and never deadlock.
Several payments are locked in primary-key order. Each helper must run inside
the transaction that changes the rows (the lock ends with it).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet

from merchants.models import Merchant
from payments.models import Payment, PaymentBatch, Refund


def require_transaction() -> None:
    """Raise RuntimeError unless called inside a transaction (a lock outside one protects nothing)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("Locks and state changes must run inside transaction.atomic().")


def lock_merchant(merchant_id: int) -> Merchant:
    require_transaction()
    return Merchant.objects.select_for_update().get(pk=merchant_id)


def lock_batch(batch_id: int) -> PaymentBatch | None:
    """Lock a batch; None if it does not exist (a task for a deleted batch is a no-op)."""
    require_transaction()
    return PaymentBatch.objects.select_for_update().filter(pk=batch_id).first()


def lock_payment(payment_id: int) -> Payment:
    require_transaction()
    return Payment.objects.select_for_update().get(pk=payment_id)


def lock_payments(queryset: QuerySet[Payment]) -> list[Payment]:
    """Return the payments of `queryset` locked in primary-key order (only the payment rows)."""
    require_transaction()
    return list(queryset.order_by("pk").select_for_update(of=("self",)))


def lock_payment_ids(ids: list[int]) -> None:
    """Lock payments by primary key, in order, without loading them (before touching their attempts)."""
    require_transaction()
    list(Payment.objects.filter(pk__in=ids).order_by("pk").select_for_update(of=("self",)).values_list("pk"))


def lock_refund(refund_id: int) -> Refund:
    require_transaction()
    return Refund.objects.select_for_update().get(pk=refund_id)
