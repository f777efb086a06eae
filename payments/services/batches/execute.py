"""Executing a batch chunk by chunk, on any number of workers, never paying anything twice.

A chunk task (1) claims its chunk with a conditional UPDATE that commits the
attempt counter, (2) in one short transaction moves the chunk's `created`
payments to `processing` set-based and writes one GatewayAttempt per payment
(its idempotency key derived from the payment), (3) calls the gateway's batch
submission outside any transaction for every attempt of the chunk still
unanswered, (4) applies the answers set-based and marks the chunk done.

A worker killed anywhere in between leaves the chunk claimed; once its lease
runs out the sweeper queues it again, and the re-run finds the payments
already `processing` and their attempts still pending, and asks the gateway
again with the same keys: the gateway answers from its record.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from payments.db import values_update
from payments.gateways import GatewayError, GatewayResult, get_gateway
from payments.models import BatchChunk, BatchStatus, GatewayAttempt, Payment, PaymentBatch
from payments.queue import enqueue, enqueue_on_commit
from payments.services.batches.bank_files import bank_file_enqueue_if_ready, bank_file_sweep
from payments.services.batches.funding import today
from payments.services.batches.ingest import enqueue_validation, validation_lease_seconds
from payments.services.lifecycle.attempts import attempts_create, gateway_call
from payments.services.lifecycle.locks import lock_payment_ids, lock_payments
from payments.services.lifecycle.outcomes import answer_result, outcomes_apply
from payments.services.lifecycle.transitions import bulk_transition, transition_info

logger = logging.getLogger(__name__)

SWEEP_LIMIT = 500


def node_id() -> str:
    """Who is working: the configured node name and this process id."""
    return f"{settings.PAYDESK_NODE_NAME}:{os.getpid()}"[:120]


def chunk_claim(chunk_id: int, *, now=None) -> BatchChunk | None:
    """Claim a pending chunk, or one whose claim outlived its lease; commit the attempt counter."""
    now = now or timezone.now()
    lease = now - timedelta(seconds=settings.PAYDESK_BATCH_CHUNK_LEASE)
    claimed = (
        BatchChunk.objects.filter(pk=chunk_id)
        .filter(
            Q(status=BatchChunk.Status.PENDING) | Q(status=BatchChunk.Status.CLAIMED, claimed_at__lt=lease)
        )
        .update(
            status=BatchChunk.Status.CLAIMED, claimed_at=now, claimed_by=node_id(), attempts=F("attempts") + 1
        )
    )
    if not claimed:
        return None
    return BatchChunk.objects.select_related("batch").get(pk=chunk_id)


def batch_chunk_execute(*, chunk_id: int) -> BatchChunk | None:
    """Execute one chunk of a processing batch; safe to run twice and on several nodes at once."""
    chunk = chunk_claim(chunk_id)
    if chunk is None:
        return None
    batch = chunk.batch
    if chunk.attempts > settings.PAYDESK_MAX_ATTEMPTS:
        _dead_letter(chunk, batch)
        return chunk
    actor = "system:batch"
    submitted, cancelled = _submit_phase(chunk, batch, actor)
    pending = list(
        GatewayAttempt.objects.filter(
            payment__batch_id=batch.pk,
            payment_id__gte=chunk.first_payment_id,
            payment_id__lte=chunk.last_payment_id,
            kind=GatewayAttempt.Kind.PAYMENT,
            status=GatewayAttempt.Status.PENDING,
        )
        .select_related("payment")
        .order_by("payment_id")
    )
    results = _call_gateways(pending)
    with transaction.atomic():
        _apply_answers(pending, results, batch)
        BatchChunk.objects.filter(pk=chunk.pk, claimed_by=node_id()).update(
            status=BatchChunk.Status.DONE,
            finished_at=timezone.now(),
            submitted_count=F("submitted_count") + submitted,
            cancelled_count=F("cancelled_count") + cancelled,
            last_error="",
        )
        enqueue_on_commit("payments.tasks.batch_check_task", batch.pk)
        bank_file_enqueue_if_ready(batch_id=batch.pk)
    chunk.refresh_from_db()
    return chunk


def _submit_phase(chunk: BatchChunk, batch: PaymentBatch, actor: str) -> tuple[int, int]:
    """Move the chunk's created payments to processing with their attempts (or cancel them)."""
    submit = transition_info("submit")
    with transaction.atomic():
        locked = lock_payments(
            Payment.objects.filter(
                batch_id=batch.pk,
                pk__gte=chunk.first_payment_id,
                pk__lte=chunk.last_payment_id,
                status__in=submit.sources,
            )
        )
        if not locked:
            return 0, 0
        # Read after locking: a cancel committed before our locks is seen here.
        cancel_requested = PaymentBatch.objects.filter(
            pk=batch.pk, cancel_requested_at__isnull=False
        ).exists()
        if cancel_requested:
            done = bulk_transition(locked, "cancel", actor="system:batch_cancel", batches={batch.pk: batch})
            return 0, len(done)
        routed = {p.pk: p.gateway for p in locked}
        attempts_create(locked, now=timezone.now())
        rerouted: dict[str, list[int]] = defaultdict(list)
        for p in locked:
            if p.gateway != routed[p.pk]:
                rerouted[p.gateway].append(p.pk)
        for slug, ids in rerouted.items():
            Payment.objects.filter(pk__in=ids).update(gateway=slug)
        done = bulk_transition(locked, "submit", actor=actor, batches={batch.pk: batch})
        return len(done), 0


