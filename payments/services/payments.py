"""Use cases of a single payment: create, submit, cancel, hold, release, reject, retry.

Every state change goes through the lifecycle core (payments/services/lifecycle):
its locks, its attempts, its outcome table and its Events.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django_fsm import TransitionNotAllowed, can_proceed

from merchants.models import ApiKey, Merchant
from payments.db import insert_rows
from payments.gateways import GatewayError, Outcome, gateway_for_method, get_gateway
from payments.models import Direction, GatewayAttempt, Payment, PaymentStatus
from payments.representations import payment_data
from payments.risk import hold_probability, risk_score
from payments.services.idempotency import IdempotencyClaim
from payments.services.lifecycle.attempts import attempt_create, attempt_resume_claim, gateway_call
from payments.services.lifecycle.events import actor_for, event_build, events_write
from payments.services.lifecycle.guards import ensure_may_move_money
from payments.services.lifecycle.locks import lock_payment
from payments.services.lifecycle.outcomes import answer_result, attempt_execute, outcome_apply
from payments.services.lifecycle.rules import payment_hold_reasons, risk_hold_reason
from payments.services.lifecycle.transitions import transition_apply
from payments.services.payment_input import payment_input_validate
from payments.validation import FieldError, PaymentInvalid

logger = logging.getLogger(__name__)


class PaymentStateError(Exception):
    """The requested action is not allowed in the payment's current state."""

    def __init__(
        self, payment: Payment, action: str, *, code: str = "invalid_state", message: str = ""
    ) -> None:
        super().__init__(
            message
            or _("A payment that is %(status)s cannot be %(action)s.")
            % {"status": payment.get_status_display().lower(), "action": action}
        )
        self.payment = payment
        self.code = code


def payment_create(
    *,
    merchant: Merchant,
    data: dict,
    user=None,
    api_key: ApiKey | None = None,
    submit: bool = True,
    idempotency: IdempotencyClaim | None = None,
) -> Payment:
    """Validate, persist, score and (unless held) submit one real-time payment.

    Creation and the claim for submission share one transaction, so a new
    payment is either held, left created (`submit=False`) or committed as
    processing with its GatewayAttempt; the gateway is called after commit.
    The row is inserted already held or claimed (nobody can see it before the
    commit, so this is the claim of DESIGN section 2 without a second write);
    its Events still record created, then held or processing.
    Raise PaymentInvalid with every field problem, or MerchantSuspended;
    nothing is stored then.

    With an `idempotency` claim (an API request's Idempotency-Key), the claim
    is inserted first in the creating transaction (KeyTaken if another
    request holds the key: nothing is created) and the request's answer is
    stored in the transaction that records the gateway's answer: two commits
    in all, besides the gateway's own.
    """
    ensure_may_move_money(merchant)
    clean = payment_input_validate(merchant=merchant, data=data)
    actor = actor_for(user, api_key)
    gateway = gateway_for_method(clean["method"])
    payment = Payment(
        merchant=merchant,
        created_by=user if user is not None and user.is_authenticated else None,
        api_key=api_key,
        gateway=gateway.slug,
        direction=Direction.COLLECTION if gateway.collects else Direction.PAYOUT,
        **clean,
    )
    score = risk_score(payment)
    payment.risk_score = Decimal(f"{score:.4f}")  # kept for the next fit (fit_risk_model)
    payment.risk_probability = hold_probability(score)
    # The first transition (hold, or the claim for submission) is applied before the insert, so
    # the row is written once, already in its state; its Events still say created, then that.
    first, next_actor = None, actor
    reasons = payment_hold_reasons(payment)
    extra = None
    if reasons:
        first, next_actor = "hold", "system:rules"
        extra = {"hold_reasons": [r.as_dict() for r in reasons]}
    elif (risk := risk_hold_reason(merchant, payment.risk_probability)) is not None:
        first, next_actor = "hold", "system:risk"
        extra = {"hold_reasons": [risk.as_dict()]}
    elif submit:
        first = "submit"
    attempt = None
    try:
        with transaction.atomic():
            if idempotency is not None:
                idempotency.insert()  # first: a concurrent same-key request waits here, then finds it
            if first is not None:
                getattr(payment, first)()
            insert_rows([payment])
            snapshot = payment_data(payment)
            created = {**snapshot, "status": PaymentStatus.CREATED}
            events = [event_build(payment=payment, type="payment.created", actor=actor, snapshot=created)]
            if first is not None:
                if first == "submit":
                    attempt = attempt_create(payment=payment, number=1)
                events.append(
                    event_build(
                        payment=payment,
                        type=f"payment.{payment.status}",
                        actor=next_actor,
                        snapshot=snapshot,
                        extra=extra,
                    )
                )
            events_write(events)
    except IntegrityError:
        if Payment.objects.filter(merchant=merchant, reference=clean["reference"]).exists():
            # A payment (perhaps a concurrent request's) already has this reference.
            raise PaymentInvalid([_duplicate_reference()]) from None
        raise
    if attempt is None:
        if idempotency is not None:
            idempotency.complete(payment)
        return payment
    if idempotency is None:
        # The payment as the gateway's answer left it (a callback may already have moved it on).
        return attempt_execute(attempt=attempt) or Payment.objects.get(pk=payment.pk)
    created = payment
    answered: list[Payment] = []

    def settled(applied: Payment | None) -> None:
        answered.append(applied or Payment.objects.get(pk=created.pk))
        idempotency.complete(answered[0])  # the stored answer commits with the gateway's

    attempt_execute(attempt=attempt, and_then=settled)
    return answered[0]


