"""Reconciliation: ask the gateway about payments whose callback is late, cancel expired actions.

A payment in processing or requires_action whose latest attempt has not been
called (submitted or queried) for the gateway's `query_after` seconds (or, once
fitted, until the gateway's C(r) passes 0.95: payments/services/timing_models.py) is
queried at the gateway; the answer is applied through the same allow-list as
a callback. A requires_action whose QR code / approval link has expired, and
that the gateway does not report as paid, is cancelled with the cancel
service. A refund still pending whose latest refund attempt was answered and
not called for `query_after` seconds is queried the same way (the gateway's
`query_refund`), and its final answer is applied exactly as a refund callback
is, which settles or releases the refunded amount. Timings per gateway:
settings.PAYDESK_RECONCILE.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from payments.gateways import GatewayError, GatewayResult, get_gateway
from payments.models import Event, GatewayAttempt, Payment, PaymentStatus, Refund, RefundStatus
from payments.queue import enqueue
from payments.services.lifecycle.attempts import gateway_call
from payments.services.lifecycle.locks import lock_payment
from payments.services.lifecycle.outcomes import outcome_apply
from payments.services.payments import PaymentStateError, payment_cancel
from payments.services.timing_models import reconcile_query_after

logger = logging.getLogger(__name__)

RECONCILE_LIMIT = 500
PENDING_STATES = (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION)


def reconcile_due(*, now: datetime | None = None) -> dict[str, int]:
    """Enqueue a reconciliation for every payment and refund overdue at its gateway.

    Return, per gateway, how many reconciliations were enqueued (payments and
    refunds together).
    """
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for slug, timing in settings.PAYDESK_RECONCILE.items():
        if slug not in settings.PAYDESK_GATEWAYS:
            continue
        stale = now - timedelta(seconds=timing["query_after"])
        # Payments: when the fitted C(r) says their callback should have come (timing_models.py).
        overdue = now - timedelta(seconds=reconcile_query_after(slug, timing["query_after"]))
        # The action cannot have started before the answer that asked for it.
        expired = now - timedelta(seconds=timing["action_expires"] + settings.PAYDESK_RECONCILE_GRACE)
        payment_ids = list(
            GatewayAttempt.objects.filter(
                gateway=slug,
                kind=GatewayAttempt.Kind.PAYMENT,
                status=GatewayAttempt.Status.ANSWERED,
                payment__status__in=PENDING_STATES,
            )
            .filter(
                Q(last_call_at__lt=overdue)
                | Q(payment__status=PaymentStatus.REQUIRES_ACTION, answered_at__lt=expired)
            )
            .order_by("last_call_at")
            .values_list("payment_id", flat=True)
            .distinct()[:RECONCILE_LIMIT]
        )
        for payment_id in payment_ids:
            enqueue("payments.tasks.payment_reconcile_task", payment_id)
        refund_ids = list(
            GatewayAttempt.objects.filter(
                gateway=slug,
                kind=GatewayAttempt.Kind.REFUND,
                status=GatewayAttempt.Status.ANSWERED,
                refund__status=RefundStatus.PENDING,
                last_call_at__lt=stale,
            )
            .order_by("last_call_at")
            .values_list("refund_id", flat=True)
            .distinct()[:RECONCILE_LIMIT]
        )
        for refund_id in refund_ids:
            enqueue("payments.tasks.refund_reconcile_task", refund_id)
        counts[slug] = len(payment_ids) + len(refund_ids)
    return counts


def payment_reconcile(*, payment_id: int, force: bool = False, now: datetime | None = None) -> str:
    """Query the gateway about one pending payment and settle it; return what happened.

    Safe to run twice and concurrently: the latest attempt is claimed with a
    conditional update of its `last_call_at`, so one worker asks at a time and
    the next query waits `query_after` seconds (unless `force`, used when a
    callback asks for the query). A GatewayError leaves everything as it was
    for the next run.
    """
    now = now or timezone.now()
    payment = Payment.objects.get(pk=payment_id)
    timing = settings.PAYDESK_RECONCILE.get(payment.gateway)
    if payment.status not in PENDING_STATES:
        return "settled"
    if timing is None:
        return "not reconciled"
    attempt = (
        GatewayAttempt.objects.select_related("payment")
        .filter(payment=payment, kind=GatewayAttempt.Kind.PAYMENT)
        .order_by("-number")
        .first()
    )
    if attempt is None or attempt.status != GatewayAttempt.Status.ANSWERED:
        return "attempt pending"  # the sweeper resumes unanswered attempts
    expired = _action_expired(payment, timing["action_expires"], now)
    query_after = reconcile_query_after(payment.gateway, timing["query_after"])
    if not _claim_query(attempt, now=now, query_after=query_after, force=force or expired):
        return "not due"
    gateway = get_gateway(payment.gateway)
    try:
        notice = gateway_call(lambda: gateway.query(attempt))
    except GatewayError as exc:
        logger.warning("reconciliation query for %s failed: %s", attempt.idempotency_key, exc)
        return "query failed"
    if notice is not None:
        return _apply(notice, attempt)
    if not expired:
        return "pending"
    # The gateway has nothing final and the QR code / approval link is dead: cancel.
    try:
        payment_cancel(payment=payment)
    except PaymentStateError:
        return "settled meanwhile"
    return "cancelled"


def refund_reconcile(*, refund_id: int, force: bool = False, now: datetime | None = None) -> str:
    """Query the gateway about one pending refund and settle it; return what happened.

    The final answer (`refund.succeeded` / `refund.failed`) goes through
    the lifecycle core's `outcome_apply`, the path a refund callback takes
    (`refund_settle` on the locked payment and refund), so success adds to the
    payment's refunded amount and failure releases what the refund held.
    Safe to run twice and concurrently: the latest refund attempt is claimed
    with a conditional update of its `last_call_at`, so one worker asks at a
    time and the next query waits `query_after` seconds (unless `force`). A
    GatewayError leaves everything as it was for the next run.
    """
    now = now or timezone.now()
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if refund.status != RefundStatus.PENDING:
        return "settled"
    attempt = (
        GatewayAttempt.objects.select_related("payment", "refund")
        .filter(refund=refund, kind=GatewayAttempt.Kind.REFUND)
        .order_by("-number")
        .first()
    )
    if attempt is None or attempt.status != GatewayAttempt.Status.ANSWERED:
        return "attempt pending"  # the sweeper resumes unanswered attempts
    timing = settings.PAYDESK_RECONCILE.get(attempt.gateway)
    if timing is None:
        return "not reconciled"
    if not _claim_query(attempt, now=now, query_after=timing["query_after"], force=force):
        return "not due"
    gateway = get_gateway(attempt.gateway)
    try:
        notice = gateway_call(lambda: gateway.query_refund(attempt))
    except GatewayError as exc:
        logger.warning("refund reconciliation query for %s failed: %s", attempt.idempotency_key, exc)
        return "query failed"
    if notice is None:
        return "pending"
    return _apply(notice, attempt)


def _apply(notice: GatewayResult, attempt: GatewayAttempt) -> str:
    """Apply a queried answer exactly as a callback's; say what happened."""
    with transaction.atomic():
        reason = outcome_apply(payment=lock_payment(attempt.payment_id), attempt=attempt, result=notice)
    if reason is None:
        return f"applied {notice.type}"
    logger.info("reconciliation of %s ignored: %s", attempt.idempotency_key, reason)
    return f"ignored: {reason}"


def _claim_query(attempt: GatewayAttempt, *, now: datetime, query_after: float, force: bool) -> bool:
    """Take the right to query the gateway about `attempt` now: a conditional update of its
    `last_call_at`, so one worker asks at a time and, unless forced, only once it is overdue."""
    claim = GatewayAttempt.objects.filter(pk=attempt.pk, last_call_at=attempt.last_call_at)
    if not force:
        claim = claim.filter(last_call_at__lt=now - timedelta(seconds=query_after))
    return bool(claim.update(last_call_at=now))


def _action_expired(payment: Payment, lifetime: int, now: datetime) -> bool:
    """Whether the customer's action (QR code, approval link) has outlived its lifetime plus grace."""
    if payment.status != PaymentStatus.REQUIRES_ACTION:
        return False
    since = (
        Event.objects.filter(payment=payment, type="payment.requires_action")
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    ) or payment.updated_at
    return now >= since + timedelta(seconds=lifetime + settings.PAYDESK_RECONCILE_GRACE)
