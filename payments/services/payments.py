"""Use cases of a single payment: the only code that changes a payment's status."""

from __future__ import annotations

import logging
from decimal import Decimal
from functools import cache

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import TransitionNotAllowed, can_proceed

from merchants.models import ApiKey, Merchant
from payments.db import insert_rows
from payments.gateways import GatewayError, GatewayResult, Outcome, gateway_for_method, get_gateway
from payments.models import GatewayAttempt, Payment, PaymentStatus
from payments.models.payment import TRANSITION_EVENT_TYPES
from payments.queue import enqueue_on_commit
from payments.representations import payment_data
from payments.risk import hold_probability, risk_score
from payments.services.lifecycle.events import event_build, event_record, events_write
from payments.validation import FieldError, PaymentInvalid, validate_payment_input

logger = logging.getLogger(__name__)

# Which transition each immediate gateway answer requests (getpaid's ALLOWED_CALLBACKS).
ANSWER_TRANSITIONS = {
    Outcome.PROCESSING: None,
    Outcome.REQUIRES_ACTION: "require_action",
    Outcome.SUCCEEDED: "succeed",
    Outcome.FAILED: "fail",
}


class PaymentStateError(Exception):
    """The requested action is not allowed in the payment's current state."""

    def __init__(self, payment: Payment, action: str) -> None:
        super().__init__(
            _("A payment that is %(status)s cannot be %(action)s.")
            % {"status": payment.get_status_display().lower(), "action": action}
        )
        self.payment = payment
        self.code = "invalid_state"


def actor_for(user=None, api_key: ApiKey | None = None) -> str:
    if api_key is not None:
        return f"api_key:{api_key.public_id}"
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return "system"


def locked(payment_id: int) -> Payment:
    return Payment.objects.select_for_update().get(pk=payment_id)


def transition_apply(payment: Payment, name: str, *args, actor: str, **kwargs) -> None:
    """Apply transition `name` to a locked payment, save it and write its Event."""
    getattr(payment, name)(*args, **kwargs)
    if payment.is_final:
        payment.completed_at = timezone.now()
    payment.save()
    event_type = TRANSITION_EVENT_TYPES.get(name, f"payment.{payment.status}")
    event_record(payment=payment, type=event_type, actor=actor)


def payment_create(
    *,
    merchant: Merchant,
    data: dict,
    user=None,
    api_key: ApiKey | None = None,
    submit: bool = True,
) -> Payment:
    """Validate, persist, score and (unless held) submit one real-time payment.

    Creation and the claim for submission share one transaction, so a new
    payment is either held, left created (`submit=False`) or committed as
    processing with its GatewayAttempt; the gateway is called after commit.
    The row is inserted already held or claimed (nobody can see it before the
    commit, so this is the claim of DESIGN section 2 without a second write);
    its Events still record created, then held or processing.
    Raise PaymentInvalid with every field problem; nothing is stored then.
    """
    clean = validate_payment_input(merchant, data)
    actor = actor_for(user, api_key)
    payment = Payment(
        merchant=merchant,
        created_by=user if user is not None and user.is_authenticated else None,
        api_key=api_key,
        gateway=gateway_for_method(clean["method"]).slug,
        **clean,
    )
    score = risk_score(payment)
    payment.risk_score = Decimal(f"{score:.4f}")  # kept for the next fit (fit_risk_model)
    payment.risk_probability = hold_probability(score)
    # The first transition (hold, or the claim for submission) is applied before the insert, so
    # the row is written once, already in its state; its Events still say created, then that.
    first, next_actor = None, actor
    if payment.risk_probability > merchant.risk_threshold:
        first, next_actor = "hold", "system:risk"
    elif submit:
        first = "submit"
    attempt = None
    try:
        with transaction.atomic():
            if first is not None:
                getattr(payment, first)()
            insert_rows([payment])
            snapshot = payment_data(payment)
            events = [
                event_build(
                    payment=payment,
                    type="payment.created",
                    actor=actor,
                    snapshot={**snapshot, "status": PaymentStatus.CREATED},
                )
            ]
            if first is not None:
                if first == "submit":
                    attempt = _new_attempt(payment)
                events.append(
                    event_build(
                        payment=payment, type=f"payment.{payment.status}", actor=next_actor, snapshot=snapshot
                    )
                )
            events_write(events)
    except IntegrityError:
        if Payment.objects.filter(merchant=merchant, reference=clean["reference"]).exists():
            # A payment (perhaps a concurrent request's) already has this reference.
            raise PaymentInvalid([_duplicate_reference()]) from None
        raise
    if attempt is not None:
        # The payment as the gateway's answer left it (a callback may already have moved it on).
        payment = attempt_execute(attempt=attempt) or Payment.objects.get(pk=payment.pk)
    return payment


