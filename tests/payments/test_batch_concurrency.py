"""Batches under real concurrency on PostgreSQL (threads, committed data)."""

import logging
import threading

import pytest
from django.db import connection

from payments.models import BatchChunk, BatchRowError, Payment, SandboxOperation
from payments.services.batches.execute import batch_chunk_execute, chunk_claim
from payments.services.batches.ingest import batch_validate
from payments.services.batches.lifecycle import batch_approve, batch_start, batch_upload
from payments.services.batches.upload import store_bytes
from tests.payments.test_batch_support import csv_bytes, media, rows  # noqa: F401

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("media")]


@pytest.fixture
def no_broker(settings, monkeypatch):
    """Nothing is queued: the test runs the work itself."""
    from payments.services.batches import ingest as batch_ingest
    from payments.services.batches import lifecycle as batches

    settings.PAYDESK_RUN_TASKS_INLINE = False
    monkeypatch.setattr("payments.queue.enqueue", lambda *a, **k: None)
    monkeypatch.setattr(batches, "enqueue_validation_on_commit", lambda pk: None)
    monkeypatch.setattr(batch_ingest, "enqueue_validation", lambda pk: None)


def in_threads(*calls):
    errors = []

    def run(fn):
        try:
            fn()
        except Exception as exc:  # reported below, with the failing thread's exception
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_existing_references_are_found_while_the_copy_streams(
    transactional_db, no_broker, merchant_a, alice, caplog
):
    first = batch_upload(merchant=merchant_a, upload=store_bytes(csv_bytes(rows(3)), "a.csv"), user=alice)
    batch_validate(batch_id=first.pk)
    second = batch_upload(merchant=merchant_a, upload=store_bytes(csv_bytes(rows(5)), "b.csv"), user=alice)
    with caplog.at_level(logging.INFO, logger="payments.services.batches.ingest"):
        second = batch_validate(batch_id=second.pk)
    assert "validating again" not in caplog.text  # found by the look-up connection, not by the constraint
    assert second.valid_count == 2
    assert BatchRowError.objects.filter(batch=second, code="duplicate_reference").count() == 3


def test_two_files_with_the_same_references_validated_at_once_pay_each_reference_once(
    transactional_db, no_broker, merchant_a, alice
):
    a = batch_upload(merchant=merchant_a, upload=store_bytes(csv_bytes(rows(300)), "a.csv"), user=alice)
    data = csv_bytes(rows(300)[::-1])  # the same references, another file
    b = batch_upload(merchant=merchant_a, upload=store_bytes(data, "b.csv"), user=alice)
    in_threads(lambda: batch_validate(batch_id=a.pk), lambda: batch_validate(batch_id=b.pk))
    a.refresh_from_db()
    b.refresh_from_db()
    assert sorted([a.valid_count, b.valid_count]) == [0, 300]
    assert Payment.objects.filter(merchant=merchant_a).count() == 300
    assert BatchRowError.objects.filter(code="duplicate_reference").count() == 300


def test_two_workers_claiming_the_same_chunks_never_submit_a_payment_twice(
    transactional_db, no_broker, settings, merchant_a, alice, carol
):
    settings.PAYDESK_BATCH_CHUNK_SIZE = 50
    batch = batch_upload(merchant=merchant_a, upload=store_bytes(csv_bytes(rows(400)), "a.csv"), user=alice)
    batch_validate(batch_id=batch.pk)
    batch_approve(batch=batch, user=carol)
    batch_start(batch_id=batch.pk)
    ids = list(BatchChunk.objects.filter(batch=batch).values_list("pk", flat=True))
    claims = []

    def worker():
        for pk in ids:
            done = batch_chunk_execute(chunk_id=pk)
            if done is not None:
                claims.append(pk)

    in_threads(worker, worker, worker)
    assert sorted(claims) == sorted(ids)  # each chunk run by exactly one of the three
    assert set(BatchChunk.objects.filter(batch=batch).values_list("status", "attempts")) == {("done", 1)}
    assert SandboxOperation.objects.count() == 400
    assert set(Payment.objects.filter(batch=batch).values_list("status", flat=True)) <= {
        "processing",
        "requires_action",
    }
    assert chunk_claim(ids[0]) is None


def test_a_long_validation_beats_so_the_sweeper_leaves_it_alone(
    transactional_db, no_broker, merchant_a, alice, monkeypatch
):
    from payments.services.batches import ingest as batch_ingest
    from payments.services.batches import writers as batch_writers

    monkeypatch.setattr(batch_ingest, "BLOCK_ROWS", 2)
    monkeypatch.setattr(batch_writers, "HEARTBEAT_SECONDS", 0)
    beats = []
    original = batch_writers.CopyWriter.beat

    def spy(self):
        before = self._beat
        original(self)
        if self._beat != before:
            beats.append(1)

    monkeypatch.setattr(batch_writers.CopyWriter, "beat", spy)
    batch = batch_upload(merchant=merchant_a, upload=store_bytes(csv_bytes(rows(6)), "a.csv"), user=alice)
    assert batch_validate(batch_id=batch.pk).status == "validated"
    assert len(beats) >= 3  # one per block of rows, committed on the look-up connection


def test_two_people_retrying_the_same_batch_at_once_make_one_batch(
    transactional_db, no_broker, merchant_a, alice, bob, carol
):
    from payments.models import PaymentBatch, PaymentStatus
    from payments.services.batches.retry import batch_retry_create

    batch = batch_upload(merchant=merchant_a, upload=store_bytes(csv_bytes(rows(4)), "r.csv"), user=alice)
    batch_validate(batch_id=batch.pk)
    PaymentBatch.objects.filter(pk=batch.pk).update(status="completed")
    Payment.objects.filter(batch=batch).update(
        status=PaymentStatus.FAILED, failure_code="processing_error", failure_retryable=True
    )
    batch.refresh_from_db()
    made = []
    in_threads(
        lambda: made.append(batch_retry_create(batch=batch, user=alice).pk),
        lambda: made.append(batch_retry_create(batch=batch, user=bob).pk),
    )
    assert len(made) == 2 and made[0] == made[1]
    assert PaymentBatch.objects.filter(retry_of=batch).count() == 1
