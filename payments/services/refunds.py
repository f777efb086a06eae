"""Refunds: the refunded total can never exceed the captured amount."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from merchants.models import ApiKey
from payments.gateways import GatewayResult, Outcome, gateway_for_method
from payments.models import GatewayAttempt, Payment, Refund, RefundStatus
from payments.models.payment import REFUNDABLE
from payments.money import MoneyError, format_minor, parse_amount
from payments.services.lifecycle.events import event_record
from payments.services.payments import (
    PaymentStateError,
    actor_for,
    attempt_execute,
    locked,
    transition_apply,
)
from payments.validation import FieldError, PaymentInvalid


def refund_create(
    *,
    payment: Payment,
    amount: str | None = None,
    reason: str = "",
    user=None,
    api_key: ApiKey | None = None,
) -> Refund:
    """Refund part or all (amount None) of a succeeded payment.

    The payment row is locked while the refundable remainder is computed, so
    concurrent refunds can never together exceed the captured amount: pending
    refunds count against it until they fail.
    """
    actor = actor_for(user, api_key)
    with transaction.atomic():
        payment = locked(payment.pk)
        if payment.status not in REFUNDABLE:
            raise PaymentStateError(payment, _("refunded"))
        pending = (
            payment.refunds.filter(status=RefundStatus.PENDING).aggregate(total=Sum("amount_minor"))["total"]
            or 0
        )
        available = payment.amount_minor - payment.refunded_minor - pending
        if amount in (None, ""):
            amount_minor = available
        else:
            try:
                amount_minor = parse_amount(amount, payment.currency)
            except MoneyError as exc:
                raise PaymentInvalid([FieldError("amount", exc.code, exc.message)]) from None
        if amount_minor <= 0 or amount_minor > available:
            raise PaymentInvalid(
                [
                    FieldError(
                        "amount",
                        "exceeds_refundable",
                        _("At most %(a)s %(c)s can still be refunded.")
                        % {"a": format_minor(max(available, 0), payment.currency), "c": payment.currency},
                    )
                ]
            )
        refund = Refund.objects.create(
            payment=payment,
            amount_minor=amount_minor,
            reason=(reason or "")[:500],
            created_by=user if user is not None and user.is_authenticated else None,
        )
        attempt = GatewayAttempt.objects.create(
            payment=payment,
            refund=refund,
            kind=GatewayAttempt.Kind.REFUND,
            gateway=payment.gateway or gateway_for_method(payment.method).slug,
            idempotency_key=f"{refund.public_id}-1",
            calls=1,
            last_call_at=timezone.now(),
        )
        event_record(payment=payment, refund=refund, type="refund.created", actor=actor)
    attempt_execute(attempt=attempt)
    return Refund.objects.select_related("payment").get(pk=refund.pk)


def refund_apply_answer(*, attempt_id: int, result: GatewayResult) -> None:
    with transaction.atomic():
        attempt = GatewayAttempt.objects.get(pk=attempt_id)
        payment = locked(attempt.payment_id)
        attempt = GatewayAttempt.objects.select_for_update().get(pk=attempt_id)
        if attempt.status != GatewayAttempt.Status.PENDING:
            return
        attempt.status = GatewayAttempt.Status.ANSWERED
        attempt.outcome = result.outcome
        attempt.gateway_reference = result.gateway_reference
        attempt.response = result.raw
        attempt.answered_at = timezone.now()
        attempt.save()
        refund = Refund.objects.select_for_update().get(pk=attempt.refund_id)
        if result.gateway_reference and not refund.gateway_reference:
            refund.gateway_reference = result.gateway_reference
            refund.save(update_fields=["gateway_reference", "updated_at"])
        if result.outcome == Outcome.SUCCEEDED:
            refund_settle(payment=payment, refund=refund, succeeded=True, actor=f"gateway:{attempt.gateway}")
        elif result.outcome == Outcome.FAILED:
            refund_settle(
                payment=payment,
                refund=refund,
                succeeded=False,
                code=result.failure_code,
                actor=f"gateway:{attempt.gateway}",
            )


def refund_settle(
    *, payment: Payment, refund: Refund, succeeded: bool, actor: str, code: str = ""
) -> str | None:
    """Apply a refund's final outcome to locked rows; return why it was ignored, or None."""
    if refund.status != RefundStatus.PENDING:
        return f"refund already {refund.status}"
    if not succeeded:
        refund.fail(code or "refund_failed")
        refund.save()
        event_record(payment=payment, refund=refund, type="refund.failed", actor=actor)
        return None
    total = payment.refunded_minor + refund.amount_minor
    name = "refund_full" if total == payment.amount_minor else "refund_partial"
    if not can_proceed(getattr(payment, name)):
        return f"payment is {payment.status}; refund cannot be applied"
    refund.succeed()
    refund.save()
    event_record(payment=payment, refund=refund, type="refund.succeeded", actor=actor)
    transition_apply(payment, name, refund.amount_minor, actor=actor)
    return None
