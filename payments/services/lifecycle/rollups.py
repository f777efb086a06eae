"""The home page's rollup, kept in the transaction that writes a change's Events.

`rollup_events` turns Events into increments of `PaymentDailyStat` rows: one
statement per distinct (day, currency, method, outcome, code) of the Events,
never one per payment, so a chunk of 1,000 payments adds a handful of updates.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence

from django.db import IntegrityError, transaction
from django.db.models import CharField, Count, F, Sum, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from payments.models import Event, PaymentDailyStat, RollupKind

KINDS = {
    "payment.created": RollupKind.CREATED,
    "payment.succeeded": RollupKind.SUCCEEDED,
    "payment.failed": RollupKind.FAILED,
    "payment.reversed": RollupKind.REVERSED,
    "refund.succeeded": RollupKind.REFUNDED,
}


def rollup_events(events: Sequence[Event]) -> None:
    """Add these (saved or unsaved) Events to the daily rollup; call inside their transaction."""
    counts: Counter = Counter()
    amounts: Counter = Counter()
    day = timezone.localdate()
    for event in events:
        kind = KINDS.get(event.type)
        payment = event.payment if event.payment_id else None
        if kind is None or payment is None:
            continue
        if kind == RollupKind.REFUNDED:
            if event.refund_id is None:
                continue
            amount = event.refund.amount_minor
        else:
            amount = payment.amount_minor
        code = payment.failure_code if kind == RollupKind.FAILED else ""
        key = (event.merchant_id, day, payment.currency, payment.method, kind, code[:64])
        counts[key] += 1
        amounts[key] += amount
    # One slot per process: concurrent workers add to different rows (no queue on one row lock),
    # while one process always finds its row and pays a single UPDATE.
    slot = os.getpid() % PaymentDailyStat.SLOTS
    for key, n in sorted(counts.items()):
        _add(key, slot, n, amounts[key])


def _add(key: tuple, slot: int, n: int, amount: int) -> None:
    merchant_id, day, currency, method, kind, code = key
    match = PaymentDailyStat.objects.filter(
        merchant_id=merchant_id,
        day=day,
        currency=currency,
        method=method,
        kind=kind,
        failure_code=code,
        slot=slot,
    )
    if match.update(count=F("count") + n, amount_minor=F("amount_minor") + amount):
        return
    try:
        with transaction.atomic():
            PaymentDailyStat.objects.create(
                merchant_id=merchant_id,
                day=day,
                currency=currency,
                method=method,
                kind=kind,
                failure_code=code,
                slot=slot,
                count=n,
                amount_minor=amount,
            )
    except IntegrityError:
        # A concurrent transaction created the row first: add to it.
        match.update(count=F("count") + n, amount_minor=F("amount_minor") + amount)


def rollup_rebuild(*, event_model=Event, stat_model=PaymentDailyStat) -> int:
    """Recompute the whole rollup from the Events, set-based; return how many rows it holds now.

    For a deployment whose payments predate the rollup (migration 0019 runs it
    with the historical models) or after a manual repair of payments. Run it
    with the workers stopped: changes committed while it runs may be counted
    twice or not at all. The failure code of a failed payment is the one its
    Event recorded, so a payment that later succeeded on retry counts as it did.
    """
    day = TruncDate("created_at")
    rows = []
    for kind_type, kind in KINDS.items():
        events = event_model.objects.filter(type=kind_type, payment__isnull=False)
        if kind == RollupKind.REFUNDED:
            events = events.filter(refund__isnull=False)
            amount = Sum("refund__amount_minor")
        else:
            amount = Sum("payment__amount_minor")
        code = (
            Coalesce(KT("data__object__failure_code"), Value(""), output_field=CharField())
            if kind == RollupKind.FAILED
            else Value("", output_field=CharField())
        )
        grouped = (
            events.annotate(day=day, code=code)
            .values("merchant_id", "day", "payment__currency", "payment__method", "code")
            .annotate(n=Count("id"), total=amount)
            .order_by()
        )
        rows.extend(
            stat_model(
                merchant_id=g["merchant_id"],
                day=g["day"],
                currency=g["payment__currency"],
                method=g["payment__method"],
                kind=kind,
                failure_code=(g["code"] or "")[:64],
                slot=0,
                count=g["n"],
                amount_minor=g["total"] or 0,
            )
            for g in grouped.iterator(chunk_size=2000)
        )
    with transaction.atomic():
        stat_model.objects.all().delete()
        stat_model.objects.bulk_create(rows, batch_size=2000)
    return len(rows)
