"""django-q2 task entry points: load by id, call one service. Each is safe to run twice."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from payments.gateways import sandbox
from payments.services import callbacks, payments, sweeper


def payment_submit_task(payment_id: int) -> None:
    payments.payment_submit(payment_id=payment_id, actor="system:worker")


def attempt_resume_task(attempt_id: int, stale_before=None) -> None:
    """Resume an attempt the sweeper found overdue; `stale_before` is the sweeper's cut-off."""
    stale = stale_before or timezone.now() - timedelta(seconds=settings.PAYDESK_SWEEP_AFTER)
    payments.attempt_resume(attempt_id=attempt_id, stale_before=stale)


def callback_apply_task(callback_id: int) -> None:
    callbacks.callback_apply(callback_id=callback_id)


def sandbox_deliver_task(operation_id: int) -> None:
    sandbox.deliver_notices(operation_id)


def sweep_task() -> dict:
    return sweeper.sweep()
