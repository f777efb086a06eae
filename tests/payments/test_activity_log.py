"""PayDesk's own work shows at INFO: one line per committed Event, one per batch and type in bulk."""

from __future__ import annotations

import logging

import pytest

from payments.models import BatchChunk
from payments.services.batches.execute import batch_chunk_execute
from payments.services.batches.lifecycle import batch_approve, batch_start
from payments.services.payments import payment_create
from tests.factories import payment_input
from tests.payments.test_batch_support import csv_bytes, media, rows, upload  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


def activity(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "payments.activity" and r.levelname == "INFO"]


def test_a_payment_logs_each_change_once_committed(
    caplog, merchant_a, alice, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.INFO)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        payment = payment_create(merchant=merchant_a, data=payment_input(), user=alice)
    assert activity(caplog) == []  # nothing until the transaction commits
    for callback in callbacks:
        callback()
    assert activity(caplog) == [
        f"{payment.public_id} payment.created (user:{alice.pk})",
        f"{payment.public_id} payment.processing (user:{alice.pk})",
    ]


def test_a_batch_logs_one_line_per_type_not_one_per_payment(
    caplog, merchant_a, alice, carol, sandbox_wire, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.INFO)
    batch = upload(merchant_a, csv_bytes(rows(20)), user=alice, capture=django_capture_on_commit_callbacks)
    assert activity(caplog) == [
        f"{batch.public_id} batch.uploaded (user:{alice.pk})",
        f"{batch.public_id} batch.validated (system:validation)",
    ]
    with django_capture_on_commit_callbacks(execute=True):
        batch_approve(batch=batch, user=carol)
        batch_start(batch_id=batch.pk)
    for chunk in BatchChunk.objects.filter(batch=batch):
        with django_capture_on_commit_callbacks(execute=True):
            batch_chunk_execute(chunk_id=chunk.pk)
    lines = activity(caplog)
    assert f"{batch.public_id} 20 x payment.processing (system:batch)" in lines
    assert len(lines) < 10, lines
