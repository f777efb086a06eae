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
from django_fsm import can_proceed

from payments.gateways import RECONCILE, CallbackNotice, CallbackRejected, Gateway, GatewayError
from payments.models import GatewayAttempt, GatewayCallback, Payment, PaymentStatus, Refund
from payments.queue import enqueue_on_commit
from payments.services.payments import locked, transition_apply
from payments.services.refunds import refund_settle

logger = logging.getLogger(__name__)

STORED_HEADERS = ("content-type", "content-length", "user-agent")
# An unverified request is kept for audit only: its headers (each cut to HEADER_VALUE_CHARS)
# and the first REJECTED_BODY_BYTES of its body, so a flood of junk cannot fill the table.
REJECTED_BODY_BYTES = 4096
HEADER_VALUE_CHARS = 1024
MAX_STORED_HEADERS = 40


def _headers(request: HttpRequest, *, limit: bool = False) -> dict:
    headers = {
        k: v
        for k, v in request.headers.items()
        if k.lower() in STORED_HEADERS or k.lower().startswith(("x-", "wechatpay-", "paypal-"))
    }
    if limit:
        headers = {k: v[:HEADER_VALUE_CHARS] for k, v in list(headers.items())[:MAX_STORED_HEADERS]}
    return headers


def _body_text(request: HttpRequest) -> str:
    return request.body.decode("utf-8", errors="replace")


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
    return raw.decode("utf-8", errors="replace")


