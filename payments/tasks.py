"""django-q2 task entry points: load by id, call one service. Each is safe to run twice."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from payments.gateways import sandbox
from payments.services import callbacks, controls, payments, reconcile, sweeper, timing_models
from payments.services.batches import bank_files, execute, ingest, lifecycle, retention
from payments.services.idempotency import purge_expired_keys
from payments.services.notifications import sending


def worker_ping_task() -> str:
    """Answer "pong": how run_demo knows a worker takes tasks."""
    return "pong"


def payment_submit_task(payment_id: int) -> None:
    payments.payment_submit(payment_id=payment_id, actor="system:worker")


def attempt_run_task(attempt_id: int) -> None:
    """Execute an attempt created in a committed transaction (a late payment's automatic refund)."""
    payments.attempt_run(attempt_id=attempt_id)


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
    sending.delivery_send(delivery_id=delivery_id)


def deliveries_send_task(delivery_ids: list[int]) -> None:
    sending.deliveries_send(delivery_ids=delivery_ids)


def timing_models_fit_task() -> int:
    """Refit C(r) and N(r) (payments/services/timing_models.py); return how many were saved."""
    results = timing_models.timing_models_fit(fitted_by="daily schedule")
    return sum(r.saved is not None for r in results)


def idempotency_keys_purge_task() -> int:
    """Delete Idempotency-Keys older than 24 hours (payments/services/idempotency.py)."""
    return purge_expired_keys()


def reconcile_task() -> dict:
    """Scheduled: enqueue a gateway query for every payment and refund whose outcome is overdue."""
    return reconcile.reconcile_due()


def payment_reconcile_task(payment_id: int, force: bool = False) -> str:
    return reconcile.payment_reconcile(payment_id=payment_id, force=force)


def refund_reconcile_task(refund_id: int, force: bool = False) -> str:
    return reconcile.refund_reconcile(refund_id=refund_id, force=force)


# Batches (payments/services/batches/).


def batch_validate_task(batch_id: int, **_broker_options) -> None:
    """Validate an uploaded batch; `q_options` (its longer timeout) matter only to the broker."""
    ingest.batch_validate(batch_id=batch_id)


def batch_start_task(batch_id: int) -> None:
    lifecycle.batch_start(batch_id=batch_id)


def batch_chunk_task(chunk_id: int) -> None:
    execute.batch_chunk_execute(chunk_id=chunk_id)


def batch_check_task(batch_id: int) -> None:
    lifecycle.batch_check_complete(batch_id=batch_id)


def batch_notify_beneficiaries_task(batch_id: int) -> None:
    lifecycle.batch_notify_beneficiaries(batch_id=batch_id)


def batch_cancel_rest_task(batch_id: int) -> None:
    lifecycle.batch_cancel_rest(batch_id=batch_id)


def batches_due_task() -> int:
    """Scheduled: start the approved batches whose requested execution date has come."""
    return lifecycle.batches_due()


def bank_file_write_task(batch_id: int, **_broker_options) -> None:
    """Write a batch's bank file; `q_options` (its longer timeout) matter only to the broker."""
    bank_files.bank_file_write(batch_id=batch_id)


def rates_fetch_task() -> int:
    """Fetch reference rates where PAYDESK_RATES_URL is set (hourly; the same day's rates are replaced)."""
    return controls.rates_fetch()


def batch_files_purge_task() -> int:
    """Scheduled: delete the stored files of final batches past PAYDESK_UPLOAD_RETENTION_DAYS."""
    return retention.batch_files_purge()
