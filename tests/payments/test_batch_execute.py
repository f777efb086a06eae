"""Executing approved batches chunk by chunk through the sandbox: set-based, resumable, cancellable."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.gateways import sandbox
from payments.models import (
    BatchChunk,
    Event,
    GatewayAttempt,
    GatewayCallback,
    Payment,
    PaymentBatch,
    SandboxNotice,
    SandboxOperation,
)
from payments.services.batches import execute as batch_execute
from payments.services.batches.execute import batch_chunk_execute, batch_sweep, chunk_claim
from payments.services.batches.lifecycle import (
    BatchStateError,
    batch_approve,
    batch_cancel,
    batch_cancel_rest,
    batch_check_complete,
    batch_start,
)
from payments.services.lifecycle.locks import lock_payments
from payments.services.lifecycle.transitions import bulk_transition, transition_info
from tests.conftest import work_callbacks
from tests.payments.test_batch_support import csv_bytes, media, rows, upload  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]

MIXED = [
    ("DECL-1", "5.00", "USD", "card", "Decline", "4000000000000002"),
    ("FUND-1", "6.00", "USD", "card", "Funds", "4000000000000051"),
    ("ACT-1", "7.00", "USD", "card", "Action", "4000000000003155"),
    ("REV-1", "9.00", "EUR", "card", "Reverse", "4000000000000077"),
    ("RETRY-1", "4.00", "USD", "card", "Retry", "4000000000000119"),
]


@pytest.fixture
def validated(merchant_a, alice, django_capture_on_commit_callbacks):
    def make(data: bytes):
        batch = upload(merchant_a, data, user=alice, capture=django_capture_on_commit_callbacks)
        assert batch.status == "validated", batch.rejection_reason
        return batch

    return make


@pytest.fixture
def started(validated, carol, django_capture_on_commit_callbacks):
    """An approved batch cut into chunks, none executed yet (their tasks are not run)."""

    def make(data: bytes):
        batch = validated(data)
        with django_capture_on_commit_callbacks():
            batch_approve(batch=batch, user=carol)
            batch_start(batch_id=batch.pk)
        batch.refresh_from_db()
        assert batch.status == "processing"
        return batch

    return make


def statuses(batch) -> dict[str, str]:
    return dict(Payment.objects.filter(batch=batch).values_list("reference", "status"))


def chunks(batch) -> list[BatchChunk]:
    return list(BatchChunk.objects.filter(batch=batch).order_by("number"))


def deliver_all(capture) -> None:
    """Send every callback the sandbox owes (through sandbox_wire) and apply them inline."""
    for _ in range(5):
        ops = set(SandboxNotice.objects.filter(sent_at=None).values_list("operation_id", flat=True))
        if not ops:
            return
        with capture(execute=True):
            for op in sorted(ops):
                sandbox.deliver_notices(op)


def test_an_approved_batch_runs_in_chunks_to_completion_with_sums_per_outcome(
    settings, validated, carol, sandbox_wire, django_capture_on_commit_callbacks
):
    settings.PAYDESK_BATCH_CHUNK_SIZE = 4
    batch = validated(csv_bytes(rows(8) + MIXED))
    with django_capture_on_commit_callbacks(execute=True):
        batch_approve(batch=batch, user=carol)
    batch.refresh_from_db()
    assert batch.status == "completed"
    assert [c.size for c in chunks(batch)] == [4, 4, 4, 1]
    assert all(c.status == "done" and c.attempts == 1 for c in chunks(batch))
    final = statuses(batch)
    assert final["DECL-1"] == "failed" and final["FUND-1"] == "failed" and final["RETRY-1"] == "failed"
    assert final["ACT-1"] == "succeeded" and final["REV-1"] == "reversed"
    assert final["PAY-00001"] == "succeeded"
    assert Payment.objects.get(reference="DECL-1").failure_code == "card_declined"
    assert batch.outcomes == {
        "failed": {"USD": {"count": 3, "amount_minor": 1500}},
        "reversed": {"EUR": {"count": 1, "amount_minor": 900}},
        "succeeded": {"USD": {"count": 9, "amount_minor": 8700}},
    }
    # Submitted exactly once each, on the sandbox's own record.
    assert SandboxOperation.objects.count() == 13
    assert set(SandboxOperation.objects.values_list("payment_reference", flat=True)) == set(
        Payment.objects.filter(batch=batch).values_list("public_id", flat=True)
    )
    # The sandbox reported many outcomes per callback, as a bank's status report does.
    assert max(len(body["data"]["results"]) for body in sandbox_wire.sent) >= 4
    assert GatewayCallback.objects.filter(status="applied").count() == len(sandbox_wire.sent)
    # Every transition wrote its Event; the batch has its own.
    action = Payment.objects.get(reference="ACT-1")
    assert list(Event.objects.filter(payment=action).values_list("type", flat=True)) == [
        "payment.processing",
        "payment.requires_action",
        "payment.succeeded",
    ]
    batch_types = list(Event.objects.filter(batch=batch, payment=None).values_list("type", flat=True))
    assert batch_types == [
        "batch.uploaded",
        "batch.validated",
        "batch.approved",
        "batch.processing",
        "batch.completed",
    ]


def test_a_chunk_changes_its_payments_set_based_whatever_its_size(settings, started):
    settings.PAYDESK_BATCH_CHUNK_SIZE = 1000
    small = started(csv_bytes(rows(10, prefix="S")))
    big = started(csv_bytes(rows(60, prefix="B")))
    counts = []
    for batch in (small, big):
        with CaptureQueriesContext(connection) as queries:
            batch_chunk_execute(chunk_id=chunks(batch)[0].pk)
        counts.append(len(queries))
        assert set(statuses(batch).values()) == {"processing"}
    assert counts[0] == counts[1], counts


def test_a_chunk_is_claimed_by_one_worker_until_its_lease_runs_out(settings, started):
    settings.PAYDESK_BATCH_CHUNK_LEASE = 60
    chunk = chunks(started(csv_bytes(rows(2))))[0]
    first = chunk_claim(chunk.pk)
    assert first is not None and first.attempts == 1 and first.status == "claimed"
    assert first.claimed_by.endswith(f":{__import__('os').getpid()}")
    assert chunk_claim(chunk.pk) is None
    assert chunk_claim(chunk.pk, now=timezone.now() + timedelta(seconds=61)).attempts == 2


def test_a_done_chunk_is_not_run_again(started, sandbox_wire):
    batch = started(csv_bytes(rows(3)))
    chunk = chunks(batch)[0]
    batch_chunk_execute(chunk_id=chunk.pk)
    assert batch_chunk_execute(chunk_id=chunk.pk) is None
    assert SandboxOperation.objects.count() == 3


class Crash(Exception):
    pass


@pytest.mark.parametrize("where", ["_call_gateways", "_apply_answers"])
def test_a_chunk_whose_worker_died_is_rerun_with_the_same_keys_and_pays_once(
    settings, started, monkeypatch, where, sandbox_wire, django_capture_on_commit_callbacks
):
    settings.PAYDESK_BATCH_CHUNK_LEASE = 60
    batch = started(csv_bytes(rows(5) + MIXED[2:3]))
    chunk = chunks(batch)[0]
    real = getattr(batch_execute, where)

    def dies(*args, **kwargs):
        if where == "_apply_answers":
            real_results = args[1]
            assert len(real_results) == 6  # the gateway did execute them
        raise Crash("worker killed")

    monkeypatch.setattr(batch_execute, where, dies)
    with pytest.raises(Crash):
        batch_chunk_execute(chunk_id=chunk.pk)
    assert set(statuses(batch).values()) == {"processing"}
    assert GatewayAttempt.objects.filter(payment__batch=batch, status="pending").count() == 6
    ops_before = SandboxOperation.objects.count()
    assert ops_before == (6 if where == "_apply_answers" else 0)
    monkeypatch.setattr(batch_execute, where, real)
    assert batch_chunk_execute(chunk_id=chunk.pk) is None  # still leased to the dead worker
    BatchChunk.objects.filter(pk=chunk.pk).update(claimed_at=timezone.now() - timedelta(seconds=61))
    rerun = batch_chunk_execute(chunk_id=chunk.pk)
    assert (rerun.status, rerun.attempts) == ("done", 2)
    assert SandboxOperation.objects.count() == 6
    assert GatewayAttempt.objects.filter(payment__batch=batch).count() == 6
    assert not GatewayAttempt.objects.filter(payment__batch=batch, status="pending").exists()
    assert statuses(batch)["ACT-1"] == "requires_action"
    deliver_all(django_capture_on_commit_callbacks)
    batch.refresh_from_db()
    assert batch.status == "completed"
    assert set(statuses(batch).values()) == {"succeeded"}


def test_cancelling_a_processing_batch_cancels_what_is_not_yet_submitted(
    settings, started, carol, sandbox_wire, django_capture_on_commit_callbacks
):
    settings.PAYDESK_BATCH_CHUNK_SIZE = 3
    batch = started(csv_bytes(rows(7)))
    first, second, third = chunks(batch)
    batch_chunk_execute(chunk_id=first.pk)  # submitted; its outcomes not delivered yet
    with django_capture_on_commit_callbacks() as queued:
        batch = batch_cancel(batch=batch, user=carol)
    assert batch.status == "processing" and batch.cancel_requested_at is not None
    assert len(work_callbacks(queued)) == 1
    assert batch_cancel_rest(batch_id=batch.pk) == 4
    after = statuses(batch)
    assert [after[f"PAY-{i:05d}"] for i in range(1, 8)] == ["processing"] * 3 + ["cancelled"] * 4
    assert Event.objects.filter(batch=batch, type="payment.cancelled").count() == 4
    assert batch_chunk_execute(chunk_id=second.pk).submitted_count == 0
    assert SandboxOperation.objects.count() == 3
    batch.refresh_from_db()
    assert batch.status == "processing"  # the submitted payments are still out
    deliver_all(django_capture_on_commit_callbacks)
    batch.refresh_from_db()
    assert batch.status == "completed"
    assert batch.outcomes == {
        "cancelled": {"USD": {"count": 4, "amount_minor": 4000}},
        "succeeded": {"USD": {"count": 3, "amount_minor": 3000}},
    }
    with pytest.raises(BatchStateError):
        batch_cancel(batch=batch, user=carol)


def test_a_chunk_claimed_after_the_cancel_cancels_instead_of_submitting(settings, started, carol):
    settings.PAYDESK_BATCH_CHUNK_SIZE = 2
    batch = started(csv_bytes(rows(4)))
    batch_cancel(batch=batch, user=carol)
    executed = batch_chunk_execute(chunk_id=chunks(batch)[1].pk)
    assert (executed.submitted_count, executed.cancelled_count) == (0, 2)
    assert not SandboxOperation.objects.exists()


def test_cancelling_before_execution_cancels_the_batch_and_its_payments(
    validated, carol, django_capture_on_commit_callbacks
):
    batch = validated(csv_bytes(rows(3)))
    with django_capture_on_commit_callbacks(execute=True):
        batch = batch_cancel(batch=batch, user=carol)
    assert batch.status == "cancelled" and batch.cancelled_at is not None
    assert set(statuses(batch).values()) == {"cancelled"}
    assert Event.objects.filter(batch=batch, type="batch.cancelled").exists()
    with pytest.raises(BatchStateError):
        batch_approve(batch=batch, user=carol)


def test_a_viewer_cannot_cancel(validated, merchant_a):
    from merchants.models import Membership
    from payments.services.batches.lifecycle import BatchForbidden
    from tests.factories import MembershipFactory, UserFactory

    batch = validated(csv_bytes(rows(1)))
    viewer = UserFactory(username="viewer@a.example")
    MembershipFactory(user=viewer, merchant=merchant_a, role=Membership.Role.VIEWER)
    with pytest.raises(BatchForbidden):
        batch_cancel(batch=batch, user=viewer)


def test_a_chunk_that_keeps_killing_its_worker_is_dead_lettered_and_the_batch_completes(settings, started):
    batch = started(csv_bytes(rows(2)))
    chunk = chunks(batch)[0]
    BatchChunk.objects.filter(pk=chunk.pk).update(attempts=settings.PAYDESK_MAX_ATTEMPTS)
    dead = batch_chunk_execute(chunk_id=chunk.pk)
    assert dead.status == "dead" or BatchChunk.objects.get(pk=chunk.pk).status == "dead"
    assert set(statuses(batch).values()) == {"cancelled"}
    assert batch_check_complete(batch_id=batch.pk)
    assert PaymentBatch.objects.get(pk=batch.pk).status == "completed"


def test_the_sweeper_requeues_lost_batch_work(settings, started, monkeypatch):
    settings.PAYDESK_SWEEP_AFTER = 60
    settings.PAYDESK_BATCH_CHUNK_LEASE = 120
    sent = []
    monkeypatch.setattr(batch_execute, "enqueue", lambda func, *args, **kw: sent.append((func, args)))
    batch = started(csv_bytes(rows(2)))
    chunk = chunks(batch)[0]
    assert batch_sweep(now=timezone.now())["batch_chunks"] == 0  # fresh work is left alone
    counts = batch_sweep(now=timezone.now() + timedelta(seconds=300))
    assert ("payments.tasks.batch_chunk_task", (chunk.pk,)) in sent
    assert counts["batch_chunks"] == 1 and counts["batch_checks"] == 1
    # A claim that outlived its lease (its worker died) is queued again too.
    BatchChunk.objects.filter(pk=chunk.pk).update(status="claimed", claimed_at=timezone.now())
    sent.clear()
    batch_sweep(now=timezone.now() + timedelta(seconds=121))
    assert ("payments.tasks.batch_chunk_task", (chunk.pk,)) in sent


def test_the_sweeper_restarts_stuck_validations_and_starts(settings, merchant_a, alice, carol, monkeypatch):
    from payments.services.batches.lifecycle import batch_upload
    from payments.services.batches.upload import store_bytes

    settings.PAYDESK_RUN_TASKS_INLINE = False
    sent = []
    monkeypatch.setattr(batch_execute, "enqueue", lambda func, *args, **kw: sent.append((func, args)))
    monkeypatch.setattr(batch_execute, "enqueue_validation", lambda pk: sent.append(("validate", (pk,))))
    stuck = batch_upload(merchant=merchant_a, upload=store_bytes(csv_bytes(rows(1)), "a.csv"), user=alice)
    counts = batch_sweep(now=timezone.now() + timedelta(seconds=settings.PAYDESK_SWEEP_AFTER + 1))
    assert ("validate", (stuck.pk,)) in sent and counts["batch_validations"] == 1


def test_a_report_naming_one_payment_twice_is_applied_in_its_order(
    started, sandbox_wire, django_capture_on_commit_callbacks
):
    import json
    import time

    from django.test import Client

    batch = started(csv_bytes(rows(2)))
    batch_chunk_execute(chunk_id=chunks(batch)[0].pk)
    keys = list(
        GatewayAttempt.objects.filter(payment__batch=batch)
        .order_by("pk")
        .values_list("idempotency_key", flat=True)
    )
    results = [
        {"type": "payment.succeeded", "attempt_key": keys[0]},
        {"type": "payment.reversed", "attempt_key": keys[0], "failure_code": "chargeback"},
        {
            "type": "payment.failed",
            "attempt_key": keys[1],
            "failure_code": "card_declined",
            "failure_message": "no",
        },
        {"type": "payment.refunded", "attempt_key": keys[1]},
    ]
    body = json.dumps(
        {
            "id": "sbxevt_report1",
            "type": "payment.succeeded",
            "created": int(time.time()),
            "data": {"results": results},
        }
    ).encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(
            "/callbacks/sandbox/",
            data=body,
            content_type="application/json",
            HTTP_X_SANDBOX_SIGNATURE=sandbox.sign(body, int(time.time())),
        )
    assert response.status_code == 200
    first, second = Payment.objects.filter(batch=batch).order_by("pk")
    assert (first.status, second.status, second.failure_code) == ("reversed", "failed", "card_declined")
    callback = GatewayCallback.objects.get(event_id="sbxevt_report1")
    assert callback.status == "applied"
    assert "payment.refunded not allowed" in callback.reason


def test_bulk_transitions_move_only_the_rows_the_graph_allows(started, django_capture_on_commit_callbacks):
    batch = started(csv_bytes(rows(3)))
    one = Payment.objects.filter(batch=batch).order_by("pk").first()
    Payment.objects.filter(pk=one.pk).update(status="processing")
    assert transition_info("cancel").sources == {"created", "on_hold", "requires_action"}
    from django.db import transaction

    with transaction.atomic():
        moved = bulk_transition(lock_payments(Payment.objects.filter(batch=batch)), "cancel", actor="test")
    assert len(moved) == 2
    assert Payment.objects.get(pk=one.pk).status == "processing"
    assert all(p.completed_at is not None for p in Payment.objects.filter(batch=batch, status="cancelled"))


BENEFICIARY_HEADER = (
    "reference",
    "amount",
    "currency",
    "method",
    "beneficiary_name",
    "beneficiary_account",
    "beneficiary_email",
    "beneficiary_phone",
)


def test_beneficiaries_are_told_once_when_the_merchant_opted_in(
    merchant_a, validated, carol, sandbox_wire, django_capture_on_commit_callbacks
):
    from merchants.models import Merchant
    from payments.models import Delivery
    from payments.services.batches.lifecycle import batch_notify_beneficiaries

    data = [
        ("BEN-1", "5.00", "USD", "card", "Ada", "4000000000001234", "ada@example.com", "+14155550101"),
        ("BEN-2", "6.00", "USD", "card", "Bob", "4000000000000051", "bob@example.com", ""),
        ("BEN-3", "7.00", "USD", "card", "Cy", "4000000000004321", "", ""),
    ]
    Merchant.objects.filter(pk=merchant_a.pk).update(notify_beneficiaries=True)
    batch = validated(csv_bytes(data, header=BENEFICIARY_HEADER))
    with django_capture_on_commit_callbacks(execute=True):
        batch_approve(batch=batch, user=carol)
    batch.refresh_from_db()
    assert batch.status == "completed" and batch.beneficiaries_notified_at is not None
    told = sorted(Delivery.objects.filter(type="beneficiary.paid").values_list("channel", "recipient"))
    # Only the paid beneficiary with an address hears of it (BEN-2 failed, BEN-3 has no contact).
    assert told == [("email", "ada@example.com"), ("sms", "+14155550101")]
    assert batch_notify_beneficiaries(batch_id=batch.pk) == 0  # a second run sends nothing


def test_beneficiaries_are_not_told_by_default(
    validated, carol, sandbox_wire, django_capture_on_commit_callbacks
):
    from payments.models import Delivery

    batch = validated(csv_bytes(rows(2)))
    with django_capture_on_commit_callbacks(execute=True):
        batch_approve(batch=batch, user=carol)
    batch.refresh_from_db()
    assert batch.status == "completed" and batch.beneficiaries_notified_at is None
    assert not Delivery.objects.filter(type="beneficiary.paid").exists()