def _duplicate_reference() -> FieldError:
    return FieldError("reference", "duplicate_reference", _("A payment with this reference already exists."))


def payment_submit(*, payment_id: int, actor: str = "system") -> Payment:
    """Submit a created payment: claim, call the gateway outside any transaction, apply.

    Safe to call any number of times and concurrently: only the caller that
    moves the payment from created to processing makes a gateway attempt.
    """
    attempt = _claim(payment_id, actor)
    if attempt is not None:
        attempt_execute(attempt=attempt)
    return Payment.objects.select_related("batch").get(pk=payment_id)


def _claim(payment_id: int, actor: str) -> GatewayAttempt | None:
    with transaction.atomic():
        payment = locked(payment_id)
        if not can_proceed(payment.submit):
            return None
        number = payment.attempts.filter(kind=GatewayAttempt.Kind.PAYMENT).count() + 1
        return _claim_new(payment, actor, number=number)


def _claim_new(payment: Payment, actor: str, number: int = 1) -> GatewayAttempt:
    """Create the attempt and apply `submit` to a payment this transaction holds locked."""
    attempt = _new_attempt(payment, number)
    transition_apply(payment, "submit", actor=actor)
    return attempt


def _new_attempt(payment: Payment, number: int = 1) -> GatewayAttempt:
    """Write the attempt row (its first call counted) that must exist before the gateway is called."""
    gateway = gateway_for_method(payment.method)
    payment.gateway = gateway.slug
    attempt = GatewayAttempt(
        payment=payment,
        kind=GatewayAttempt.Kind.PAYMENT,
        number=number,
        gateway=gateway.slug,
        idempotency_key=f"{payment.public_id}-{number}",
        calls=1,
        last_call_at=timezone.now(),
    )
    insert_rows([attempt])
    return attempt


def attempt_execute(*, attempt: GatewayAttempt) -> Payment | None:
    """Call the gateway for a pending attempt (its call already counted) and apply the answer.

    Return the payment as the answer left it, or None when nothing was
    applied. A GatewayError leaves the attempt pending for the sweeper, which
    calls again with the same idempotency key.
    """
    gateway = get_gateway(attempt.gateway)
    try:
        if attempt.kind == GatewayAttempt.Kind.REFUND:
            result = gateway.submit_refund(attempt.refund, attempt)
        else:
            result = gateway.submit_payment(attempt.payment, attempt)
    except GatewayError as exc:
        GatewayAttempt.objects.filter(pk=attempt.pk).update(error=str(exc)[:500])
        logger.warning("gateway call for %s failed: %s", attempt.idempotency_key, exc)
        return None
    if attempt.kind == GatewayAttempt.Kind.REFUND:
        from payments.services.refunds import refund_apply_answer

        refund_apply_answer(attempt_id=attempt.pk, result=result)
        return None
    return attempt_apply_answer(attempt_id=attempt.pk, result=result, payment_id=attempt.payment_id)


