"""Writing Events: always inside the transaction that made the change, fanned out with it.

`events_record` writes the Events of one payment or of many (a batch chunk,
a bank's multi-result report) in one insert; `batch_event_record` writes a
batch's own. Each Event carries a snapshot of its object as the change left
it, so webhooks and the timeline never re-read a row that has moved on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from merchants.ids import new_public_ids
from payments.db import insert_many
from payments.models import Event, Payment, PaymentBatch, Refund
from payments.representations import batch_data, payment_data, refund_data
from payments.services.activity import log_on_commit
from payments.services.lifecycle.locks import require_transaction
from payments.services.lifecycle.rollups import rollup_events
from payments.services.notifications.fanout import deliveries_for_events


def actor_for(user=None, api_key=None) -> str:
    """Who caused a change, as Events record it: `api_key:key_...`, `user:<id>` or `system`."""
    if api_key is not None:
        return f"api_key:{api_key.public_id}"
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return "system"


def event_build(
    *,
    payment: Payment,
    type: str,
    actor: str,
    refund: Refund | None = None,
    extra: dict | None = None,
    snapshot: dict | None = None,
) -> Event:
    """Return an unsaved Event of `payment` carrying its snapshot (or `snapshot`, if given).

    `snapshot` is `payment_data(payment)` as it was at the change the Event
    records, for a service that writes several Events of one change at once.
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


def events_write(events: Sequence[Event]) -> list[Event]:
    """Insert built Events in one statement and create their Deliveries, in the changing transaction."""
    require_transaction()
    events = list(events)
    if not events:
        return []
    if len(events) > 1:
        # Many at once (a chunk): mint the ids in one read of the OS's randomness.
        for event, public_id in zip(events, new_public_ids("evt", len(events)), strict=True):
            event.public_id = event.public_id or public_id
    insert_many(events)
    # The home page's figures change with the Events, in the same transaction.
    rollup_events(events)
    # Deliveries (webhook, email, SMS, in-app) commit with the Events or not at all.
    deliveries_for_events(events)
    log_on_commit(events)
    return events


def events_record(
    payments: Payment | Iterable[Payment],
    type: str,
    *,
    actor: str,
    refund: Refund | None = None,
    extra: dict | None = None,
    batches: dict[int, PaymentBatch] | None = None,
) -> list[Event]:
    """Write one Event of `type` for each payment (one or many), with its current snapshot.

    `batches` maps batch ids to loaded batches, so the snapshots of many
    payments of one batch name it without a query per row.
    """
    payments = [payments] if isinstance(payments, Payment) else list(payments)
    if not payments:
        return []
    known = dict(batches or {})
    missing = {p.batch_id for p in payments if p.batch_id and p.batch_id not in known}
    if missing and len(payments) > 1:
        known.update(PaymentBatch.objects.in_bulk(missing))
    for p in payments:
        if p.batch_id in known:
            p.batch = known[p.batch_id]
    return events_write(
        [event_build(payment=p, type=type, actor=actor, refund=refund, extra=extra) for p in payments]
    )


def batch_event_record(*, batch: PaymentBatch, type: str, actor: str, extra: dict | None = None) -> Event:
    """Write one batch-level Event (no payment) in the changing transaction, and fan it out."""
    data = {"object": batch_data(batch), **(extra or {})}
    event = Event(merchant_id=batch.merchant_id, type=type, batch=batch, data=data, actor=actor[:80])
    return events_write([event])[0]
