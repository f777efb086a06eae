"""The gateway callback inbox: store verified requests at once, apply them in a worker."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.http.request import RawPostDataException
from django.utils import timezone

from payments.gateways import CallbackRejected, Gateway, GatewayError, GatewayResult, get_gateway
from payments.models import GatewayAttempt, GatewayCallback
from payments.queue import enqueue_on_commit
from payments.services.lifecycle.locks import lock_payment
from payments.services.lifecycle.outcomes import outcomes_apply

logger = logging.getLogger(__name__)

STORED_HEADERS = ("content-type", "content-length", "user-agent")
# An unverified request is kept for audit only: its headers (each cut to HEADER_VALUE_CHARS)
# and the first REJECTED_BODY_BYTES of its body, so a flood of junk cannot fill the table.
REJECTED_BODY_BYTES = 4096
HEADER_VALUE_CHARS = 1024
MAX_STORED_HEADERS = 40


def _storable(text: str) -> str:
    """`text` as PostgreSQL can store it: each NUL (which it refuses in text and JSON) shown as U+FFFD."""
    return text.replace("\x00", "\ufffd")


def _headers(request: HttpRequest, *, limit: bool = False) -> dict:
    headers = {
        _storable(k): _storable(v)
        for k, v in request.headers.items()
        if k.lower() in STORED_HEADERS or k.lower().startswith(("x-", "wechatpay-", "paypal-"))
    }
    if limit:
        headers = {k: v[:HEADER_VALUE_CHARS] for k, v in list(headers.items())[:MAX_STORED_HEADERS]}
    return headers


def _body_text(request: HttpRequest) -> str:
    return _storable(request.body.decode("utf-8", errors="replace"))


def _body_excerpt(request: HttpRequest) -> str:
    """Return at most the first REJECTED_BODY_BYTES of the body, whatever made verification fail."""
    try:
        raw = request.body[:REJECTED_BODY_BYTES]
    except RequestDataTooBig:
        # Over DATA_UPLOAD_MAX_MEMORY_SIZE: the body was never read, so read just its start.
        try:
            raw = request.read(REJECTED_BODY_BYTES)
        except OSError as exc:
            return f"[body unreadable: {type(exc).__name__}]"
    except (RawPostDataException, OSError) as exc:
        # Multipart already parsed from the stream, or the client went away mid-body.
        return f"[body unreadable: {type(exc).__name__}]"
    return _storable(raw.decode("utf-8", errors="replace"))


def _rejected(gateway: Gateway, request: HttpRequest, reason: str) -> GatewayCallback:
    return GatewayCallback.objects.create(
        gateway=gateway.slug,
        status=GatewayCallback.Status.REJECTED,
        reason=_storable(reason[:500]),
        headers=_headers(request, limit=True),
        body=_body_excerpt(request),
        processed_at=timezone.now(),
    )


def callback_receive(*, gateway: Gateway, request: HttpRequest) -> tuple[bool, GatewayCallback]:
    """Verify and store one callback; return (accepted, row). Never applies it inline.

    A forged, malformed or replayed request is stored as rejected, with its
    headers and the start of its body only. So is one whose verification
    raised anything else (a bug in a gateway's parsing must not answer 500
    and lose the request): that is logged with its traceback. A repeat of an
    event already stored is stored as a duplicate and changes nothing.
    """
    try:
        verified = gateway.verify_callback(request)
    except (CallbackRejected, GatewayError) as exc:  # GatewayError: it could not be checked (credentials)
        row = _rejected(gateway, request, str(exc))
        logger.warning("rejected %s callback %s: %s", gateway.slug, row.pk, exc)
        return False, row
    except SuspiciousOperation as exc:  # Django refused the request itself (too big, too many fields)
        row = _rejected(gateway, request, f"{type(exc).__name__}: {exc}")
        logger.warning("rejected %s callback %s: %s", gateway.slug, row.pk, exc)
        return False, row
    except Exception as exc:
        row = _rejected(gateway, request, f"verification failed: {type(exc).__name__}: {exc}")
        logger.exception("verifying %s callback %s raised; stored as rejected", gateway.slug, row.pk)
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


PURGE_CHUNK = 10_000
PURGED_STATUSES = (GatewayCallback.Status.REJECTED, GatewayCallback.Status.DUPLICATE)


def callbacks_purge(*, now: datetime | None = None) -> int:
    """Delete rejected and duplicate callbacks older than PAYDESK_CALLBACK_RETENTION_DAYS; return how many.

    Run by the django-q2 schedule `paydesk-callback-purge` (payments/apps.py).
    They changed nothing and are kept only for audit; applied, ignored and
    dead-lettered callbacks are the record of what happened and stay. Deleted
    in chunks, so a flood of junk never makes one long transaction.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.PAYDESK_CALLBACK_RETENTION_DAYS)
    old = GatewayCallback.objects.filter(status__in=PURGED_STATUSES, received_at__lt=cutoff)
    deleted = 0
    while ids := list(old.order_by("pk").values_list("pk", flat=True)[:PURGE_CHUNK]):
        count, _by_model = GatewayCallback.objects.filter(pk__in=ids).delete()
        deleted += count
    return deleted


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
