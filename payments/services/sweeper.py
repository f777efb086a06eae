"""Periodic recovery: re-enqueue work whose task was lost (DESIGN section 2).

Nothing depends on an on-commit hook firing or a broker keeping a task: the
database holds every pending unit with its attempt counter, and this sweep,
run by a django-q2 schedule, re-enqueues what is overdue.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from payments.gateways import sandbox
from payments.models import GatewayAttempt, GatewayCallback, Payment, PaymentStatus
from payments.queue import enqueue
from payments.services.batches.execute import batch_sweep
from payments.services.notifications.sending import deliveries_sweep

SWEEP_LIMIT = 500


def sweep(*, now=None) -> dict[str, int]:
    """Re-enqueue overdue callbacks, gateway attempts, sandbox notices and unsubmitted payments."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.PAYDESK_SWEEP_AFTER)
    counts = {"callbacks": 0, "attempts": 0, "sandbox_notices": 0, "payments": 0}

    callbacks = GatewayCallback.objects.filter(
        status=GatewayCallback.Status.RECEIVED, received_at__lt=stale
    ).exclude(last_attempt_at__gte=stale)
    for pk in callbacks.values_list("pk", flat=True)[:SWEEP_LIMIT]:
        enqueue("payments.tasks.callback_apply_task", pk)
        counts["callbacks"] += 1

    attempts = GatewayAttempt.objects.filter(status=GatewayAttempt.Status.PENDING, last_call_at__lt=stale)
    for pk in attempts.values_list("pk", flat=True)[:SWEEP_LIMIT]:
        enqueue("payments.tasks.attempt_resume_task", pk, stale)
        counts["attempts"] += 1

    # A remote sandbox (PAYDESK_SANDBOX_URL) sends its own callbacks, as a real gateway does.
    if not settings.PAYDESK_SANDBOX_URL:
        for op_id in sandbox.overdue_operations(now=now, stale=stale, limit=SWEEP_LIMIT):
            enqueue("payments.tasks.sandbox_deliver_task", op_id)
            counts["sandbox_notices"] += 1

    # Real-time payments created but never claimed (crash between create and submit).
    orphans = Payment.objects.filter(status=PaymentStatus.CREATED, batch=None, created_at__lt=stale)
    for pk in orphans.values_list("pk", flat=True)[:SWEEP_LIMIT]:
        enqueue("payments.tasks.payment_submit_task", pk)
        counts["payments"] += 1

    # Notification deliveries: retries now due, attempts whose worker died, dead letters.
    counts.update(deliveries_sweep(now=now))

    # Batches: validations and starts whose task was lost, chunks whose worker died.
    counts.update(batch_sweep(now=now))
    return counts