def attempt_apply_answer(
    *, attempt_id: int, result: GatewayResult, payment_id: int | None = None
) -> Payment | None:
    """Record a gateway's immediate answer and apply the transition it allows, once.

    The attempt is marked answered with a conditional update, so a second
    caller with the same answer (a resumed worker) changes nothing and gets None.
    On PostgreSQL an answer that requests no transition (`processing`) is
    applied by one statement with the same locks and conditions
    (`_pending_answer_sql`); every other answer takes the locked path below.
    """
    if payment_id is None:
        payment_id = GatewayAttempt.objects.values_list("payment_id", flat=True).get(pk=attempt_id)
    name = ANSWER_TRANSITIONS.get(result.outcome)
    if name is None and connection.vendor == "postgresql":
        return _apply_pending_answer(attempt_id, payment_id, result)
    with transaction.atomic():
        payment = locked(payment_id)
        allowed = name is not None and can_proceed(getattr(payment, name))
        error = ""
        if name is not None and not allowed:
            error = f"answer {result.outcome} ignored in state {payment.status}"
        answered = GatewayAttempt.objects.filter(pk=attempt_id, status=GatewayAttempt.Status.PENDING).update(
            status=GatewayAttempt.Status.ANSWERED,
            outcome=result.outcome,
            gateway_reference=result.gateway_reference,
            response=result.raw,
            answered_at=timezone.now(),
            error=error,
        )
        if not answered:
            return None
        reference_changed = bool(result.gateway_reference) and not payment.gateway_reference
        if reference_changed:
            payment.gateway_reference = result.gateway_reference
        if allowed:
            actor = f"gateway:{payment.gateway}"
            transition_apply(payment, name, actor=actor, **_transition_kwargs(name, result))
        elif reference_changed:
            payment.save(update_fields=["gateway_reference", "updated_at"])
    return payment


@cache
def _pending_answer_sql() -> str:
    """One PostgreSQL statement doing what attempt_apply_answer's transaction does for an answer
    that requests no transition: lock the payment, mark the attempt answered if it is still
    pending, set the payment's gateway reference if it has none, and return the payment as it is.

    The payment row is locked first (the attempt update joins the locked row), as every other
    path locks a payment before its attempts. No row comes back when the attempt was not pending.
    """
    q = connection.ops.quote_name
    attempt_column = {f.name: q(f.column) for f in GatewayAttempt._meta.concrete_fields}
    names = [q(f.column) for f in Payment._meta.concrete_fields]
    sql = _PENDING_ANSWER_SQL.format(
        payment=q(Payment._meta.db_table),
        attempt=q(GatewayAttempt._meta.db_table),
        cols=", ".join(names),
        r_cols=", ".join(f"{q(Payment._meta.db_table)}.{n}" for n in names),
        **{f"a_{name}": column for name, column in attempt_column.items()},
        **{f"p_{f.name}": q(f.column) for f in Payment._meta.concrete_fields},
    )
    return sql


_PENDING_ANSWER_SQL = """
WITH p AS (SELECT {cols} FROM {payment} WHERE {p_id} = %s FOR UPDATE),
a AS (
    UPDATE {attempt}
    SET {a_status} = %s, {a_outcome} = %s, {a_gateway_reference} = %s, {a_response} = %s,
        {a_answered_at} = %s, {a_error} = ''
    FROM p
    WHERE {attempt}.{a_id} = %s AND {attempt}.{a_payment} = p.{p_id} AND {attempt}.{a_status} = %s
    RETURNING {attempt}.{a_payment}
),
r AS (
    UPDATE {payment} SET {p_gateway_reference} = %s, {p_updated_at} = %s
    FROM a
    WHERE {payment}.{p_id} = a.{a_payment} AND {payment}.{p_gateway_reference} = '' AND %s::text <> ''
    RETURNING {r_cols}
)
SELECT {cols} FROM r
UNION ALL
SELECT {cols} FROM p WHERE EXISTS (SELECT 1 FROM a) AND NOT EXISTS (SELECT 1 FROM r)
"""


def _apply_pending_answer(attempt_id: int, payment_id: int, result: GatewayResult) -> Payment | None:
    """attempt_apply_answer for an answer without transition, in one autocommitted statement."""
    now = timezone.now()
    response = GatewayAttempt._meta.get_field("response").get_db_prep_save(result.raw, connection)
    params = [
        payment_id,
        GatewayAttempt.Status.ANSWERED,
        result.outcome,
        result.gateway_reference,
        response,
        now,
        attempt_id,
        GatewayAttempt.Status.PENDING,
        result.gateway_reference,
        now,
        result.gateway_reference or "",
    ]
    if connection.in_atomic_block:
        with transaction.atomic():  # a savepoint, as the locked path's block would be
            rows = list(Payment.objects.raw(_pending_answer_sql(), params))
    else:
        rows = list(Payment.objects.raw(_pending_answer_sql(), params))
    return rows[0] if rows else None


