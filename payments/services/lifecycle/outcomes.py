"""Applying what gateways report: one table from outcomes to transitions, for one payment or many.

Every outcome (an answer to a call, a callback's notice, a reconciliation
query's answer, a bank's status report) is a GatewayResult and goes through
here, so the mapping from outcomes to transitions exists once:

- the first transition of PAYMENT_OUTCOMES[outcome] that the payment's state
  allows is applied (getpaid's ALLOWED_CALLBACKS, but one table for every
  gateway); refund outcomes settle the refund;
- an outcome for an attempt that a retry has superseded moves nothing and is
  recorded with the reason;
- money never moves silently: a success for a payment we consider cancelled
  or failed, or for a superseded attempt, is an Incident (`payment.late_success`),
  told to the merchant and refunded automatically when the merchant asks for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from merchants.models import Merchant
from payments.channels.messages import LATE_SUCCESS
from payments.db import answer_without_transition, values_update
from payments.gateways import GatewayResult, Kind, Outcome
from payments.models import (
    GatewayAttempt,
    Incident,
    Payment,
    PaymentBatch,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from payments.queue import enqueue_on_commit
from payments.services.lifecycle.attempts import attempt_call, attempt_create
from payments.services.lifecycle.events import events_record
from payments.services.lifecycle.locks import lock_payment, lock_payments, lock_refund, require_transaction
from payments.services.lifecycle.transitions import bulk_transition, transition_apply, transition_info
from payments.services.notifications.fanout import merchant_notice

# What each outcome asks of a payment: the first of these transitions its state allows.
PAYMENT_OUTCOMES: dict[str, tuple[str, ...]] = {
    Outcome.PROCESSING: (),
    Outcome.REQUIRES_ACTION: ("require_action",),
    Outcome.SUCCEEDED: ("succeed",),
    Outcome.FAILED: ("fail",),
    Outcome.CLOSED: ("cancel", "fail"),
    # Money that came back: a paid payment is reversed; one not yet known as paid (a bank's return
    # before its status report, a returned payout) has failed, for the reason the return gives.
    Outcome.REVERSED: ("reverse", "fail"),
}
# States in which a success means money moved for a payment we had given up.
GIVEN_UP = frozenset({PaymentStatus.CANCELLED, PaymentStatus.FAILED})


def gateway_actor(attempt: GatewayAttempt) -> str:
    return f"gateway:{attempt.gateway}"


def transition_kwargs(name: str, result: GatewayResult) -> dict:
    """The arguments transition `name` takes from a gateway's result."""
    if name == "fail":
        return {
            "code": result.failure_code or "failed",
            "message": result.failure_message,
            "retryable": result.retryable,
        }
    if name == "require_action":
        return {"next_action": result.next_action}
    if name == "reverse":
        return {"code": result.failure_code, "message": result.failure_message}
    return {}


def answer_result(attempt: GatewayAttempt, result: GatewayResult) -> GatewayResult:
    """An answer to a call, labelled with the attempt it answers (gateways need not repeat it)."""
    kind = Kind.REFUND if attempt.kind == GatewayAttempt.Kind.REFUND else Kind.PAYMENT
    return replace(result, kind=kind, attempt_key=attempt.idempotency_key)


def outcome_apply(*, payment: Payment, attempt: GatewayAttempt, result: GatewayResult) -> str | None:
    """Apply one result about `attempt` to its locked payment; return why nothing moved, or None.

    Runs in the transaction that holds the payment's lock (lock_payment).
    """
    require_transaction()
    actor = gateway_actor(attempt)
    attempt_kind = Kind.REFUND if attempt.kind == GatewayAttempt.Kind.REFUND else Kind.PAYMENT
    if result.kind != attempt_kind:
        return f"{result.type} for a {attempt_kind} attempt"
    if attempt_kind == Kind.REFUND:
        return _refund_outcome(payment, attempt, result, actor)
    if result.outcome == Outcome.APPROVED:
        # The customer approved; the gateway waits for us to take the money (a worker asks for it).
        if payment.status not in (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION):
            return f"{result.type} needs no action while payment is {payment.status}"
        enqueue_on_commit("payments.tasks.payment_reconcile_task", payment.pk, True)
        return None
    names = PAYMENT_OUTCOMES.get(result.outcome)
    if names is None:
        return f"unknown outcome {result.type}"
    if not names:
        _note_reference(payment, result)
        return None
    latest = _latest_numbers([payment.pk]).get(payment.pk, attempt.number)
    if attempt.number < latest:
        reason = f"attempt {attempt.number} superseded by attempt {latest}"
        if result.outcome == Outcome.SUCCEEDED:
            late_success_record(payment=payment, attempt=attempt, result=result, reason=reason)
        return reason
    name = next((n for n in names if can_proceed(getattr(payment, n))), None)
    if name is None:
        reason = f"{result.type} not allowed while payment is {payment.status}"
        if result.outcome == Outcome.SUCCEEDED and payment.status in GIVEN_UP:
            late_success_record(payment=payment, attempt=attempt, result=result, reason=reason)
        return reason
    if result.gateway_reference and not payment.gateway_reference:
        payment.gateway_reference = result.gateway_reference
    transition_apply(payment, name, actor=actor, **transition_kwargs(name, result))
    if result.outcome == Outcome.SUCCEEDED:
        _mark_paid([attempt.pk])
    return None


