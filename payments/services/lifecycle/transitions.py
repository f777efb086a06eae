"""Set-based payment transitions for the bulk paths (batch chunks, multi-result callbacks).

The bulk paths change many payments at once with one UPDATE filtered by the
source states the model's transition graph allows, plus one `bulk_create` of
the Events, instead of a `save()` per row. What a transition changes besides
the status is learnt from the transition method itself (run on a probe
instance), so the graph and its side effects stay declared once, on the model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from merchants.ids import new_public_ids
from payments.models import FINAL_STATES, Event, Payment, PaymentBatch
from payments.representations import payment_data


@dataclass(frozen=True)
class TransitionInfo:
    name: str
    sources: frozenset[str]
    target: str


@cache
def transition_info(name: str) -> TransitionInfo:
    """Return the sources and target of Payment transition `name`, from the model's graph."""
    sources: set[str] = set()
    targets: set[str] = set()
    for t in Payment._meta.get_field("status").get_all_transitions(Payment):
        if t.name != name:
            continue
        if t.conditions:
            raise ValueError(f"transition {name} has conditions; the bulk path cannot apply it")
        sources.add(t.source)
        targets.add(t.target)
    if not sources or len(targets) != 1:
        raise ValueError(f"no single-target transition named {name} on Payment")
    if "*" in sources or "+" in sources:
        raise ValueError(f"transition {name} has a wildcard source")
    return TransitionInfo(name, frozenset(sources), targets.pop())


class _Unset:
    """A sentinel value: a probe field still holding it was not written by the transition."""


def transition_changes(name: str, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the fields (other than status) that transition `name` writes, with their values.

    The pure transition method is run on a probe instance whose fields hold
    sentinels, so even an assignment of the value a row already has (such as
    clearing `next_action`) is seen.
    """
    info = transition_info(name)
    probe = Payment(status=next(iter(sorted(info.sources))))
    names = [f.attname for f in Payment._meta.concrete_fields if f.attname not in ("id", "status")]
    for attname in names:
        probe.__dict__[attname] = _Unset
    getattr(probe, name)(**(kwargs or {}))
    return {a: probe.__dict__[a] for a in names if probe.__dict__[a] is not _Unset}


def lock_payments(queryset: QuerySet[Payment]) -> list[Payment]:
    """Return the payments of `queryset`, locked FOR UPDATE in primary-key order.

    Every bulk path locks in this one order, so two of them never deadlock.
    """
    qs = queryset.order_by("pk")
    if connection.vendor == "postgresql":
        qs = qs.select_for_update(of=("self",))
    else:
        qs = qs.select_for_update()
    return list(qs)


def bulk_transition(
    payments: Sequence[Payment],
    name: str,
    *,
    actor: str,
    kwargs: dict[str, Any] | None = None,
    batches: dict[int, PaymentBatch] | None = None,
    extra_fields: dict[str, Any] | None = None,
    per_row: dict[int, dict[str, Any]] | None = None,
) -> list[Payment]:
    """Apply transition `name` to the locked `payments` that allow it; return those changed.

    One UPDATE (filtered again by the allowed sources), one `bulk_create` of
    `payment.<target>` Events and their notification deliveries, all in the
    caller's transaction. The returned instances carry the new values.
    `per_row` gives values that differ per payment (e.g. each `next_action`),
    written with one more statement.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("bulk_transition must run inside the transaction that locked the payments.")
    info = transition_info(name)
    movable = [p for p in payments if p.status in info.sources]
    if not movable:
        return []
    now = timezone.now()
    changes = transition_changes(name, kwargs)
    changes.update(extra_fields or {})
    changes["updated_at"] = now
    if info.target in FINAL_STATES:
        changes["completed_at"] = now
    ids = [p.pk for p in movable]
    for i in range(0, len(ids), 5000):
        updated = Payment.objects.filter(pk__in=ids[i : i + 5000], status__in=info.sources).update(
            status=info.target, **changes
        )
        if updated != len(ids[i : i + 5000]):
            raise RuntimeError("payments changed under a lock; the bulk transition is rolled back")
    for p in movable:
        p.__dict__.update(changes)
        p.__dict__["status"] = info.target
    if per_row:
        rows = {p.pk: per_row[p.pk] for p in movable if p.pk in per_row}
        fields = sorted({f for values in rows.values() for f in values})
        values_update(Payment, rows, fields)
        for p in movable:
            p.__dict__.update(rows.get(p.pk, {}))
    events_record(movable, f"payment.{info.target}", actor=actor, batches=batches)
    return movable


def events_record(
    payments: Iterable[Payment],
    type: str,
    *,
    actor: str,
    batches: dict[int, PaymentBatch] | None = None,
) -> list[Event]:
    """Write one Event per payment (its current snapshot) with `bulk_create`, and fan them out."""
    payments = list(payments)
    if not payments:
        return []
    batches = dict(batches or {})
    missing = {p.batch_id for p in payments if p.batch_id and p.batch_id not in batches}
    if missing:
        batches.update(PaymentBatch.objects.in_bulk(missing))
    for p in payments:
        if p.batch_id:
            p.batch = batches[p.batch_id]  # the snapshot names the batch without a query per row
    ids = new_public_ids("evt", len(payments))
    events = [
        Event(
            public_id=ids[i],
            merchant_id=p.merchant_id,
            type=type,
            payment=p,
            batch_id=p.batch_id,
            data={"object": payment_data(p)},
            actor=actor[:80],
        )
        for i, p in enumerate(payments)
    ]
    if fast_insert(Event, events):
        # COPY returns no keys: fetch them by the public ids we minted (the fan-out needs them).
        keys = dict(Event.objects.filter(public_id__in=ids).values_list("public_id", "pk"))
        for event in events:
            event.pk = keys[event.public_id]
    _fan_out(events)
    return events


def fast_insert(model, objs: Sequence) -> bool:
    """Insert many new rows: COPY on PostgreSQL (returns True, no primary keys set), else bulk_create.

    Django's bulk_create binds every value client-side, which costs more than
    the insert itself for wide rows with JSON; COPY streams them.
    """
    if not objs:
        return False
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=1000)
        return False
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    with connection.cursor() as cursor, connection.wrap_database_errors:
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # noqa: S608
            for obj in objs:
                row = []
                for f in fields:
                    value = f.pre_save(obj, True)
                    if f.attname in json_fields and value is not None:
                        value = json.dumps(value, cls=f.encoder, separators=(",", ":"))
                    row.append(value)
                copy.write_row(row)
    return True


