"""Per-merchant webhook send slots: one slow merchant cannot hold every worker.

DESIGN section 8: one `manage.py qcluster` process runs all of a node's work
(payments, callbacks, notifications) in Q_WORKERS processes. A merchant whose
endpoint hangs must not be able to keep them all busy. So a worker sends a
merchant's webhooks only while it holds one of that merchant's
settings.PAYDESK_WEBHOOK_SLOTS_PER_MERCHANT slots (default 1), rows of
`WebhookSendSlot` taken with a conditional UPDATE, cluster-wide (every node
shares the database). A task that finds them all taken sends nothing and
claims nothing: its deliveries stay due, and the slot's holder sends them
before it lets the slot go (sending.py), or the sweeper re-enqueues them.

A slot is leased like a claimed delivery: a worker that dies frees it when
the lease runs out; a live one renews the lease before each batch it claims.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from payments.models import WebhookSendSlot


@dataclass(frozen=True)
class Slot:
    """A slot this worker holds; `holder` proves it (a lost lease is someone else's slot)."""

    pk: int
    merchant_id: int
    holder: str


def slots_per_merchant() -> int:
    return max(1, int(settings.PAYDESK_WEBHOOK_SLOTS_PER_MERCHANT))


def _free(now: datetime) -> Q:
    return Q(leased_until__isnull=True) | Q(leased_until__lte=now)


def slot_take(merchant_id: int, *, lease: int, now: datetime | None = None) -> Slot | None:
    """Take one of the merchant's free slots for `lease` seconds; None if all are held."""
    now = now or timezone.now()
    budget = slots_per_merchant()
    slots = WebhookSendSlot.objects.filter(merchant_id=merchant_id, number__lt=budget)
    free = list(slots.filter(_free(now)).values_list("pk", flat=True))
    if not free and slots.count() < budget:
        WebhookSendSlot.objects.bulk_create(
            [WebhookSendSlot(merchant_id=merchant_id, number=n) for n in range(budget)], ignore_conflicts=True
        )
        free = list(slots.filter(_free(now)).values_list("pk", flat=True))
    holder = f"{settings.PAYDESK_NODE_NAME}:{os.getpid()}:{secrets.token_hex(4)}"
    for pk in free:
        taken = WebhookSendSlot.objects.filter(_free(now), pk=pk).update(
            holder=holder, leased_until=now + timedelta(seconds=lease)
        )
        if taken:
            return Slot(pk=pk, merchant_id=merchant_id, holder=holder)
    return None


def slot_renew(slot: Slot, *, lease: int, now: datetime | None = None) -> bool:
    """Extend the lease of a held slot; False if it ran out and another worker took it."""
    now = now or timezone.now()
    return bool(
        WebhookSendSlot.objects.filter(pk=slot.pk, holder=slot.holder).update(
            leased_until=now + timedelta(seconds=lease)
        )
    )


def slot_free(slot: Slot) -> None:
    WebhookSendSlot.objects.filter(pk=slot.pk, holder=slot.holder).update(holder="", leased_until=None)