def outcomes_apply(
    items: Sequence[tuple[GatewayAttempt, GatewayResult]], *, batches: dict[int, PaymentBatch] | None = None
) -> tuple[int, list[str], set[int]]:
    """Apply many results set-based; return (how many moved a payment, why others did not, batches touched).

    Payment outcomes are grouped by the transition they request and applied
    with one UPDATE per group filtered by the states the transition graph
    allows, plus one insert of their Events (bulk_transition); the payments
    are locked in primary-key order first. Refund outcomes and approvals go
    through `outcome_apply` one by one. A payment named twice (succeeded,
    then reversed) is applied in rounds, in the given order.
    """
    require_transaction()
    applied, reasons, batch_ids = 0, [], set()
    queue: list[tuple[GatewayAttempt, GatewayResult]] = []
    for attempt, result in items:
        if (
            attempt.kind == GatewayAttempt.Kind.PAYMENT
            and result.kind == Kind.PAYMENT
            and (result.outcome in PAYMENT_OUTCOMES)
        ):
            queue.append((attempt, result))
            continue
        reason = outcome_apply(payment=lock_payment(attempt.payment_id), attempt=attempt, result=result)
        if reason is None:
            applied += 1
        else:
            reasons.append(f"{result.attempt_key or attempt.idempotency_key}: {reason}")
    while queue:
        this_round, later, seen = [], [], set()
        for item in queue:
            (later if item[0].payment_id in seen else this_round).append(item)
            seen.add(item[0].payment_id)
        queue = later
        ids = [a.payment_id for a, _ in this_round]
        payments = {p.pk: p for p in lock_payments(Payment.objects.filter(pk__in=ids))}
        latest = _latest_numbers(ids)
        groups: dict[tuple, list[Payment]] = defaultdict(list)
        per_row: dict[int, dict] = {}
        references: dict[int, dict[str, str]] = {}
        paid: list[int] = []
        for attempt, result in this_round:
            payment = payments[attempt.payment_id]
            key = result.attempt_key or attempt.idempotency_key
            if attempt.number < latest.get(payment.pk, attempt.number):
                reason = f"attempt {attempt.number} superseded by attempt {latest[payment.pk]}"
                reasons.append(f"{key}: {reason}")
                if result.outcome == Outcome.SUCCEEDED:
                    late_success_record(payment=payment, attempt=attempt, result=result, reason=reason)
                continue
            names = PAYMENT_OUTCOMES[result.outcome]
            if result.gateway_reference and not payment.gateway_reference:
                references[payment.pk] = {"gateway_reference": result.gateway_reference}
                payment.gateway_reference = result.gateway_reference
            if not names:
                continue
            name = next((n for n in names if payment.status in transition_info(n).sources), None)
            if name is None:
                reason = f"{result.type} not allowed while payment is {payment.status}"
                reasons.append(f"{key}: {reason}")
                if result.outcome == Outcome.SUCCEEDED and payment.status in GIVEN_UP:
                    late_success_record(payment=payment, attempt=attempt, result=result, reason=reason)
                continue
            kwargs = transition_kwargs(name, result)
            if name == "require_action":
                per_row[payment.pk] = kwargs
                kwargs = {}
            groups[(name, tuple(sorted(kwargs.items())))].append(payment)
            if result.outcome == Outcome.SUCCEEDED:
                paid.append(attempt.pk)
        values_update(Payment, references, ["gateway_reference"])
        for (name, kwargs), members in groups.items():
            done = bulk_transition(
                members,
                name,
                actor=gateway_actor(next(a for a, _ in this_round if a.payment_id == members[0].pk)),
                kwargs=dict(kwargs),
                batches=batches,
                per_row={pk: v for pk, v in per_row.items()} if name == "require_action" else None,
            )
            applied += len(done)
            batch_ids.update(p.batch_id for p in done if p.batch_id)
        _mark_paid(paid)
    return applied, reasons, batch_ids


