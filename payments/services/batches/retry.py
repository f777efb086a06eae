""" "Retry failed": a new batch of the retryable failures of a finished batch.

Retryable (`retryable_failures`): a failed payment whose gateway called the
failure transient (`failure_retryable`, e.g. the sandbox's
`processing_error`), or whose code names something the merchant can fix
before paying again: `insufficient_funds` (top up the account paid from) and
`gateway_not_configured` (set the gateway up). Never: a payment PayDesk's
reviewers rejected (`rejected_after_review`), a blocked or sanctions-listed
beneficiary, or a refusal by the beneficiary's side (`card_declined`, any
other code).

The new batch is an ordinary upload of JSON items by the person who retried:
it is validated and approved again (four eyes: that person counts as its
uploader). References must be unique per merchant, so each row gets the
source's reference with a `-R<n>` suffix (the next number not used by an
earlier retry). A batch has at most one live
retry (database constraint `batch_one_live_retry`): asking again returns it.
"""

from __future__ import annotations

import re

from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from merchants.models import Membership
from payments.models import BatchStatus, Payment, PaymentBatch, PaymentStatus
from payments.money import format_minor
from payments.services.batches.lifecycle import (
    BatchForbidden,
    BatchStateError,
    batch_create_from_items,
)
from payments.services.lifecycle.locks import lock_merchant

# Failures the merchant can fix and pay again (besides those the gateway calls transient).
FIXABLE_CODES = ("processing_error", "insufficient_funds", "gateway_not_configured")
# Never paid again by a retry, whatever the gateway said.
NEVER_CODES = ("rejected_after_review",)
DEAD = (BatchStatus.CANCELLED, BatchStatus.REJECTED)
REFERENCE_MAX = 140
_SUFFIX = re.compile(r"^(?P<base>.*)-R(?P<n>\d{1,6})$", re.DOTALL)


def retryable_failures(batch: PaymentBatch) -> QuerySet[Payment]:
    """The failed payments of `batch` that a retry pays again."""
    return (
        Payment.objects.filter(batch_id=batch.pk, status=PaymentStatus.FAILED)
        .filter(Q(failure_retryable=True) | Q(failure_code__in=FIXABLE_CODES))
        .exclude(failure_code__in=NEVER_CODES)
        .exclude(failure_code__startswith="blocked")
        .exclude(failure_code__contains="sanction")
    )


def batch_live_retry(batch: PaymentBatch) -> PaymentBatch | None:
    """The retry of `batch` that is not cancelled or rejected, if any."""
    return PaymentBatch.objects.filter(retry_of_id=batch.pk).exclude(status__in=DEAD).first()


def batch_retry_summary(batch: PaymentBatch) -> dict:
    """What a retry would create: count and totals per currency (for the confirmation page)."""
    totals = (
        retryable_failures(batch)
        .values("currency")
        .annotate(n=Count("id"), total=Sum("amount_minor"))
        .order_by("currency")
    )
    per_currency = [
        {"currency": t["currency"], "count": t["n"], "amount": format_minor(t["total"], t["currency"])}
        for t in totals
    ]
    return {"count": sum(t["count"] for t in per_currency), "totals": per_currency}


def batch_retry_offered(batch: PaymentBatch) -> bool:
    """Whether the batch page offers "Retry failed": finished, retryable failures, no live retry."""
    return (
        batch.status == BatchStatus.COMPLETED
        and batch_live_retry(batch) is None
        and retryable_failures(batch).exists()
    )


def retry_reference(reference: str, earlier: int = 0) -> str:
    """`R-1` -> `R-1-R1`, `R-1-R1` -> `R-1-R2`: the reference of a row paid again.

    `earlier`: retries of the same batch made before (cancelled or rejected, their references stay
    taken), so the second retry of `R-1` is `R-1-R2`.
    """
    found = _SUFFIX.match(reference)
    base, n = (found["base"], int(found["n"]) + 1) if found else (reference, 1)
    n += earlier
    suffix = f"-R{n}"
    return base[: REFERENCE_MAX - len(suffix)] + suffix


def batch_retry_create(*, batch: PaymentBatch, user) -> PaymentBatch:
    """Create the retry batch of `batch` (validated then approved like an upload by `user`); return it.

    Idempotent: while a retry that is not cancelled or rejected exists, return it instead.
    Raise BatchForbidden (role), BatchStateError (batch not completed, or nothing retryable).
    """
    membership = Membership.objects.filter(user=user, merchant_id=batch.merchant_id).first()
    if membership is None or not membership.can_create_payments:
        raise BatchForbidden("role_cannot_upload", _("Your role cannot upload batches."))
    with transaction.atomic():
        lock_merchant(batch.merchant_id)  # two clicks, two people: one retry
        existing = batch_live_retry(batch)
        if existing is not None:
            return existing
        if batch.status != BatchStatus.COMPLETED:
            raise BatchStateError("batch_not_completed", _("Only a completed batch can be retried."))
        earlier = PaymentBatch.objects.filter(retry_of_id=batch.pk).count()
        items = [
            {
                "reference": retry_reference(p.reference, earlier),
                "amount": format_minor(p.amount_minor, p.currency),
                "currency": p.currency,
                "method": p.method,
                "beneficiary_name": p.beneficiary_name,
                "beneficiary_account": p.beneficiary_account,
                "beneficiary_email": p.beneficiary_email,
                "beneficiary_phone": p.beneficiary_phone,
                "description": p.description,
            }
            for p in retryable_failures(batch).order_by("pk").iterator(chunk_size=2000)
        ]
        if not items:
            raise BatchStateError("nothing_to_retry", _("This batch has no failures that can be retried."))
        retry = batch_create_from_items(
            merchant=batch.merchant,
            items=items,
            user=user,
            name=(_("Retry of %(batch)s") % {"batch": batch.name or batch.public_id})[:200],
            funding_account=batch.funding_account,
        )
        PaymentBatch.objects.filter(pk=retry.pk).update(retry_of=batch)
        retry.retry_of = batch
    return retry
