"""The gateway callback inbox: store verified requests at once, apply them in a worker."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from payments.gateways import CallbackRejected, Gateway, GatewayError, GatewayResult, get_gateway
from payments.models import GatewayAttempt, GatewayCallback
from payments.queue import enqueue_on_commit
from payments.services.lifecycle.locks import lock_payment
from payments.services.lifecycle.outcomes import outcomes_apply

logger = logging.getLogger(__name__)

STORED_HEADERS = ("content-type", "user-agent")


def _headers(request: HttpRequest) -> dict:
    return {
        k: v
        for k, v in request.headers.items()
        if k.lower() in STORED_HEADERS or k.lower().startswith(("x-", "wechatpay-", "paypal-"))
    }


def _body_text(request: HttpRequest) -> str:
    return request.body.decode("utf-8", errors="replace")


def callback_receive(*, gateway: Gateway, request: HttpRequest) -> tuple[bool, GatewayCallback]:
    """Verify and store one callback; return (accepted, row). Never applies it inline.

    A forged, malformed or replayed request is stored as rejected. A repeat of
    an event already stored is stored as a duplicate and changes nothing.
    """
    try:
        verified = gateway.verify_callback(request)
    except (CallbackRejected, GatewayError) as exc:  # GatewayError: it could not be checked (credentials)
        row = GatewayCallback.objects.create(
            gateway=gateway.slug,
            status=GatewayCallback.Status.REJECTED,
            reason=str(exc)[:500],
            headers=_headers(request),
            body=_body_text(request),
            processed_at=timezone.now(),
        )
        logger.warning("rejected %s callback %s: %s", gateway.slug, row.pk, exc)
        return False, row
    payment_id = _payment_for(verified.notices)
    try:
        with transaction.atomic():
            row = GatewayCallback.objects.create(
                gateway=gateway.slug,
                event_id=verified.event_id,
                event_type=verified.event_type,
                headers=_headers(request),
                body=_body_text(request),
                payload=verified.payload,
                payment_id=payment_id,
            )
            enqueue_on_commit("payments.tasks.callback_apply_task", row.pk)
    except IntegrityError:
        row = GatewayCallback.objects.create(
            gateway=gateway.slug,
            event_id=verified.event_id,
            event_type=verified.event_type,
            status=GatewayCallback.Status.DUPLICATE,
            reason="event already received",
            headers=_headers(request),
            body=_body_text(request),
            processed_at=timezone.now(),
        )
    return True, row


def _payment_for(notices: list[GatewayResult]) -> int | None:
    if len(notices) != 1:
        return None
    return (
        GatewayAttempt.objects.filter(idempotency_key=notices[0].attempt_key)
        .values_list("payment_id", flat=True)
        .first()
    )


def callback_apply(*, callback_id: int) -> None:
    """Apply a stored callback and any earlier unapplied ones of the same payment, in order.

    Safe to run twice and concurrently: the payment row is locked first and a
    callback is applied only while it is still `received`. The attempt counter
    is committed before the work starts, so a callback that keeps killing its
    worker is dead-lettered by the sweeper.
    """
    started = GatewayCallback.objects.filter(pk=callback_id, status=GatewayCallback.Status.RECEIVED).update(
        attempts=F("attempts") + 1, last_attempt_at=timezone.now()
    )
    if not started:
        return
    row = GatewayCallback.objects.get(pk=callback_id)
    if row.attempts > settings.PAYDESK_MAX_ATTEMPTS:
        GatewayCallback.objects.filter(pk=callback_id).update(
            status=GatewayCallback.Status.DEAD, reason="gave up after repeated failures"
        )
        return
    with transaction.atomic():
        if row.payment_id is not None:
            lock_payment(row.payment_id)  # lock order: payment before its callbacks
            pending = GatewayCallback.objects.select_for_update().filter(
                payment_id=row.payment_id, status=GatewayCallback.Status.RECEIVED, pk__lte=row.pk
            )
        else:
            pending = GatewayCallback.objects.select_for_update().filter(
                pk=row.pk, status=GatewayCallback.Status.RECEIVED
            )
        for callback in pending.order_by("pk"):
            _apply_one(callback)


def _apply_one(callback: GatewayCallback) -> None:
    """Apply the results a stored callback carries (one, or a bank's many) through the lifecycle core."""
    gateway = get_gateway(callback.gateway)
    results = gateway.notices_from_payload(callback.payload or {})
    attempts = {
        a.idempotency_key: a
        for a in GatewayAttempt.objects.filter(
            idempotency_key__in={r.attempt_key for r in results}, gateway=gateway.slug
        )
    }
    items, reasons = [], []
    for result in results:
        attempt = attempts.get(result.attempt_key)
        if result.type not in gateway.CALLBACK_TYPES:
            reasons.append(f"{result.attempt_key}: type {result.type} not allowed for {gateway.slug}")
        elif attempt is None:
            reasons.append(f"{result.attempt_key}: unknown attempt")
        else:
            items.append((attempt, result))
    applied, ignored, batch_ids = outcomes_apply(items)
    reasons += ignored
    for batch_id in sorted(batch_ids):
        enqueue_on_commit("payments.tasks.batch_check_task", batch_id)
    callback.status = GatewayCallback.Status.APPLIED if applied else GatewayCallback.Status.IGNORED
    callback.reason = "; ".join(reasons)[:500]
    callback.processed_at = timezone.now()
    callback.save(update_fields=["status", "reason", "processed_at"])


def callback_reapply(*, callback: GatewayCallback) -> GatewayCallback:
    """Put an ignored or dead-lettered callback back in the inbox (admin action)."""
    if callback.status not in (GatewayCallback.Status.IGNORED, GatewayCallback.Status.DEAD):
        raise CallbackRejected("only ignored or dead-lettered callbacks can be re-applied")
    with transaction.atomic():
        GatewayCallback.objects.filter(pk=callback.pk).update(
            status=GatewayCallback.Status.RECEIVED, attempts=0, reason=""
        )
        enqueue_on_commit("payments.tasks.callback_apply_task", callback.pk)
    callback.refresh_from_db()
    return callback