def answer_apply(*, attempt: GatewayAttempt, result: GatewayResult) -> Payment | None:
    """Record a gateway's answer to `attempt` and apply what it asks, once.

    The attempt is marked answered with a conditional update, so a second
    caller with the same answer (a resumed worker) changes nothing and gets
    None. Return the payment as the answer left it.
    """
    result = answer_result(attempt, result)
    if result.kind == Kind.PAYMENT and result.outcome == Outcome.PROCESSING:
        # The usual answer of a real-time payment moves nothing: one statement (payments/db.py).
        return answer_without_transition(
            payment_model=Payment,
            attempt_model=GatewayAttempt,
            payment_id=attempt.payment_id,
            attempt_id=attempt.pk,
            answered=GatewayAttempt.Status.ANSWERED,
            pending=GatewayAttempt.Status.PENDING,
            outcome=result.outcome,
            reference=result.gateway_reference,
            response=result.raw,
            now=timezone.now(),
        )
    with transaction.atomic():
        payment = lock_payment(attempt.payment_id)
        answered = GatewayAttempt.objects.filter(pk=attempt.pk, status=GatewayAttempt.Status.PENDING).update(
            status=GatewayAttempt.Status.ANSWERED,
            outcome=result.outcome,
            gateway_reference=result.gateway_reference,
            response=result.raw,
            answered_at=timezone.now(),
        )
        if not answered:
            return None
        reason = outcome_apply(payment=payment, attempt=attempt, result=result)
        if reason is not None:
            GatewayAttempt.objects.filter(pk=attempt.pk).update(error=reason[:500])
    return payment


def attempt_execute(
    *, attempt: GatewayAttempt, and_then: Callable[[Payment | None], None] | None = None
) -> Payment | None:
    """Call the gateway for a pending attempt (outside any transaction) and apply its answer.

    Return the payment as the answer left it, or None when nothing was
    applied (the call failed and the attempt stays pending for the sweeper,
    or someone else applied this answer first). `and_then(payment)`, if
    given, runs in the transaction that applies the answer (even when none
    was applied), so what it writes (the API's stored answer) commits with it.
    """
    result = attempt_call(attempt)
    if and_then is None:
        return None if result is None else answer_apply(attempt=attempt, result=result)
    with transaction.atomic():
        payment = None if result is None else answer_apply(attempt=attempt, result=result)
        and_then(payment)
    return payment


def _latest_numbers(payment_ids: list[int]) -> dict[int, int]:
    """The number of each payment's latest payment attempt."""
    rows = (
        GatewayAttempt.objects.filter(payment_id__in=payment_ids, kind=GatewayAttempt.Kind.PAYMENT)
        .values("payment_id")
        .annotate(latest=Max("number"))
        .values_list("payment_id", "latest")
    )
    return dict(rows)


def _note_reference(payment: Payment, result: GatewayResult) -> None:
    if result.gateway_reference and not payment.gateway_reference:
        payment.gateway_reference = result.gateway_reference
        payment.save(update_fields=["gateway_reference", "updated_at"])


def _mark_paid(attempt_ids: list[int]) -> None:
    """Remember which attempts took the money: a refund returns it through that attempt."""
    if attempt_ids:
        GatewayAttempt.objects.filter(pk__in=attempt_ids).update(outcome=Outcome.SUCCEEDED)


def paid_attempt(payment: Payment) -> GatewayAttempt | None:
    """The attempt that took the payment's money (the latest one that succeeded, else the latest)."""
    attempts = payment.attempts.filter(kind=GatewayAttempt.Kind.PAYMENT).order_by("-number")
    return attempts.filter(outcome=Outcome.SUCCEEDED).first() or attempts.first()


# Refunds ---------------------------------------------------------------------------------------


def _refund_outcome(
    payment: Payment, attempt: GatewayAttempt, result: GatewayResult, actor: str
) -> str | None:
    if attempt.refund_id is None:
        return "refund outcome for an attempt without refund"
    refund = lock_refund(attempt.refund_id)
    if result.gateway_reference and not refund.gateway_reference:
        refund.gateway_reference = result.gateway_reference
        refund.save(update_fields=["gateway_reference", "updated_at"])
    if result.outcome == Outcome.PROCESSING:
        return None
    if result.outcome not in (Outcome.SUCCEEDED, Outcome.FAILED):
        return f"unknown outcome {result.type}"
    return refund_settle(
        payment=payment,
        refund=refund,
        succeeded=result.outcome == Outcome.SUCCEEDED,
        code=result.failure_code,
        actor=actor,
    )


