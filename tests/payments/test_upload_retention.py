"""Stored upload files are deleted once their batch has been final for PAYDESK_UPLOAD_RETENTION_DAYS."""

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from payments.models import PaymentBatch
from payments.services.batches.retention import batch_files_purge
from tests.payments.test_batch_support import csv_bytes, media, rows, upload  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


def aged(batch, status, days):
    PaymentBatch.objects.filter(pk=batch.pk).update(
        status=status, updated_at=timezone.now() - timedelta(days=days)
    )


def test_files_of_final_batches_past_retention_are_deleted_and_others_kept(
    merchant_a, alice, settings, django_capture_on_commit_callbacks
):
    settings.PAYDESK_UPLOAD_RETENTION_DAYS = 7
    batches = [
        upload(
            merchant_a,
            csv_bytes(rows(1, prefix=f"P{i}")),
            user=alice,
            capture=django_capture_on_commit_callbacks,
        )
        for i in range(4)
    ]
    names = [b.stored_file for b in batches]
    assert all(names) and all(default_storage.exists(n) for n in names)
    aged(batches[0], "completed", 8)  # final, past retention: deleted
    aged(batches[1], "rejected", 30)  # final, past retention: deleted
    aged(batches[2], "completed", 2)  # final, within retention: kept
    aged(batches[3], "approved", 30)  # not final: kept whatever its age
    assert batch_files_purge() == 2
    assert [default_storage.exists(n) for n in names] == [False, False, True, True]
    assert list(PaymentBatch.objects.order_by("pk").values_list("stored_file", flat=True)) == [
        "",
        "",
        names[2],
        names[3],
    ]
    assert batch_files_purge() == 0  # a second run has nothing to do
    assert batches[0].payments.count() == 1  # the payments stay


def test_zero_days_deletes_on_the_next_run(merchant_a, alice, settings, django_capture_on_commit_callbacks):
    settings.PAYDESK_UPLOAD_RETENTION_DAYS = 0
    batch = upload(merchant_a, csv_bytes(rows(1)), user=alice, capture=django_capture_on_commit_callbacks)
    aged(batch, "cancelled", 0)
    assert batch_files_purge() == 1
    assert not default_storage.exists(batch.stored_file)
