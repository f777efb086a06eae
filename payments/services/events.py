"""Writing Events: always inside the transaction that made the change."""

from django.db import transaction

from payments.models import Event, Payment, Refund
from payments.representations import payment_data, refund_data


def event_record(
    *,
    payment: Payment,
    type: str,
    actor: str = "system",
    refund: Refund | None = None,
    extra: dict | None = None,
) -> Event:
    """Append an Event for `payment` (and `refund`); must run inside the changing transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("An Event must be written inside the transaction of its change.")
    data = {"object": payment_data(payment)}
    if refund is not None:
        data["refund"] = refund_data(refund)
    if extra:
        data.update(extra)
    return Event.objects.create(
        merchant_id=payment.merchant_id,
        type=type,
        payment=payment,
        batch_id=payment.batch_id,
        refund=refund,
        data=data,
        actor=actor[:80],
    )
