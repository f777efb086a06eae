"""Writing Events: always inside the transaction that made the change."""

from collections.abc import Sequence
from functools import lru_cache

from django.db import connection, models, transaction

from payments.models import Event, Payment, Refund
from payments.representations import payment_data, refund_data
from payments.services.notifications import deliveries_for_events


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


def insert_rows(objs: Sequence[models.Model]) -> None:
    """INSERT new rows of one model in one statement and set their primary keys.

    The rows get exactly what `save()` / `bulk_create()` would write (every concrete
    field's `pre_save`, so auto_now and generated public ids, then `get_db_prep_save`),
    without building an ORM query each time: the SQL is made once per model and row
    count. No signals are sent (the project connects none to these models). Raise
    IntegrityError, with nothing written, if a constraint refuses a row.
    """
    if not objs:
        return
    model = type(objs[0])
    if not connection.features.can_return_rows_from_bulk_insert:
        model.objects.bulk_create(objs)
        return
    fields = _insert_fields(model)
    params = []
    for obj in objs:
        params.extend(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(model, len(objs)), params)
        pks = [row[0] for row in cursor.fetchall()]
    for obj, pk in zip(objs, pks, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


@lru_cache(maxsize=32)
def _insert_fields(model: type[models.Model]) -> list:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


@lru_cache(maxsize=64)
def _insert_sql(model: type[models.Model], rows: int) -> str:
    q = connection.ops.quote_name
    fields = _insert_fields(model)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return "INSERT INTO {} ({}) VALUES {} RETURNING {}".format(  # noqa: S608 - names from the model
        q(model._meta.db_table),
        ", ".join(q(f.column) for f in fields),
        ", ".join([row] * rows),
        q(model._meta.pk.column),
    )
