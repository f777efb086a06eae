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
from collections.abc import Callable
from datetime import timedelta

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from payments.db import connection_released, copy_rows, insert_with_children
from payments.gateways import (
    CallbackRejected,
    Gateway,
    GatewayError,
    GatewayResult,
    Outcome,
    VerifiedCallback,
    http_call,
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


def check_signature(body: bytes, header: str) -> None:
    """Check an X-Sandbox-Signature header (callbacks, and requests to the remote sandbox).

    Raise CallbackRejected when it is missing, does not match, or is older
    than SANDBOX_CALLBACK_TOLERANCE seconds (a replay).
    """
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise CallbackRejected("missing or malformed signature header") from None
    if not hmac.compare_digest(given, sign(body, timestamp).split("v1=", 1)[1]):
        raise CallbackRejected("signature mismatch")
    if abs(time.time() - timestamp) > settings.SANDBOX_CALLBACK_TOLERANCE:
        raise CallbackRejected("timestamp outside tolerance (replay)")


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
    # In process by default; over HTTP to `manage.py sandbox_gateway` when PAYDESK_SANDBOX_URL is set.
    def submit_payment(self, payment: Payment, attempt: GatewayAttempt) -> GatewayResult:
        operation = _payment_operation(payment, attempt)
        if remote_url():
            return _result(remote_call("execute", operation))
        return _result(execute_operation(**operation))

    def submit_refund(self, refund: Refund, attempt: GatewayAttempt) -> GatewayResult:
        operation = {
            "key": attempt.idempotency_key,
            "kind": "refund",
            "payment_reference": refund.payment.public_id,
            "amount_minor": refund.amount_minor,
            "currency": refund.payment.currency,
            "account": refund.payment.beneficiary_account[-4:],  # all that chooses the outcome
            "first_try": True,
        }
        if remote_url():
            return _result(remote_call("execute", operation))
        return _result(execute_operation(**operation))

    def submit_batch(self, items: list[tuple[Payment, GatewayAttempt]]) -> list[GatewayResult | None]:
        """Execute many payments in one call, as a bank takes a payment file (see execute_batch)."""
        if not items:
            return []
        operations = [_payment_operation(payment, attempt) for payment, attempt in items]
        if remote_url():
            answers = remote_call("batch", {"operations": operations})["answers"]
        else:
            answers = execute_batch(operations)
        return [_result(answer) for answer in answers]

    def close(self, attempt: GatewayAttempt) -> GatewayResult:
        """Close an operation awaiting the customer: its pending outcomes are dropped from the record.

        An operation whose success was already sent is paid: that is answered.
        """
        key = attempt.idempotency_key
        answer = remote_call("close", {"key": key}) if remote_url() else close_operation(key)
        return GatewayResult(outcome=answer["outcome"], gateway_reference=answer.get("gateway_reference", ""))

    # Reconciliation -------------------------------------------------------
    def query_refund(self, attempt: GatewayAttempt) -> GatewayResult | None:
        """Answer from the sandbox's own record: the refund's outcome once its callback is due.

        The outcome of a refund is decided when it is executed (stored as the
        operation's notice); until that notice is due, the sandbox, like a
        provider still processing, cannot tell yet and answers None.
        """
        key = attempt.idempotency_key
        found = remote_call("refund_status", {"key": key})["notice"] if remote_url() else refund_status(key)
        return None if found is None else notice(attempt_key=key, **found)

    # Callbacks ------------------------------------------------------------
    def verify_callback(self, request: HttpRequest) -> VerifiedCallback:
        check_signature(request.body, request.headers.get(SIGNATURE_HEADER, ""))
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


def customer_authenticate(reference: str, *, approve: bool) -> bool:
    """The 3-D Secure page's decision, on this process's record or the remote sandbox's."""
    if remote_url():
        return bool(remote_call("authenticate", {"reference": reference, "approve": approve})["decided"])
    return authenticate_operation(reference, approve=approve)


def authenticate_operation(reference: str, *, approve: bool) -> bool:
    """Play the customer on the 3-D Secure page: approve (succeeds now) or decline (fails now).

    The operation's pending success is brought forward, or turned into a failure
    (`authentication_failed`), and delivered as the usual signed callback.
    Return False if there is nothing left to decide (already decided, closed, unknown).
    """
    with transaction.atomic():
        op = SandboxOperation.objects.select_for_update().filter(gateway_reference=reference).first()
        if op is None:
            return False
        pending = op.notices.filter(sent_at=None, type="payment.succeeded").order_by("seq").first()
        if pending is None:
            return False
        if not approve:
            pending.type = "payment.failed"
            pending.data = {
                **pending.data,
                "failure_code": "authentication_failed",
                "failure_message": "The customer declined the authentication.",
                "retryable": False,
            }
        pending.due_at = timezone.now()
        pending.save(update_fields=["type", "data", "due_at"])
        transaction.on_commit(lambda: enqueue_delivery(op.pk))
    return True


def _payment_operation(payment: Payment, attempt: GatewayAttempt) -> dict:
    return {
        "key": attempt.idempotency_key,
        "kind": "payment",
        "payment_reference": payment.public_id,
        "amount_minor": payment.amount_minor,
        "currency": payment.currency,
        "account": payment.beneficiary_account[-4:],  # its record keeps only what chooses the outcome
        "first_try": attempt.number == 1,  # 0119 fails a payment's first attempt only
    }


def _answer(kind: str, account: str, first_try: bool) -> tuple[dict, list, str]:
    answer, callbacks = _plan(kind, account, first_try)
    reference = "sbx_" + secrets.token_hex(10)
    if answer["outcome"] == Outcome.REQUIRES_ACTION:
        answer["next_action"] = {
            "type": "redirect_to_url",
            "url": f"{settings.PAYDESK_PUBLIC_URL}/sandbox/authenticate/{reference}",
        }
    answer["gateway_reference"] = reference
    return answer, callbacks, reference


def execute_operation(*, key: str, first_try: bool, **fields) -> dict:
    """Execute an operation once per key and return its answer; a repeated key is answered from the record.

    The insert comes first: a repeat (rare: a resumed worker) fails on the
    unique key and reads the stored answer instead.
    """
    answer, callbacks, reference = _answer(fields["kind"], fields["account"], first_try)
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
        return SandboxOperation.objects.get(key=key).answer
    return answer


def execute_batch(operations: list[dict]) -> list[dict]:
    """Execute many payment operations at once and return one answer each, in order.

    One SandboxOperation per key, inserted in bulk; a key seen before is
    answered from the record and never executed again. The outcomes of the
    new operations are delivered as signed callbacks that each carry many of
    them in `data.results` (one per outcome type and delay, up to
    BATCH_NOTICE_RESULTS results each), sent in order.
    """
    keys = [o["key"] for o in operations]
    known = {op.key: op for op in SandboxOperation.objects.filter(key__in=keys)}
    plans: dict[str, tuple[str, list]] = {}
    ops = []
    for o in operations:
        key = o["key"]
        if key in known or key in plans:
            continue
        answer, callbacks, reference = _answer("payment", o["account"], o["first_try"])
        plans[key] = (reference, callbacks)
        fields = {k: v for k, v in o.items() if k not in ("key", "first_try", "kind")}
        ops.append(
            SandboxOperation(key=key, kind="payment", gateway_reference=reference, answer=answer, **fields)
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
    return [known[key].answer for key in keys]


def close_operation(key: str) -> dict:
    """Close an operation awaiting the customer; answer `closed`, or `succeeded` if it was paid."""
    with transaction.atomic():
        op = SandboxOperation.objects.select_for_update().filter(key=key).first()
        if op is None:
            return {"outcome": Outcome.CLOSED}
        if op.notices.filter(type="payment.succeeded", sent_at__isnull=False).exists():
            return {"outcome": Outcome.SUCCEEDED, "gateway_reference": op.gateway_reference}
        op.notices.filter(sent_at=None).delete()
        op.answer = {**op.answer, "closed": True}
        op.save(update_fields=["answer"])
    return {"outcome": Outcome.CLOSED, "gateway_reference": op.gateway_reference}


def refund_status(key: str) -> dict | None:
    """The decided outcome of a refund operation (its notice, once due), or None."""
    op = SandboxOperation.objects.filter(key=key, kind="refund").first()
    if op is None:
        return None  # never executed here: nothing to report
    decided = (
        op.notices.filter(type__startswith="refund.", due_at__lte=timezone.now()).order_by("seq").first()
    )
    if decided is None:
        return None
    data = decided.data or {}
    return {
        "type": decided.type,
        "gateway_reference": str(data.get("gateway_reference") or op.gateway_reference),
        "failure_code": str(data.get("failure_code") or ""),
        "failure_message": str(data.get("failure_message") or ""),
    }


# The remote sandbox (manage.py sandbox_gateway) -------------------------------------------
REMOTE_ACTIONS = ("execute", "batch", "close", "refund_status")


def remote_url() -> str:
    return settings.PAYDESK_SANDBOX_URL


def remote_call(action: str, payload: dict) -> dict:
    """POST one signed request to the remote sandbox and return its JSON answer.

    Signed like the sandbox's callbacks (X-Sandbox-Signature over the body with
    SANDBOX_GATEWAY_SECRET). Network failures, timeouts and answers other
    than 200 raise GatewayError: the attempt stays pending and is repeated
    with the same idempotency key, answered from the sandbox's record.
    """
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, int(time.time()))}
    url = f"{remote_url().rstrip('/')}/v1/{action}"
    response = http_call("POST", url, data=body, headers=headers)
    if response.status_code != 200:
        raise GatewayError(f"sandbox {action} answered HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise GatewayError(f"sandbox {action} answered with a body that is not JSON") from None


def remote_verify(body: bytes, header: str) -> dict:
    """Check a remote sandbox request's signature and freshness; return its payload (or CallbackRejected)."""
    check_signature(body, header)
    try:
        payload = json.loads(body)
    except ValueError:
        raise CallbackRejected("malformed body") from None
    if not isinstance(payload, dict):
        raise CallbackRejected("malformed body")
    return payload


def remote_serve(action: str, payload: dict) -> dict:
    """Do what a remote request asks on this process's record (the sandbox_gateway command's handler)."""
    if action == "execute":
        fields = {
            k: payload[k] for k in ("key", "kind", "payment_reference", "amount_minor", "currency", "account")
        }
        return execute_operation(first_try=bool(payload.get("first_try", True)), **fields)
    if action == "batch":
        return {"answers": execute_batch(list(payload["operations"]))}
    if action == "close":
        return close_operation(str(payload["key"]))
    if action == "refund_status":
        return {"notice": refund_status(str(payload["key"]))}
    if action == "authenticate":
        return {
            "decided": authenticate_operation(str(payload["reference"]), approve=bool(payload["approve"]))
        }
    raise KeyError(action)


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


# Who sends an operation's callbacks: a django-q2 worker (in process), or the remote sandbox's own
# sender threads (set by manage.py sandbox_gateway).
_deliverer: Callable[[int], None] | None = None


def set_deliverer(deliverer: Callable[[int], None] | None) -> None:
    global _deliverer
    _deliverer = deliverer


def enqueue_delivery(operation_id: int) -> None:
    if _deliverer is not None:
        _deliverer(operation_id)
        return
    enqueue("payments.tasks.sandbox_deliver_task", operation_id)


def overdue_operations(*, now, stale, limit: int) -> list[int]:
    """The operations with a callback due before `now` and not tried since `stale` (for a sweeper)."""
    notices = SandboxNotice.objects.filter(sent_at=None, due_at__lt=now).exclude(last_attempt_at__gte=stale)
    return list(notices.values_list("operation_id", flat=True).distinct()[:limit])


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
            connection_released()  # a pooled connection is not held while waiting
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