def _duplicate_reference() -> FieldError:
    return FieldError("reference", "duplicate_reference", _("A payment with this reference already exists."))


def payment_submit(*, payment_id: int, actor: str = "system") -> Payment:
    """Submit a created payment: claim, call the gateway outside any transaction, apply.

    Safe to call any number of times and concurrently: only the caller that
    moves the payment from created to processing makes a gateway attempt.
    """
    attempt = payment_claim(payment_id=payment_id, actor=actor)
    if attempt is not None:
        attempt_execute(attempt=attempt)
    return Payment.objects.select_related("batch").get(pk=payment_id)


def payment_claim(*, payment_id: int, actor: str) -> GatewayAttempt | None:
    """Claim a created payment for submission: lock it, write its attempt, apply `submit`, commit.

    Return the attempt to execute, or None if the payment is not `created`
    (someone else claimed it first, or it moved on).
    """
    with transaction.atomic():
        payment = lock_payment(payment_id)
        if not can_proceed(payment.submit):
            return None
        attempt = attempt_create(payment=payment)
        transition_apply(payment, "submit", actor=actor)
    return attempt


def _state_action(payment_id: int, name: str, verb: str, actor: str, **kwargs) -> Payment:
    with transaction.atomic():
        payment = lock_payment(payment_id)
        try:
            transition_apply(payment, name, actor=actor, **kwargs)
        except TransitionNotAllowed:
            raise PaymentStateError(payment, verb) from None
    return payment


