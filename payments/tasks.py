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


def callbacks_purge_task() -> int:
    """Scheduled: delete rejected and duplicate callbacks past their retention."""
    return callbacks.callbacks_purge()


def sandbox_deliver_task(operation_id: int) -> None:
    sandbox.deliver_notices(operation_id)


def sweep_task() -> dict:
    return sweeper.sweep()


def delivery_send_task(delivery_id: int) -> None:
    from payments.services.notifications.sending import delivery_send

    delivery_send(delivery_id=delivery_id)


def deliveries_send_task(delivery_ids: list[int]) -> None:
    from payments.services.notifications.sending import deliveries_send

    deliveries_send(delivery_ids=delivery_ids)


def idempotency_keys_purge_task() -> int:
    """Delete Idempotency-Keys older than 24 hours (payments/api/idempotency.py)."""
    from payments.api.idempotency import purge_expired_keys

    return purge_expired_keys()


def reconcile_task() -> dict:
    """Scheduled: enqueue a gateway query for every payment and refund whose outcome is overdue."""
    from payments.services.reconcile import reconcile_due

    return reconcile_due()


def payment_reconcile_task(payment_id: int, force: bool = False) -> str:
    from payments.services.reconcile import payment_reconcile

    return payment_reconcile(payment_id=payment_id, force=force)


def refund_reconcile_task(refund_id: int, force: bool = False) -> str:
    from payments.services.reconcile import refund_reconcile

    return refund_reconcile(refund_id=refund_id, force=force)


# Batches (payments/services/batches/lifecycle.py and its batch_* submodules).


def batch_validate_task(batch_id: int, **_broker_options) -> None:
    """Validate an uploaded batch; `q_options` (its longer timeout) matter only to the broker."""
    from payments.services.batches.ingest import batch_validate

    batch_validate(batch_id=batch_id)


def batch_start_task(batch_id: int) -> None:
    from payments.services.batches.lifecycle import batch_start

    batch_start(batch_id=batch_id)


def batch_chunk_task(chunk_id: int) -> None:
    from payments.services.batches.execute import batch_chunk_execute

    batch_chunk_execute(chunk_id=chunk_id)


def batch_check_task(batch_id: int) -> None:
    from payments.services.batches.lifecycle import batch_check_complete

    batch_check_complete(batch_id=batch_id)


def batch_cancel_rest_task(batch_id: int) -> None:
    from payments.services.batches.lifecycle import batch_cancel_rest

    batch_cancel_rest(batch_id=batch_id)
