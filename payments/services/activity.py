"""PayDesk's own work in the log: every committed Event at INFO, on the `payments.activity` logger.

One line per Event (`pay_... payment.succeeded (gateway:sandbox)`), or, for the
set-based writes of a batch, one line per batch and type
(`bat_... 1000 x payment.processing (system:batch)`). Logged once the
transaction commits, so a rolled-back change is never reported.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from django.db import transaction

from payments.models import Event

logger = logging.getLogger("payments.activity")
# Above this many Events in one write, one summary line per (batch, type) instead.
ONE_LINE_EACH = 5


def _subject(event: Event) -> str:
    if event.payment_id:
        return event.payment.public_id
    return event.batch.public_id if event.batch_id else event.public_id


def log_on_commit(events: Sequence[Event]) -> None:
    """Log `events` at INFO when the current transaction commits (at once outside one)."""
    if not events or not logger.isEnabledFor(logging.INFO):
        return
    if len(events) <= ONE_LINE_EACH:
        lines = [("%s %s (%s)", (_subject(e), e.type, e.actor)) for e in events]
    else:
        groups = Counter(
            (e.payment.batch.public_id if e.payment_id and e.payment.batch_id else "-", e.type, e.actor)
            for e in events
        )
        lines = [("%s %d x %s (%s)", (batch, n, type_, actor)) for (batch, type_, actor), n in groups.items()]

    def write() -> None:
        for message, args in lines:
            logger.info(message, *args)

    transaction.on_commit(write)