def refund_settle(
    *, payment: Payment, refund: Refund, succeeded: bool, actor: str, code: str = ""
) -> str | None:
    """Apply a refund's final outcome to the locked payment and refund; return why it was ignored, or None.

    A requested refund that succeeds adds to the payment's refunded amount and
    moves it to (partially) refunded; one that fails releases what it held.
    A late-success refund leaves the payment's state as it is and settles its
    Incident.
    """
    if refund.status != RefundStatus.PENDING:
        return f"refund already {refund.status}"
    if refund.kind == Refund.Kind.LATE_SUCCESS:
        if succeeded:
            refund.succeed()
        else:
            refund.fail(code or "refund_failed")
        refund.save()
        events_record(payment, f"refund.{refund.status}", actor=actor, refund=refund)
        Incident.objects.filter(refund=refund).update(
            status=Incident.Status.RESOLVED if succeeded else Incident.Status.OPEN,
            resolution=_("Refunded automatically.") if succeeded else _("The automatic refund failed."),
            resolved_at=timezone.now() if succeeded else None,
        )
        return None
    if not succeeded:
        refund.fail(code or "refund_failed")
        refund.save()
        events_record(payment, "refund.failed", actor=actor, refund=refund)
        return None
    total = payment.refunded_minor + refund.amount_minor
    name = "refund_full" if total == payment.amount_minor else "refund_partial"
    if not can_proceed(getattr(payment, name)):
        return f"payment is {payment.status}; refund cannot be applied"
    refund.succeed()
    refund.save()
    events_record(payment, "refund.succeeded", actor=actor, refund=refund)
    transition_apply(payment, name, refund.amount_minor, actor=actor)
    return None


# Late successes --------------------------------------------------------------------------------


def late_success_record(
    *, payment: Payment, attempt: GatewayAttempt, result: GatewayResult, reason: str
) -> Incident | None:
    """Record money a gateway took for a payment we had given up; refund it if the merchant asks.

    Once per attempt: a second report of the same late success changes
    nothing. Writes the Incident (the admin's review queue), a
    `payment.late_success` Event (webhooks, the timeline), a notice to the
    merchant's owners, and, when the merchant's setting covers the case, a
    refund through the attempt that took the money (sent by a worker).
    """
    require_transaction()
    if Incident.objects.filter(attempt=attempt, kind=Incident.Kind.LATE_SUCCESS).exists():
        return None
    reference = result.gateway_reference or attempt.gateway_reference
    GatewayAttempt.objects.filter(pk=attempt.pk).update(
        outcome=Outcome.SUCCEEDED, gateway_reference=reference
    )
    attempt.outcome, attempt.gateway_reference = Outcome.SUCCEEDED, reference
    incident = Incident.objects.create(
        merchant_id=payment.merchant_id,
        payment=payment,
        attempt=attempt,
        kind=Incident.Kind.LATE_SUCCESS,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        gateway_reference=reference,
        reason=reason[:500],
    )
    details = {"attempt": attempt.idempotency_key, "gateway_reference": reference, "reason": reason}
    events_record(
        payment, "payment.late_success", actor=gateway_actor(attempt), extra={"late_success": details}
    )
    merchant_notice(
        merchant_id=payment.merchant_id,
        type=LATE_SUCCESS,
        payload={"payment": payment.public_id, "amount": payment.amount, "currency": payment.currency},
    )
    policy = Merchant.objects.values_list("late_success_refund", flat=True).get(pk=payment.merchant_id)
    superseded = payment.status not in GIVEN_UP
    covered = {
        Merchant.LateSuccessRefund.CANCELLED: payment.status == PaymentStatus.CANCELLED,
        Merchant.LateSuccessRefund.CANCELLED_AND_FAILED: True,
    }.get(policy, False)
    if covered and not (superseded and policy == Merchant.LateSuccessRefund.CANCELLED):
        late_success_refund(incident=incident, actor="system:late_success")
    return incident


def late_success_refund(*, incident: Incident, actor: str) -> Refund:
    """Return the money of a late success through the attempt that took it (sent by a worker)."""
    require_transaction()
    payment = incident.payment
    refund = Refund.objects.create(
        payment=payment,
        kind=Refund.Kind.LATE_SUCCESS,
        source_attempt=incident.attempt,
        amount_minor=incident.amount_minor,
        reason=str(_("Automatic return of a payment received after it was given up.")),
    )
    attempt = attempt_create(payment=payment, refund=refund)
    incident.refund = refund
    incident.status = Incident.Status.REFUNDING
    incident.save(update_fields=["refund", "status"])
    events_record(payment, "refund.created", actor=actor, refund=refund)
    enqueue_on_commit("payments.tasks.attempt_run_task", attempt.pk)
    return refund
