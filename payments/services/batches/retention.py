"""Stored upload files are not kept forever: a final batch's file is deleted after a retention period.

The payments a file became, its row errors, its SHA-256 (duplicate detection)
and its result reports stay in the database; the file itself carries every
beneficiary's account in plaintext, so it is deleted PAYDESK_UPLOAD_RETENTION_DAYS
after the batch became final (completed, cancelled or rejected). Hourly
schedule `paydesk-upload-purge`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from payments.models import BatchStatus, PaymentBatch

logger = logging.getLogger(__name__)

FINAL = (BatchStatus.COMPLETED, BatchStatus.CANCELLED, BatchStatus.REJECTED)


def batch_files_purge(*, limit: int = 1000) -> int:
    """Delete the stored files of batches final for longer than the retention; return how many."""
    cutoff = timezone.now() - timedelta(days=settings.PAYDESK_UPLOAD_RETENTION_DAYS)
    due = PaymentBatch.objects.filter(status__in=FINAL, updated_at__lte=cutoff).exclude(stored_file="")
    purged = 0
    for pk, name in due.values_list("pk", "stored_file")[:limit]:
        default_storage.delete(name)  # a file already gone is no error
        # Conditional: a file name that changed meanwhile is left for the next run.
        purged += PaymentBatch.objects.filter(pk=pk, stored_file=name).update(stored_file="")
    if purged:
        logger.info("deleted %d stored batch files past their retention", purged)
    return purged