def _call_gateways(pending: list[GatewayAttempt]) -> dict[int, GatewayResult]:
    """Ask each gateway about its attempts in one batch call; return results by attempt id.

    Each attempt's call counter is committed first. A gateway error leaves the
    attempts pending: the chunk (or the attempt sweeper) asks again with the
    same keys.
    """
    if not pending:
        return {}
    GatewayAttempt.objects.filter(
        pk__in=[a.pk for a in pending], status=GatewayAttempt.Status.PENDING
    ).update(calls=F("calls") + 1, last_call_at=timezone.now())
    by_gateway: dict[str, list[GatewayAttempt]] = defaultdict(list)
    for attempt in pending:
        by_gateway[attempt.gateway].append(attempt)
    results: dict[int, GatewayResult] = {}
    for slug, attempts in by_gateway.items():
        gateway = get_gateway(slug)
        try:
            answers = gateway_call(lambda g=gateway, a=attempts: g.submit_batch([(x.payment, x) for x in a]))
        except GatewayError as exc:
            GatewayAttempt.objects.filter(pk__in=[a.pk for a in attempts]).update(error=str(exc)[:500])
            logger.warning("batch submission to %s failed: %s", slug, exc)
            continue
        for attempt, answer in zip(attempts, answers, strict=True):
            if answer is not None:
                results[attempt.pk] = answer_result(attempt, answer)
    return results


def _apply_answers(
    pending: list[GatewayAttempt], results: dict[int, GatewayResult], batch: PaymentBatch
) -> None:
    """Record the gateways' immediate answers and apply what they ask, set-based, through the core.

    The attempts keep their outcome and gateway reference (the raw answer stays
    in the gateway's own record); an attempt already answered (a re-run of the
    chunk) is left alone.
    """
    answered = [a for a in pending if a.pk in results]
    if not answered:
        return
    lock_payment_ids(sorted({a.payment_id for a in answered}))  # payments before their attempts
    still_pending = set(
        GatewayAttempt.objects.filter(
            pk__in=[a.pk for a in answered], status=GatewayAttempt.Status.PENDING
        ).values_list("pk", flat=True)
    )
    answered = [a for a in answered if a.pk in still_pending]
    rows = {
        a.pk: {"outcome": results[a.pk].outcome, "gateway_reference": results[a.pk].gateway_reference}
        for a in answered
    }
    GatewayAttempt.objects.filter(pk__in=list(rows)).update(
        status=GatewayAttempt.Status.ANSWERED, answered_at=timezone.now()
    )
    values_update(GatewayAttempt, rows, ["outcome", "gateway_reference"])
    outcomes_apply([(a, results[a.pk]) for a in answered], batches={batch.pk: batch})