def batch_event_record(*, batch: PaymentBatch, type: str, actor: str, extra: dict | None = None) -> Event:
    """Write one batch-level Event (no payment) inside the changing transaction, and fan it out."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("An Event must be written inside the transaction of its change.")
    from payments.services.batches.reports import batch_data

    data = {"object": batch_data(batch)}
    if extra:
        data.update(extra)
    event = Event.objects.create(
        merchant_id=batch.merchant_id, type=type, batch=batch, data=data, actor=actor[:80]
    )
    _fan_out([event])
    return event


def _fan_out(events: list[Event]) -> None:
    from payments.services.notifications.sending import deliveries_for_events

    deliveries_for_events(events)


def values_update(model, rows: dict[int, dict[str, Any]], fields: Sequence[str]) -> int:
    """Set per-row values of `fields` on many rows in one statement; return the rows matched.

    PostgreSQL: `UPDATE ... FROM (VALUES ...)`; elsewhere Django's bulk_update.
    """
    if not rows:
        return 0
    if connection.vendor != "postgresql":
        objs = []
        for pk, values in rows.items():
            obj = model(pk=pk)
            for f in fields:
                obj.__dict__[model._meta.get_field(f).attname] = values[f]
            objs.append(obj)
        return model.objects.bulk_update(objs, fields, batch_size=500)
    opts = model._meta
    columns = [opts.get_field(f) for f in fields]
    casts = ", ".join(f"%s::{c.db_type(connection)}" for c in columns)
    table = connection.ops.quote_name(opts.db_table)
    sets = ", ".join(
        f"{connection.ops.quote_name(c.column)} = v.{connection.ops.quote_name(c.column)}" for c in columns
    )
    names = ", ".join(connection.ops.quote_name(c.column) for c in columns)
    total = 0
    items = list(rows.items())
    with connection.cursor() as cursor:
        for i in range(0, len(items), 1000):
            part = items[i : i + 1000]
            params: list[Any] = []
            for pk, values in part:
                params.append(pk)
                params.extend(c.get_db_prep_save(values[c.name], connection) for c in columns)
            placeholders = ", ".join(f"(%s::bigint, {casts})" for _ in part)
            cursor.execute(
                f"UPDATE {table} AS t SET {sets} FROM (VALUES {placeholders}) AS v(id, {names}) "  # noqa: S608
                "WHERE t.id = v.id",
                params,
            )
            total += cursor.rowcount
    return total
