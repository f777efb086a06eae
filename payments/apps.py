from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate

from payments.checks import check_gateway_routes, check_translations, check_urls


def ensure_schedules(sender, **kwargs) -> None:
    """Create the periodic schedules (sweeper, reconciliation, purges) once each (idempotent)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="paydesk-sweeper",
        defaults={
            "func": "payments.tasks.sweep_task",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    # Payments and refunds whose gateway outcome is overdue are queried there; expired QR codes cancelled.
    Schedule.objects.update_or_create(
        name="paydesk-reconcile",
        defaults={
            "func": "payments.tasks.reconcile_task",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    # Approved batches with a requested execution date start on that day.
    Schedule.objects.update_or_create(
        name="paydesk-batches-due",
        defaults={
            "func": "payments.tasks.batches_due_task",
            "schedule_type": Schedule.MINUTES,
            "minutes": 10,
            "repeats": -1,
        },
    )
    # API Idempotency-Keys are kept 24 hours; purge the expired ones every hour.
    Schedule.objects.update_or_create(
        name="paydesk-idempotency-purge",
        defaults={
            "func": "payments.tasks.idempotency_keys_purge_task",
            "schedule_type": Schedule.HOURLY,
            "repeats": -1,
        },
    )
    # Rejected and duplicate callbacks are kept PAYDESK_CALLBACK_RETENTION_DAYS for audit, then deleted.
    Schedule.objects.update_or_create(
        name="paydesk-callback-purge",
        defaults={
            "func": "payments.tasks.callbacks_purge_task",
            "schedule_type": Schedule.HOURLY,
            "repeats": -1,
        },
    )
    # Uploaded batch files are deleted PAYDESK_UPLOAD_RETENTION_DAYS after their batch is final.
    Schedule.objects.update_or_create(
        name="paydesk-upload-purge",
        defaults={
            "func": "payments.tasks.batch_files_purge_task",
            "schedule_type": Schedule.HOURLY,
            "repeats": -1,
        },
    )
    # Reference exchange rates from PAYDESK_RATES_URL (the ECB publishes once a working day).
    Schedule.objects.update_or_create(
        name="paydesk-rates-fetch",
        defaults={"func": "payments.tasks.rates_fetch_task", "schedule_type": Schedule.HOURLY, "repeats": -1},
    )

    # The seed's C(r) (callback arrival per gateway) and N(r) (delivery success per webhook endpoint)
    # are refitted from the last PAYDESK_TIMING_WINDOW_DAYS of history once a day.
    Schedule.objects.update_or_create(
        name="paydesk-fit-timing-models",
        defaults={
            "func": "payments.tasks.timing_models_fit_task",
            "schedule_type": Schedule.DAILY,
            "repeats": -1,
        },
    )


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"

    def ready(self) -> None:
        post_migrate.connect(ensure_schedules, sender=self)
        checks.register(check_gateway_routes)
        checks.register(check_urls)
        checks.register(check_translations)