def _rejected(gateway: Gateway, request: HttpRequest, reason: str) -> GatewayCallback:
    return GatewayCallback.objects.create(
        gateway=gateway.slug,
        status=GatewayCallback.Status.REJECTED,
        reason=reason[:500],
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


def _payment_for(notices: list[CallbackNotice]) -> int | None:
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
            locked(row.payment_id)  # lock order: payment before its callbacks
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
    from payments.gateways import get_gateway

    gateway = get_gateway(callback.gateway)
    if callback_results_apply(gateway=gateway, callback=callback):
        return  # a report of many outcomes (data.results), applied set-based
    reasons = []
    applied = 0
    for notice in _notices(callback):
        reason = _apply_notice(gateway, notice)
        if reason is None:
            applied += 1
        else:
            reasons.append(f"{notice.attempt_key}: {reason}")
    callback.status = GatewayCallback.Status.APPLIED if applied else GatewayCallback.Status.IGNORED
    callback.reason = "; ".join(reasons)[:500]
    callback.processed_at = timezone.now()
    callback.save(update_fields=["status", "reason", "processed_at"])


def _notices(callback: GatewayCallback) -> list[CallbackNotice]:
    from payments.gateways import get_gateway

    return get_gateway(callback.gateway).notices_from_payload(callback.payload or {})


def notice_apply(*, gateway: Gateway, notice: CallbackNotice) -> str | None:
    """Apply one verified outcome (a callback's or a reconciliation query's) inside a transaction.

    Return why it was ignored, or None when it was applied.
    """
    return _apply_notice(gateway, notice)


def _apply_notice(gateway: Gateway, notice: CallbackNotice) -> str | None:
    """Apply one outcome through the gateway's allow-list; return why it was ignored, or None."""
    allowed = gateway.ALLOWED_CALLBACKS.get(notice.type)
    if allowed is None:
        return f"type {notice.type} not allowed for {gateway.slug}"
    attempt = GatewayAttempt.objects.filter(idempotency_key=notice.attempt_key, gateway=gateway.slug).first()
    if attempt is None:
        return "unknown attempt"
    payment: Payment = locked(attempt.payment_id)
    actor = f"gateway:{gateway.slug}"
    if allowed == RECONCILE:
        # The gateway wants its own answer asked for (PayPal: capture an approved order) by a worker.
        if payment.status not in (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION):
            return f"{notice.type} needs no action while payment is {payment.status}"
        enqueue_on_commit("payments.tasks.payment_reconcile_task", payment.pk, True)
        return None
    # A tuple lists alternatives: the first one the payment's state allows (else the first, refused).
    names = (allowed,) if isinstance(allowed, str) else allowed
    name = names[0]
    if len(names) > 1:
        name = next((n for n in names if can_proceed(getattr(payment, n))), name)
    if name in ("refund_succeed", "refund_fail"):
        if attempt.refund_id is None:
            return "refund outcome for a payment attempt"
        refund = Refund.objects.select_for_update().get(pk=attempt.refund_id)
        return refund_settle(
            payment=payment,
            refund=refund,
            succeeded=name == "refund_succeed",
            code=notice.failure_code,
            actor=actor,
        )
    if attempt.kind != GatewayAttempt.Kind.PAYMENT:
        return "payment outcome for a refund attempt"
    if not can_proceed(getattr(payment, name)):
        return f"{notice.type} not allowed while payment is {payment.status}"
    if notice.gateway_reference and not payment.gateway_reference:
        payment.gateway_reference = notice.gateway_reference
    kwargs: dict = {}
    if name == "fail":
        kwargs = {
            "code": notice.failure_code or "failed",
            "message": notice.failure_message,
            "retryable": notice.retryable,
        }
    transition_apply(payment, name, actor=actor, **kwargs)
    return None


def callback_results_apply(*, gateway: Gateway, callback: GatewayCallback) -> bool:
    """Apply a callback that carries many outcomes (`data.results`) set-based; False for others.

    Runs inside callback_apply's transaction. Payment outcomes are grouped by
    the transition they request (through the gateway's allow-list) and applied
    with one UPDATE per group filtered by the states the model's transition
    graph allows, plus bulk-created Events, instead of a locked save() per
    payment. Refund outcomes, reconciliation requests and unknown attempts go
    through `_apply_notice` one by one. A payment named twice in one report
    (succeeded, then reversed) is applied in rounds, in the report's order.
    Batches touched get their completion checked.
    """
    data = (callback.payload or {}).get("data")
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        return False
    from payments.services.lifecycle.transitions import (
        bulk_transition,
        lock_payments,
        transition_info,
        values_update,
    )

    def bulk_names(allowed) -> tuple[str, ...]:
        if allowed is None or allowed == RECONCILE:
            return ()
        names = (allowed,) if isinstance(allowed, str) else tuple(allowed)
        try:
            for name in names:
                transition_info(name)
        except ValueError:  # refund_succeed and the like are not Payment transitions
            return ()
        return names

    notices = _notices(callback)
    keys = {n.attempt_key for n in notices}
    attempts = {
        a.idempotency_key: a
        for a in GatewayAttempt.objects.filter(idempotency_key__in=keys, gateway=gateway.slug).only(
            "idempotency_key", "payment_id", "kind", "refund_id"
        )
    }
    reasons: list[str] = []
    applied = 0
    queue: list[tuple[CallbackNotice, GatewayAttempt, tuple[str, ...]]] = []
    for notice in notices:
        attempt = attempts.get(notice.attempt_key)
        names = bulk_names(gateway.ALLOWED_CALLBACKS.get(notice.type))
        if attempt is None or not names or attempt.kind != GatewayAttempt.Kind.PAYMENT:
            reason = _apply_notice(gateway, notice)
            if reason is None:
                applied += 1
            else:
                reasons.append(f"{notice.attempt_key}: {reason}")
            continue
        queue.append((notice, attempt, names))
    batch_ids: set[int] = set()
    while queue:
        this_round, later, seen = [], [], set()
        for item in queue:
            (later if item[1].payment_id in seen else this_round).append(item)
            seen.add(item[1].payment_id)
        queue = later
        ids = [a.payment_id for _, a, _ in this_round]
        payments = {p.pk: p for p in lock_payments(Payment.objects.filter(pk__in=ids))}
        groups: dict[tuple, list[Payment]] = {}
        references: dict[int, dict[str, str]] = {}
        for notice, attempt, names in this_round:
            payment = payments[attempt.payment_id]
            name = next((n for n in names if payment.status in transition_info(n).sources), None)
            if name is None:
                why = f"{notice.type} not allowed while payment is {payment.status}"
                reasons.append(f"{notice.attempt_key}: {why}")
                continue
            if notice.gateway_reference and not payment.gateway_reference:
                references[payment.pk] = {"gateway_reference": notice.gateway_reference}
            key: tuple = (name,)
            if name == "fail":
                key = (name, notice.failure_code or "failed", notice.failure_message, notice.retryable)
            groups.setdefault(key, []).append(payment)
        values_update(Payment, references, ["gateway_reference"])
        for pk, values in references.items():
            payments[pk].gateway_reference = values["gateway_reference"]
        for key, members in groups.items():
            kwargs = {"code": key[1], "message": key[2], "retryable": key[3]} if key[0] == "fail" else {}
            done = bulk_transition(members, key[0], actor=f"gateway:{gateway.slug}", kwargs=kwargs)
            applied += len(done)
            batch_ids.update(p.batch_id for p in done if p.batch_id)
    for batch_id in sorted(batch_ids):
        enqueue_on_commit("payments.tasks.batch_check_task", batch_id)
    callback.status = GatewayCallback.Status.APPLIED if applied else GatewayCallback.Status.IGNORED
    callback.reason = "; ".join(reasons)[:500]
    callback.processed_at = timezone.now()
    callback.save(update_fields=["status", "reason", "processed_at"])
    return True


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
