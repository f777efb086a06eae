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
from django.db.models import F
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
