"""Writing Events: always inside the transaction that made the change."""

from django.db import transaction

from payments.db import insert_rows
from payments.models import Event, Payment, Refund
from payments.representations import payment_data, refund_data
from payments.services.notifications.sending import deliveries_for_events


def event_build(
    *,
    payment: Payment,
    type: str,
    actor: str = "system",
    refund: Refund | None = None,
    extra: dict | None = None,
    snapshot: dict | None = None,
) -> Event:
    """Return an unsaved Event carrying a snapshot of `payment` as it is now (or `snapshot`, if given).

    `snapshot` is `payment_data(payment)` as it was at the change the Event records, for a
    service that writes several Events of one change at once.
    """
    data = {"object": payment_data(payment) if snapshot is None else snapshot}
    if refund is not None:
        data["refund"] = refund_data(refund)
    if extra:
        data.update(extra)
    return Event(
        merchant_id=payment.merchant_id,
        type=type,
        payment=payment,
        batch_id=payment.batch_id,
        refund=refund,
        data=data,
        actor=actor[:80],
    )


def events_write(events: list[Event]) -> list[Event]:
    """Insert built Events and their Deliveries; must run inside the changing transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("An Event must be written inside the transaction of its change.")
    insert_rows(events)
    # Deliveries (webhook, email, SMS, in-app) commit with the Events or not at all.
    deliveries_for_events(events)
    return events


def event_record(
    *,
    payment: Payment,
    type: str,
    actor: str = "system",
    refund: Refund | None = None,
    extra: dict | None = None,
) -> Event:
    """Append an Event for `payment` (and `refund`); must run inside the changing transaction."""
    event = event_build(payment=payment, type=type, actor=actor, refund=refund, extra=extra)
    return events_write([event])[0]
