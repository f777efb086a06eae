"""Gateway attempts: written and committed before the gateway is called, then executed outside it.

Every call that can move money is one GatewayAttempt row, created in the
transaction that claims the payment (or creates the refund) and committed
before the gateway hears of it. The attempt's idempotency key, made here
and only here, goes with the call, so a worker that dies mid-call and runs
again is answered from the gateway's record and never pays twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from payments.db import connection_released, copy_rows, insert_rows
from payments.gateways import (
    GatewayError,
    GatewayResult,
    gateway_for_method,
    gateway_for_payment,
    get_gateway,
    require_no_transaction,
)
from payments.models import GatewayAttempt, Payment, Refund
from payments.services.lifecycle.guards import ensure_may_move_money
from payments.services.lifecycle.locks import require_transaction

logger = logging.getLogger(__name__)
T = TypeVar("T")


def attempt_key(public_id: str, number: int) -> str:
    """The idempotency key of attempt `number` of a payment or refund: `pay_...-2`, `ref_...-1`."""
    return f"{public_id}-{number}"


def attempt_create(
    *, payment: Payment, refund: Refund | None = None, number: int | None = None
) -> GatewayAttempt:
    """Write the attempt (its first call counted) that must exist before the gateway is called.

    Runs in the transaction that claims the payment or creates the refund,
    with the payment locked (or not yet visible to anyone). A payment attempt
    routes the payment now: a batch row to its method's payout rail, a
    real-time payment to its method's gateway; a refund goes to the gateway
    that took the payment. Numbers count a payment's attempts (or a
    refund's) from 1. A payment attempt refuses a suspended merchant.
    """
    require_transaction()
    if refund is None:
        ensure_may_move_money(payment.merchant)
        payment.gateway = gateway_for_payment(payment).slug
        if number is None:
            number = payment.attempts.filter(kind=GatewayAttempt.Kind.PAYMENT).count() + 1
        owner, kind, gateway = payment.public_id, GatewayAttempt.Kind.PAYMENT, payment.gateway
    else:
        if number is None:
            number = refund.attempts.count() + 1
        owner, kind = refund.public_id, GatewayAttempt.Kind.REFUND
        gateway = payment.gateway or gateway_for_method(payment.method).slug
    attempt = GatewayAttempt(
        payment=payment,
        refund=refund,
        kind=kind,
        number=number,
        gateway=gateway,
        idempotency_key=attempt_key(owner, number),
        calls=1,
        last_call_at=timezone.now(),
    )
    insert_rows([attempt])
    return attempt


def attempts_create(payments: Sequence[Payment], *, now: datetime) -> None:
    """Write the first attempts of many created payments at once (a batch chunk), calls not yet counted.

    Routes each payment (a batch row to its method's payout rail; updating
    `payment.gateway` in memory, the caller saves it with the claim). Runs in
    the transaction that claims them, with the payments locked.
    """
    require_transaction()
    routes: dict[tuple[str, bool], str] = {}
    attempts = []
    for p in payments:
        route = (p.method, p.batch_id is not None)
        if route not in routes:
            routes[route] = gateway_for_payment(p).slug
        p.gateway = routes[route]
        attempts.append(
            GatewayAttempt(
                payment=p,
                kind=GatewayAttempt.Kind.PAYMENT,
                number=1,
                gateway=p.gateway,
                idempotency_key=attempt_key(p.public_id, 1),
                calls=0,
                last_call_at=now,
            )
        )
    copy_rows(GatewayAttempt, attempts)


def gateway_call(call: Callable[[], T]) -> T:
    """Call a gateway, refusing to do it inside a transaction (payments/gateways.require_no_transaction).

    Every service reaches a gateway through this helper: submissions,
    batch submissions, closes, reconciliation queries. A pooled database
    connection is handed back to its pool for the wait.
    """
    require_no_transaction()
    connection_released()  # a pooled connection is not held while the gateway takes its time
    return call()


def attempt_call(attempt: GatewayAttempt) -> GatewayResult | None:
    """Call the gateway for a pending attempt (its call already counted); return its answer.

    A GatewayError is recorded on the attempt, which stays pending: the
    sweeper calls again later with the same idempotency key. None then.
    """
    gateway = get_gateway(attempt.gateway)
    try:
        if attempt.kind == GatewayAttempt.Kind.REFUND:
            return gateway_call(lambda: gateway.submit_refund(attempt.refund, attempt))
        return gateway_call(lambda: gateway.submit_payment(attempt.payment, attempt))
    except GatewayError as exc:
        GatewayAttempt.objects.filter(pk=attempt.pk).update(error=str(exc)[:500])
        logger.warning("gateway call for %s failed: %s", attempt.idempotency_key, exc)
        return None


def attempt_resume_claim(*, attempt_id: int, stale_before: datetime) -> GatewayAttempt | None:
    """Take an overdue pending attempt for another call (its worker died), or dead-letter it.

    A conditional update counts the call, so two sweepers never both call.
    Return the attempt to call, or None when someone else has it, it is no
    longer pending, or it has used up its calls (then it is marked dead).
    """
    claimed = GatewayAttempt.objects.filter(
        pk=attempt_id, status=GatewayAttempt.Status.PENDING, last_call_at__lt=stale_before
    ).update(calls=F("calls") + 1, last_call_at=timezone.now())
    if not claimed:
        return None
    attempt = GatewayAttempt.objects.select_related("payment", "refund").get(pk=attempt_id)
    if attempt.calls > settings.PAYDESK_MAX_ATTEMPTS:
        GatewayAttempt.objects.filter(pk=attempt_id).update(
            status=GatewayAttempt.Status.DEAD, error="gave up after repeated gateway errors"
        )
        logger.error("attempt %s dead-lettered", attempt.idempotency_key)
        return None
    return attempt