def payment_cancel(*, payment: Payment, user=None, api_key: ApiKey | None = None) -> Payment:
    """Cancel a payment not yet sent (created, on hold) or awaiting the customer's action.

    A payment awaiting the customer has an open order at the gateway (a QR
    code, an approval link) that would stay payable: the gateway is asked to
    close it first, outside any transaction. If the customer has already paid,
    the payment follows the paid path and PaymentStateError says so; if the
    gateway cannot be reached, nothing changes and PaymentStateError says to
    try again.
    """
    actor = actor_for(user, api_key)
    attempt = None
    with transaction.atomic():
        locked = lock_payment(payment.pk)
        if locked.status != PaymentStatus.REQUIRES_ACTION:
            try:
                transition_apply(locked, "cancel", actor=actor)
            except TransitionNotAllowed:
                raise PaymentStateError(locked, _("cancelled")) from None
            return locked
        attempt = (
            GatewayAttempt.objects.select_related("payment")
            .filter(payment=locked, kind=GatewayAttempt.Kind.PAYMENT)
            .order_by("-number")
            .first()
        )
    gateway = get_gateway(attempt.gateway)
    try:
        result = answer_result(attempt, gateway_call(lambda: gateway.close(attempt)))
    except GatewayError as exc:
        logger.warning("closing %s at %s failed: %s", attempt.idempotency_key, attempt.gateway, exc)
        raise PaymentStateError(
            locked,
            _("cancelled"),
            code="gateway_unavailable",
            message=_("The gateway could not close the customer's order; nothing was cancelled. Try again."),
        ) from None
    with transaction.atomic():
        locked = lock_payment(payment.pk)
        if result.outcome == Outcome.CLOSED:
            if can_proceed(locked.cancel):
                transition_apply(locked, "cancel", actor=actor)
                return locked
        elif result.outcome == Outcome.SUCCEEDED:
            outcome_apply(payment=locked, attempt=attempt, result=result)
    if result.outcome == Outcome.SUCCEEDED:
        raise PaymentStateError(
            locked,
            _("cancelled"),
            code="already_paid",
            message=_("The customer has already paid this payment."),
        )
    if result.outcome == Outcome.CLOSED:
        raise PaymentStateError(locked, _("cancelled"))  # it moved on meanwhile
    raise PaymentStateError(
        locked,
        _("cancelled"),
        code="customer_paying",
        message=_("The customer is paying right now; try again in a moment."),
    )


def payment_hold(*, payment: Payment, user=None) -> Payment:
    return _state_action(payment.pk, "hold", _("held"), actor_for(user))


def payment_release(*, payment: Payment, user=None) -> Payment:
    """Release a held payment after review and submit it (not for a suspended merchant)."""
    ensure_may_move_money(payment.merchant)
    actor = actor_for(user)
    _state_action(payment.pk, "release", _("released"), actor)
    return payment_submit(payment_id=payment.pk, actor=actor)


def payment_reject(*, payment: Payment, user=None, reason: str = "") -> Payment:
    """Fail a held payment after review (admin decision)."""
    with transaction.atomic():
        locked = lock_payment(payment.pk)
        if locked.status != PaymentStatus.ON_HOLD:
            raise PaymentStateError(locked, _("rejected"))
        transition_apply(
            locked,
            "fail",
            actor=actor_for(user),
            code="rejected_after_review",
            message=reason or str(_("Rejected after risk review.")),
        )
    return locked


def payment_retry(*, payment: Payment, user=None, api_key: ApiKey | None = None) -> Payment:
    """Submit a payment again after a retryable failure, with a new gateway attempt."""
    ensure_may_move_money(payment.merchant)
    actor = actor_for(user, api_key)
    with transaction.atomic():
        locked = lock_payment(payment.pk)
        if not can_proceed(locked.retry):
            raise PaymentStateError(locked, _("retried"))
        attempt = attempt_create(payment=locked)
        transition_apply(locked, "retry", actor=actor)
    attempt_execute(attempt=attempt)
    return Payment.objects.get(pk=payment.pk)


def attempt_resume(*, attempt_id: int, stale_before) -> bool:
    """Call the gateway again for an attempt whose worker died; same key, so never paid twice.

    Return False when someone else has it, it is no longer pending, or it
    was dead-lettered.
    """
    attempt = attempt_resume_claim(attempt_id=attempt_id, stale_before=stale_before)
    if attempt is None:
        return False
    attempt_execute(attempt=attempt)
    return True


def attempt_run(*, attempt_id: int) -> None:
    """Execute a pending attempt whose first call was counted at its creation (a worker's task)."""
    attempt = GatewayAttempt.objects.select_related("payment", "refund").get(pk=attempt_id)
    if attempt.status == GatewayAttempt.Status.PENDING and attempt.answered_at is None:
        attempt_execute(attempt=attempt)
