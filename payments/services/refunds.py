"""Refunds: the refunded total can never exceed the captured amount."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from merchants.models import ApiKey
from payments.models import Payment, Refund, RefundStatus
from payments.models.payment import REFUNDABLE
from payments.money import MoneyError, format_minor, parse_amount
from payments.services.lifecycle.attempts import attempt_create
from payments.services.lifecycle.events import actor_for, events_record
from payments.services.lifecycle.guards import ensure_may_move_money
from payments.services.lifecycle.locks import lock_payment
from payments.services.lifecycle.outcomes import attempt_execute, paid_attempt
from payments.services.payments import PaymentStateError
from payments.validation import FieldError, PaymentInvalid


def refund_create(
    *,
    payment: Payment,
    amount: str | None = None,
    reason: str = "",
    user=None,
    api_key: ApiKey | None = None,
) -> Refund:
    """Refund part or all (amount None) of a succeeded payment, through the attempt that took the money.

    The payment row is locked while the refundable remainder is computed, so
    concurrent refunds can never together exceed the captured amount: pending
    refunds count against it until they fail.
    """
    ensure_may_move_money(payment.merchant)
    actor = actor_for(user, api_key)
    with transaction.atomic():
        payment = lock_payment(payment.pk)
        if payment.status not in REFUNDABLE:
            raise PaymentStateError(payment, _("refunded"))
        pending = (
            payment.refunds.filter(status=RefundStatus.PENDING, kind=Refund.Kind.REQUESTED).aggregate(
                total=Sum("amount_minor")
            )["total"]
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
            source_attempt=paid_attempt(payment),
            amount_minor=amount_minor,
            reason=(reason or "")[:500],
            created_by=user if user is not None and user.is_authenticated else None,
        )
        attempt = attempt_create(payment=payment, refund=refund, number=1)
        events_record(payment, "refund.created", actor=actor, refund=refund)
    attempt_execute(attempt=attempt)
    return Refund.objects.select_related("payment").get(pk=refund.pk)
