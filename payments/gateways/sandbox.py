"""The built-in sandbox gateway (DESIGN section 7).

It keeps its own record of every operation keyed by the attempt's idempotency
key, so a repeated submission is answered from the record and never executed
twice. Outcomes are chosen by the last four characters of the beneficiary
account and delivered later as signed HTTP callbacks sent by a worker.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import timedelta

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from payments.db import copy_rows, insert_with_children
from payments.gateways import (
    CallbackRejected,
    Gateway,
    GatewayResult,
    Outcome,
    VerifiedCallback,
    notice,
)
from payments.models import GatewayAttempt, Payment, Refund, SandboxNotice, SandboxOperation
from payments.queue import enqueue

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Sandbox-Signature"
CALLBACK_TYPES = (
    "payment.succeeded",
    "payment.failed",
    "payment.requires_action",
    "payment.reversed",
    "refund.succeeded",
    "refund.failed",
)
FAILURES = {
    "0002": ("card_declined", "The card was declined.", False),
    "0051": ("insufficient_funds", "Insufficient funds in the source account.", False),
    "0119": ("processing_error", "A temporary processing error occurred; retry.", True),
}


def sign(body: bytes, timestamp: int, secret: str | None = None) -> str:
    secret = secret if secret is not None else settings.SANDBOX_GATEWAY_SECRET
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _plan(op_kind: str, account: str, first_try: bool) -> tuple[dict, list[tuple[str, dict, float]]]:
    """Return the immediate answer and the callbacks (type, data, delay seconds) an operation gets."""
    if op_kind == "refund":
        return {"outcome": Outcome.PROCESSING}, [("refund.succeeded", {}, 0)]
    suffix = account[-4:]
    later = settings.SANDBOX_FOLLOWUP_DELAY
    if suffix in FAILURES and (suffix != "0119" or first_try):
        code, message, retryable = FAILURES[suffix]
        failure = {"failure_code": code, "failure_message": message, "retryable": retryable}
        return {"outcome": Outcome.PROCESSING}, [("payment.failed", failure, 0)]
    if suffix == "3155":
        return {"outcome": Outcome.REQUIRES_ACTION}, [("payment.succeeded", {}, later)]
    if suffix == "0077":
        return {"outcome": Outcome.PROCESSING}, [
            ("payment.succeeded", {}, 0),
            ("payment.reversed", {"failure_code": "chargeback"}, later),
        ]
    return {"outcome": Outcome.PROCESSING}, [("payment.succeeded", {}, 0)]


def post_callback(url: str, body: bytes, headers: dict[str, str]) -> int:
    """Send one callback over HTTP and return the status code (patched in tests)."""
    response = requests.post(url, data=body, headers=headers, timeout=15)
    return response.status_code


class SandboxGateway(Gateway):
    slug = "sandbox"
    payouts = True
    CALLBACK_TYPES = frozenset(
        {
            "payment.succeeded",
            "payment.failed",
            "payment.requires_action",
            "payment.reversed",
            "refund.succeeded",
            "refund.failed",
        }
    )

    def settings_problems(self) -> list[tuple[str, str]]:
        if not settings.SANDBOX_GATEWAY_SECRET:
            return [("SANDBOX_GATEWAY_SECRET", "is not set: the sandbox signs its callbacks with it")]
        return []

    # Submission -----------------------------------------------------------
    def submit_payment(self, payment: Payment, attempt: GatewayAttempt) -> GatewayResult:
        return self._execute(
            key=attempt.idempotency_key,
            kind="payment",
            payment_reference=payment.public_id,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            account=payment.beneficiary_account[-4:],  # its record keeps what chooses the outcome
            first_try=attempt.number == 1,  # 0119 fails a payment's first attempt only
        )

    def submit_refund(self, refund: Refund, attempt: GatewayAttempt) -> GatewayResult:
        return self._execute(
            key=attempt.idempotency_key,
            kind="refund",
            payment_reference=refund.payment.public_id,
            amount_minor=refund.amount_minor,
            currency=refund.payment.currency,
            account=refund.payment.beneficiary_account[-4:],
            first_try=True,
        )

    def submit_batch(self, items: list[tuple[Payment, GatewayAttempt]]) -> list[GatewayResult | None]:
        """Execute many payments in one call, as a bank takes a payment file.

        One SandboxOperation per attempt key, inserted in bulk; a key seen
        before is answered from the record and never executed again. The
        outcomes of the new operations are delivered as signed callbacks that
        each carry many of them in `data.results` (one per outcome type and
        delay, up to BATCH_NOTICE_RESULTS results each), sent in order.
        """
        if not items:
            return []
        keys = [attempt.idempotency_key for _, attempt in items]
        known = {op.key: op for op in SandboxOperation.objects.filter(key__in=keys)}
        plans: dict[str, tuple[str, list]] = {}
        ops = []
        for payment, attempt in items:
            key = attempt.idempotency_key
            if key in known or key in plans:
                continue
            # A payment's first attempt is its first try (0119 fails on it, succeeds on a retry).
            answer, callbacks = _plan("payment", payment.beneficiary_account, attempt.number == 1)
            reference = "sbx_" + secrets.token_hex(10)
            if answer["outcome"] == Outcome.REQUIRES_ACTION:
                answer["next_action"] = {
                    "type": "redirect_to_url",
                    "url": f"{settings.PAYDESK_PUBLIC_URL}/sandbox/authenticate/{reference}",
                }
            answer["gateway_reference"] = reference
            plans[key] = (reference, callbacks)
            ops.append(
                SandboxOperation(
                    key=key,
                    kind="payment",
                    gateway_reference=reference,
                    payment_reference=payment.public_id,
                    amount_minor=payment.amount_minor,
                    currency=payment.currency,
                    account=payment.beneficiary_account[-4:],  # its record keeps what chooses the outcome
                    answer=answer,
                )
            )
        if ops:
            with transaction.atomic():
                try:
                    with transaction.atomic():
                        copy_rows(SandboxOperation, ops)
                    stored = {op.key: op for op in ops}
                except IntegrityError:
                    # Another caller with some of the same keys got in first: keep its record.
                    SandboxOperation.objects.bulk_create(ops, batch_size=1000, ignore_conflicts=True)
                    stored = {op.key: op for op in SandboxOperation.objects.filter(key__in=list(plans))}
                mine = [stored[k] for k in plans if stored[k].gateway_reference == plans[k][0]]
                if mine and mine[0].pk is None:
                    mine[0] = SandboxOperation.objects.get(key=mine[0].key)  # the anchor needs its key
                _batch_notices(mine, plans)
            known.update(stored)
        return [_result(known[key].answer) for key in keys]

    def _execute(self, *, key: str, first_try: bool, **fields) -> GatewayResult:
        """Execute an operation once per key; a repeated key is answered from the record.

        The insert comes first: a repeat (rare: a resumed worker) fails on the
        unique key and reads the stored answer instead.
        """
        answer, callbacks = _plan(fields["kind"], fields["account"], first_try)
        reference = "sbx_" + secrets.token_hex(10)
        if answer["outcome"] == Outcome.REQUIRES_ACTION:
            answer["next_action"] = {
                "type": "redirect_to_url",
                "url": f"{settings.PAYDESK_PUBLIC_URL}/sandbox/authenticate/{reference}",
            }
        answer["gateway_reference"] = reference
        now = timezone.now()
        delay = settings.SANDBOX_CALLBACK_DELAY
        op = SandboxOperation(key=key, gateway_reference=reference, answer=answer, **fields)
        notices = [
            SandboxNotice(
                seq=i,
                event_id="sbxevt_" + secrets.token_hex(12),
                type=kind,
                data={"attempt_key": key, "gateway_reference": reference, **data},
                due_at=now + timedelta(seconds=delay + extra),
            )
            for i, (kind, data, extra) in enumerate(callbacks)
        ]
        try:
            _insert_operation(op, notices)
        except IntegrityError:
            # This key was executed before (a resumed worker, a concurrent call): answer from the record.
            existing = SandboxOperation.objects.get(key=key)
        else:
            existing = op
        answer = existing.answer
        return GatewayResult(
            outcome=answer["outcome"],
            gateway_reference=answer["gateway_reference"],
            next_action=answer.get("next_action"),
            raw=answer,
        )

    def close(self, attempt: GatewayAttempt) -> GatewayResult:
        """Close an operation awaiting the customer: its pending outcomes are dropped from the record.

        An operation whose success was already sent is paid: that is answered.
        """
        with transaction.atomic():
            op = SandboxOperation.objects.select_for_update().filter(key=attempt.idempotency_key).first()
            if op is None:
                return GatewayResult(outcome=Outcome.CLOSED)
            if op.notices.filter(type="payment.succeeded", sent_at__isnull=False).exists():
                return GatewayResult(outcome=Outcome.SUCCEEDED, gateway_reference=op.gateway_reference)
            op.notices.filter(sent_at=None).delete()
            op.answer = {**op.answer, "closed": True}
            op.save(update_fields=["answer"])
        return GatewayResult(outcome=Outcome.CLOSED, gateway_reference=op.gateway_reference)

    # Reconciliation -------------------------------------------------------
    def query_refund(self, attempt: GatewayAttempt) -> GatewayResult | None:
        """Answer from the sandbox's own record: the refund's outcome once its callback is due.

        The outcome of a refund is decided when it is executed (stored as the
        operation's notice); until that notice is due, the sandbox, like a
        provider still processing, cannot tell yet and answers None.
        """
        op = SandboxOperation.objects.filter(key=attempt.idempotency_key, kind="refund").first()
        if op is None:
            return None  # never executed here: nothing to report
        decided = (
            op.notices.filter(type__startswith="refund.", due_at__lte=timezone.now()).order_by("seq").first()
        )
        if decided is None:
            return None
        data = decided.data or {}
        return notice(
            type=decided.type,
            attempt_key=attempt.idempotency_key,
            gateway_reference=str(data.get("gateway_reference") or op.gateway_reference),
            failure_code=str(data.get("failure_code") or ""),
            failure_message=str(data.get("failure_message") or ""),
        )

    # Callbacks ------------------------------------------------------------
    def verify_callback(self, request: HttpRequest) -> VerifiedCallback:
        header = request.headers.get(SIGNATURE_HEADER, "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            timestamp = int(parts["t"])
            given = parts["v1"]
        except (KeyError, ValueError):
            raise CallbackRejected("missing or malformed signature header") from None
        expected = sign(request.body, timestamp).split("v1=", 1)[1]
        if not hmac.compare_digest(given, expected):
            raise CallbackRejected("signature mismatch")
        if abs(time.time() - timestamp) > settings.SANDBOX_CALLBACK_TOLERANCE:
            raise CallbackRejected("timestamp outside tolerance (replay)")
        try:
            payload = json.loads(request.body)
            event_id = str(payload["id"])
            event_type = str(payload["type"])
            data = payload["data"]
        except (ValueError, KeyError, TypeError):
            raise CallbackRejected("malformed body") from None
        if event_type not in CALLBACK_TYPES or not isinstance(data, dict):
            raise CallbackRejected("unknown event type")
        items = data.get("results") if "results" in data else [data]
        if not isinstance(items, list):
            raise CallbackRejected("malformed results")
        notices = []
        for item in items:
            if not isinstance(item, dict) or not item.get("attempt_key"):
                raise CallbackRejected("result without attempt_key")
            notices.append(
                notice(
                    type=str(item.get("type", event_type)),
                    attempt_key=str(item["attempt_key"]),
                    gateway_reference=str(item.get("gateway_reference") or ""),
                    failure_code=str(item.get("failure_code") or ""),
                    failure_message=str(item.get("failure_message") or ""),
                    retryable=bool(item.get("retryable", False)),
                )
            )
        return VerifiedCallback(event_id, event_type, payload, notices)

    def acknowledge(self, accepted: bool) -> HttpResponse:
        if accepted:
            return HttpResponse('{"received": true}', content_type="application/json")
        return HttpResponse('{"received": false}', content_type="application/json", status=400)


def _insert_operation(op: SandboxOperation, notices: list[SandboxNotice]) -> None:
    """Insert an operation and its notices atomically, and enqueue their delivery on commit.

    Raise IntegrityError, with nothing written, if the key was executed before.
    """
    insert_with_children(op, notices, "operation")
    transaction.on_commit(lambda: enqueue_delivery(op.pk))


BATCH_NOTICE_RESULTS = 1000
# Order of the grouped callbacks that are due at the same time.
_TYPE_ORDER = {t: i for i, t in enumerate(CALLBACK_TYPES)}


def _result(answer: dict) -> GatewayResult:
    return GatewayResult(
        outcome=answer["outcome"],
        gateway_reference=answer["gateway_reference"],
        next_action=answer.get("next_action"),
        raw=answer,
    )


def _batch_notices(ops: list[SandboxOperation], plans: dict[str, tuple[str, list]]) -> None:
    """Queue the outcomes of freshly executed operations as grouped callbacks (inside the transaction).

    The notices hang off one anchor operation, so that one delivery task
    sends them in order: immediate outcomes first, follow-ups (3155's success,
    0077's reversal) after their delay.
    """
    if not ops:
        return
    groups: dict[tuple[float, str], list[dict]] = {}
    for op in ops:
        reference, callbacks = plans[op.key]
        for kind, data, extra in callbacks:
            item = {"type": kind, "attempt_key": op.key, "gateway_reference": reference, **data}
            groups.setdefault((extra, kind), []).append(item)
    anchor = ops[0]
    now = timezone.now()
    delay = settings.SANDBOX_CALLBACK_DELAY
    notices = []
    ordered = sorted(groups.items(), key=lambda g: (g[0][0], _TYPE_ORDER.get(g[0][1], 99)))
    for (extra, kind), results in ordered:
        for start in range(0, len(results), BATCH_NOTICE_RESULTS):
            notices.append(
                SandboxNotice(
                    operation=anchor,
                    seq=len(notices),
                    event_id="sbxevt_" + secrets.token_hex(12),
                    type=kind,
                    data={"results": results[start : start + BATCH_NOTICE_RESULTS]},
                    due_at=now + timedelta(seconds=delay + extra),
                )
            )
    SandboxNotice.objects.bulk_create(notices)
    transaction.on_commit(lambda: enqueue_delivery(anchor.pk))


def enqueue_delivery(operation_id: int) -> None:
    enqueue("payments.tasks.sandbox_deliver_task", operation_id)


def deliver_notices(operation_id: int) -> int:
    """Send the operation's due callbacks in order; return how many were delivered.

    Each notice's attempt counter is committed before it is sent. A notice
    not yet due is waited for if it is due within a few seconds; otherwise
    the sweeper picks it up later.
    """
    sent = 0
    url = f"{settings.PAYDESK_PUBLIC_URL}/callbacks/sandbox/"
    for pending in SandboxNotice.objects.filter(operation_id=operation_id, sent_at=None):
        wait = (pending.due_at - timezone.now()).total_seconds()
        if wait > 5:
            break
        if wait > 0:
            time.sleep(wait)
        claimed = SandboxNotice.objects.filter(pk=pending.pk, sent_at=None, attempts=pending.attempts).update(
            attempts=pending.attempts + 1, last_attempt_at=timezone.now()
        )
        if not claimed:
            break  # another worker is sending this operation's notices
        body = json.dumps(
            {
                "id": pending.event_id,
                "type": pending.type,
                "created": int(pending.due_at.timestamp()),
                "data": pending.data,
            },
            separators=(",", ":"),
        ).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, int(time.time()))}
        try:
            status = post_callback(url, body, headers)
        except requests.RequestException as exc:
            SandboxNotice.objects.filter(pk=pending.pk).update(last_error=str(exc)[:500])
            break
        if not 200 <= status < 300:
            SandboxNotice.objects.filter(pk=pending.pk).update(last_error=f"HTTP {status}")
            break
        SandboxNotice.objects.filter(pk=pending.pk).update(sent_at=timezone.now(), last_error="")
        sent += 1
    return sent
