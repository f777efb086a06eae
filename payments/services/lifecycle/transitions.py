"""Applying the model's transitions: to one locked payment, or set-based to many.

The transition graph is declared once, on the model (payments/models/payment.py).
`transition_apply` runs a transition on one locked payment, saves it and writes
its Event. `bulk_transition` does the same for many payments with one UPDATE
filtered by the source states the graph allows, plus one insert of their Events;
what a transition changes besides the status is learnt from the transition
method itself (run on a probe instance), so the bulk path never restates it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.utils import timezone

from payments.db import values_update
from payments.models import FINAL_STATES, Event, Payment, PaymentBatch
from payments.models.payment import TRANSITION_EVENT_TYPES
from payments.services.lifecycle.events import events_record
from payments.services.lifecycle.locks import require_transaction


def event_type_for(name: str, target: str) -> str:
    """The Event type a transition writes: `payment.<new status>` unless that would hide what happened."""
    return TRANSITION_EVENT_TYPES.get(name, f"payment.{target}")


def transition_apply(payment: Payment, name: str, *args, actor: str, **kwargs) -> Event:
    """Apply transition `name` to a locked payment, save it and write its Event; return the Event.

    Raise django_fsm.TransitionNotAllowed (nothing changed) if the state does not allow it.
    """
    require_transaction()
    getattr(payment, name)(*args, **kwargs)
    if payment.is_final:
        payment.completed_at = timezone.now()
    payment.save()
    return events_record(payment, event_type_for(name, payment.status), actor=actor)[0]


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


def bulk_transition(
    payments: Sequence[Payment],
    name: str,
    *,
    actor: str,
    kwargs: dict[str, Any] | None = None,
    batches: dict[int, PaymentBatch] | None = None,
    per_row: dict[int, dict[str, Any]] | None = None,
) -> list[Payment]:
    """Apply transition `name` to the locked `payments` that allow it; return those changed.

    One UPDATE (filtered again by the allowed sources), one insert of their
    Events and notification deliveries, all in the caller's transaction. The
    returned instances carry the new values. `per_row` gives values that
    differ per payment (each `next_action`, a gateway reference), written with
    one more statement.
    """
    require_transaction()
    info = transition_info(name)
    movable = [p for p in payments if p.status in info.sources]
    if not movable:
        return []
    now = timezone.now()
    changes = transition_changes(name, kwargs)
    changes["updated_at"] = now
    if info.target in FINAL_STATES:
        changes["completed_at"] = now
    ids = [p.pk for p in movable]
    for i in range(0, len(ids), 5000):
        part = ids[i : i + 5000]
        updated = Payment.objects.filter(pk__in=part, status__in=info.sources).update(
            status=info.target, **changes
        )
        if updated != len(part):
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
    events_record(movable, event_type_for(name, info.target), actor=actor, batches=batches)
    return movable