def _dead_letter(chunk: BatchChunk, batch: PaymentBatch) -> None:
    """Give up on a chunk that kept killing its worker: cancel what it never submitted."""
    with transaction.atomic():
        locked = lock_payments(
            Payment.objects.filter(
                batch_id=batch.pk,
                pk__gte=chunk.first_payment_id,
                pk__lte=chunk.last_payment_id,
                status__in=transition_info("submit").sources,
            )
        )
        done = bulk_transition(locked, "cancel", actor="system:dead_letter", batches={batch.pk: batch})
        BatchChunk.objects.filter(pk=chunk.pk).update(
            status=BatchChunk.Status.DEAD,
            finished_at=timezone.now(),
            cancelled_count=F("cancelled_count") + len(done),
            last_error="gave up after repeated failures; unsubmitted payments cancelled",
        )
        enqueue_on_commit("payments.tasks.batch_check_task", batch.pk)
        bank_file_enqueue_if_ready(batch_id=batch.pk)
    logger.error("batch %s chunk %s dead-lettered", batch.public_id, chunk.number)


# Recovery -----------------------------------------------------------------------------------


def batch_sweep(*, now=None) -> dict[str, int]:
    """Re-enqueue batch work whose task was lost (run by the periodic sweeper).

    - validating batches whose validation never started or whose worker died;
    - approved batches never started (whose requested execution date has come);
    - chunks whose claim outlived its lease (worker died);
    - pending chunks of a batch that made no progress for PAYDESK_SWEEP_AFTER;
    - processing batches whose payments are all final (completion missed).
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.PAYDESK_SWEEP_AFTER)
    counts = {
        "batch_validations": 0,
        "batch_starts": 0,
        "batch_chunks": 0,
        "batch_checks": 0,
        "bank_files": 0,
    }

    lease = now - timedelta(seconds=validation_lease_seconds())
    validating = PaymentBatch.objects.filter(status=BatchStatus.VALIDATING).filter(
        Q(validation_started_at=None, updated_at__lt=stale) | Q(validation_started_at__lt=lease)
    )
    for pk in validating.values_list("pk", flat=True)[:SWEEP_LIMIT]:
        enqueue_validation(pk)
        counts["batch_validations"] += 1

    approved = PaymentBatch.objects.filter(status=BatchStatus.APPROVED, approved_at__lt=stale).filter(
        Q(execution_date=None) | Q(execution_date__lte=today())
    )
    for pk in approved.values_list("pk", flat=True)[:SWEEP_LIMIT]:
        enqueue("payments.tasks.batch_start_task", pk)
        counts["batch_starts"] += 1

    chunk_lease = now - timedelta(seconds=settings.PAYDESK_BATCH_CHUNK_LEASE)
    lost = BatchChunk.objects.filter(status=BatchChunk.Status.CLAIMED, claimed_at__lt=chunk_lease)
    chunk_ids = list(lost.values_list("pk", flat=True)[:SWEEP_LIMIT])
    processing = PaymentBatch.objects.filter(status=BatchStatus.PROCESSING)
    stalled = (
        BatchChunk.objects.filter(batch__in=processing)
        .values("batch_id")
        .annotate(last=Max("claimed_at"))
        .filter(Q(last=None) | Q(last__lt=stale))
        .values_list("batch_id", flat=True)
    )
    waiting = BatchChunk.objects.filter(
        batch_id__in=list(stalled[:SWEEP_LIMIT]), status=BatchChunk.Status.PENDING, enqueued_at__lt=stale
    )
    chunk_ids += list(waiting.values_list("pk", flat=True)[: SWEEP_LIMIT - len(chunk_ids)])
    if chunk_ids:
        BatchChunk.objects.filter(pk__in=chunk_ids).update(enqueued_at=now)
    for pk in chunk_ids:
        enqueue("payments.tasks.batch_chunk_task", pk)
        counts["batch_chunks"] += 1

    for pk in processing.filter(updated_at__lt=stale).values_list("pk", flat=True)[:SWEEP_LIMIT]:
        enqueue("payments.tasks.batch_check_task", pk)
        counts["batch_checks"] += 1
    counts["bank_files"] = bank_file_sweep(now=now)
    return counts