def _transition_kwargs(name: str, result: GatewayResult) -> dict:
    if name == "fail":
        return {
            "code": result.failure_code or "failed",
            "message": result.failure_message,
            "retryable": result.retryable,
        }
    if name == "require_action":
        return {"next_action": result.next_action}
    return {}


def _simple_action(payment_id: int, name: str, verb: str, actor: str) -> Payment:
    with transaction.atomic():
        payment = locked(payment_id)
        try:
            transition_apply(payment, name, actor=actor)
        except TransitionNotAllowed:
            raise PaymentStateError(payment, verb) from None
    return payment


def payment_cancel(*, payment: Payment, user=None, api_key: ApiKey | None = None) -> Payment:
    """Cancel a payment not yet sent (created, on hold) or awaiting the customer's action."""
    return _simple_action(payment.pk, "cancel", _("cancelled"), actor_for(user, api_key))


def payment_hold(*, payment: Payment, user=None) -> Payment:
    return _simple_action(payment.pk, "hold", _("held"), actor_for(user))


def payment_release(*, payment: Payment, user=None) -> Payment:
    """Release a held payment after review and submit it."""
    actor = actor_for(user)
    _simple_action(payment.pk, "release", _("released"), actor)
    return payment_submit(payment_id=payment.pk, actor=actor)


def payment_reject(*, payment: Payment, user=None, reason: str = "") -> Payment:
    """Fail a held payment after review (admin decision)."""
    with transaction.atomic():
        locked_payment = locked(payment.pk)
        if not can_proceed(locked_payment.fail) or locked_payment.status != PaymentStatus.ON_HOLD:
            raise PaymentStateError(locked_payment, _("rejected"))
        transition_apply(
            locked_payment,
            "fail",
            actor=actor_for(user),
            code="rejected_after_review",
            message=reason or str(_("Rejected after risk review.")),
        )
    return locked_payment


def payment_retry(*, payment: Payment, user=None, api_key: ApiKey | None = None) -> Payment:
    """Submit a payment again after a retryable failure, with a new gateway attempt."""
    actor = actor_for(user, api_key)
    with transaction.atomic():
        locked_payment = locked(payment.pk)
        if not can_proceed(locked_payment.retry):
            raise PaymentStateError(locked_payment, _("retried"))
        number = locked_payment.attempts.filter(kind=GatewayAttempt.Kind.PAYMENT).count() + 1
        attempt = GatewayAttempt.objects.create(
            payment=locked_payment,
            kind=GatewayAttempt.Kind.PAYMENT,
            number=number,
            gateway=locked_payment.gateway,
            idempotency_key=f"{locked_payment.public_id}-{number}",
            calls=1,
            last_call_at=timezone.now(),
        )
        transition_apply(locked_payment, "retry", actor=actor)
    attempt_execute(attempt=attempt)
    return Payment.objects.get(pk=payment.pk)


def attempt_resume(*, attempt_id: int, stale_before) -> bool:
    """Call the gateway again for an attempt whose worker died; same key, so never paid twice.

    Claims the attempt with a conditional update so two sweepers never both
    call; returns False when someone else has it or it is no longer pending.
    """
    from django.conf import settings

    claimed = GatewayAttempt.objects.filter(
        pk=attempt_id, status=GatewayAttempt.Status.PENDING, last_call_at__lt=stale_before
    ).update(calls=F("calls") + 1, last_call_at=timezone.now())
    if not claimed:
        return False
    attempt = GatewayAttempt.objects.select_related("payment", "refund").get(pk=attempt_id)
    if attempt.calls > settings.PAYDESK_MAX_ATTEMPTS:
        GatewayAttempt.objects.filter(pk=attempt_id).update(
            status=GatewayAttempt.Status.DEAD, error="gave up after repeated gateway errors"
        )
        logger.error("attempt %s dead-lettered", attempt.idempotency_key)
        return False
    attempt_execute(attempt=attempt)
    return True


def payment_submit_later(payment: Payment) -> None:
    enqueue_on_commit("payments.tasks.payment_submit_task", payment.pk)
