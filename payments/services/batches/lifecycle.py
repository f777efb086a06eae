"""Batch use cases: upload, approve, cancel, start, complete (DESIGN section 5).

The only code that changes a batch's status. Validation (batch_ingest),
chunk execution (batch_execute) and reports (batch_reports) live beside it.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from pathlib import PurePath

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from merchants.audit import audit_record
from merchants.ids import new_public_ids
from merchants.models import ApiKey, FundingAccount, Membership, Merchant
from payments.formats import ENCODINGS
from payments.models import BatchChunk, BatchStatus, Payment, PaymentBatch, PaymentStatus
from payments.queue import enqueue, enqueue_on_commit
from payments.services.batches.approvals import batch_over_threshold, batch_uploader_id
from payments.services.batches.bank_files import bank_file_prepare
from payments.services.batches.funding import batch_due, today
from payments.services.batches.ingest import JSON_FORMAT, batch_duplicate_of, enqueue_validation_on_commit
from payments.services.batches.upload import StoredUpload, store_bytes
from payments.services.lifecycle.events import actor_for, batch_event_record
from payments.services.lifecycle.guards import MerchantSuspended, ensure_may_move_money
from payments.services.lifecycle.locks import lock_batch, lock_merchant, lock_payments
from payments.services.lifecycle.transitions import bulk_transition, transition_info
from payments.services.notifications.fanout import beneficiary_notices

logger = logging.getLogger(__name__)

# Payment states from which an outcome may still come: a batch completes when none is left.
OPEN_STATES = frozenset(
    {PaymentStatus.CREATED, PaymentStatus.ON_HOLD, PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION}
)


class BatchError(Exception):
    """A batch action refused; `code` is machine-readable, `status` the HTTP status to answer."""

    status = 400

    def __init__(self, code: str, message: str, **extra) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


class BatchForbidden(BatchError):
    status = 403


class BatchStateError(BatchError):
    status = 409


class DuplicateBatch(BatchError):
    status = 409


# Upload -------------------------------------------------------------------------------------


def _safe_name(name: str) -> str:
    base = PurePath(name or "upload").name
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in base)[:80] or "upload"


def _uploader_check(merchant: Merchant, user, api_key: ApiKey | None) -> None:
    if api_key is not None:
        if api_key.merchant_id != merchant.pk or not api_key.has_scope("write"):
            raise BatchForbidden("scope_required", _("This API key cannot create batches."))
        return
    membership = Membership.objects.filter(user=user, merchant=merchant).first() if user else None
    if membership is None or not membership.can_create_payments:
        raise BatchForbidden("role_cannot_upload", _("Your role cannot upload batches."))


# How far ahead a batch may ask to be executed.
MAX_EXECUTION_DAYS = 366


def batch_options_clean(
    *, merchant: Merchant, funding_account: str = "", execution_date: str | date | None = None
) -> tuple[FundingAccount | None, date | None]:
    """Check the payout options of an upload: the account to pay from (`fac_...`) and the day to pay.

    Raise BatchError (`invalid_funding_account`, `invalid_execution_date`). The
    account must be one of the merchant's enabled funding accounts; the date
    today or within a year.
    """
    account = None
    if funding_account and "\x00" in str(funding_account):
        raise BatchError(
            "invalid_funding_account", _("No enabled funding account of this merchant has this id.")
        )
    if funding_account:
        account = FundingAccount.objects.filter(
            merchant=merchant, public_id=str(funding_account).strip(), enabled=True
        ).first()
        if account is None:
            raise BatchError(
                "invalid_funding_account", _("No enabled funding account of this merchant has this id.")
            )
    day = None
    if execution_date not in (None, ""):
        try:
            day = (
                execution_date
                if isinstance(execution_date, date)
                else date.fromisoformat(str(execution_date))
            )
        except ValueError:
            raise BatchError("invalid_execution_date", _("Give the execution date as YYYY-MM-DD.")) from None
        if day < today() or day > today() + timedelta(days=MAX_EXECUTION_DAYS):
            raise BatchError(
                "invalid_execution_date",
                _("The execution date must be today or a day within the next year."),
            )
    return account, day


# The text encodings an uploader may name for a CSV (API field and dashboard select).
BATCH_ENCODINGS = tuple(ENCODINGS)


def batch_encoding_clean(encoding: str | None) -> str:
    """Return the text encoding an uploader named for a CSV ("" to detect it); raise BatchError.

    One of payments.formats.ENCODINGS: utf-8, gb18030, utf-16, cp1252, latin-1.
    """
    encoding = (encoding or "").strip().lower()
    if encoding and encoding not in ENCODINGS:
        raise BatchError(
            "invalid_encoding",
            _("Unknown encoding; use one of: %(e)s (or none, to detect it).") % {"e": ", ".join(ENCODINGS)},
        )
    return encoding


def batch_upload(
    *,
    merchant: Merchant,
    upload: StoredUpload,
    user=None,
    api_key: ApiKey | None = None,
    name: str = "",
    source_format: str = "",
    funding_account: FundingAccount | None = None,
    execution_date: date | None = None,
    encoding: str = "",
) -> PaymentBatch:
    """Create a batch from a stored upload and queue its validation; return at once.

    The batch is created `uploaded`, moved to `validating` and a worker
    validates it. The same file (SHA-256) uploaded within the last 30 days
    by the merchant raises DuplicateBatch naming the first batch; the upload
    is then discarded. `funding_account` and `execution_date` (checked by
    batch_options_clean) are the account its bank transfers are paid from
    and the day it may start; a pain.001's ReqdExctnDt gives the day otherwise.
    """
    _uploader_check(merchant, user, api_key)
    try:
        encoding = batch_encoding_clean(encoding)
        if "\x00" in name:
            raise BatchError("invalid_name", _("The name may not contain NUL characters."))
        with transaction.atomic():
            lock_merchant(merchant.pk)  # serialise duplicate checks
            first = batch_duplicate_of(merchant_id=merchant.pk, sha256=upload.sha256)
            if first is not None:
                raise DuplicateBatch(
                    "duplicate_file",
                    _("This file was already uploaded on %(when)s as batch %(batch)s.")
                    % {"when": first.created_at.strftime("%Y-%m-%d %H:%M"), "batch": first.public_id},
                    duplicate_of=first,
                )
            public_id = new_public_ids("bat", 1)[0]
            now = timezone.now()
            stored = f"batches/{merchant.pk}/{now:%Y/%m}/{public_id}-{_safe_name(upload.name)}"
            batch = PaymentBatch(
                public_id=public_id,
                merchant=merchant,
                name=(name or upload.name or "")[:200],
                source_format=source_format,
                file_name=(upload.name or "")[:255],
                file_sha256=upload.sha256,
                file_size=upload.size,
                stored_file=stored,
                uploaded_by=user if user is not None and user.is_authenticated else None,
                uploaded_by_key=api_key,
                funding_account=funding_account,
                execution_date=execution_date,
                encoding=encoding,  # named by the uploader; the validation records what it used
            )
            batch.save()
            upload.adopt(stored)
            batch_event_record(batch=batch, type="batch.uploaded", actor=actor_for(user, api_key))
            batch.start_validation()
            batch.save()
            enqueue_validation_on_commit(batch.pk)
    finally:
        upload.discard()
    return batch


def batch_create_from_items(
    *,
    merchant: Merchant,
    items: list,
    user=None,
    api_key: ApiKey | None = None,
    name: str = "",
    funding_account: FundingAccount | None = None,
    execution_date: date | None = None,
) -> PaymentBatch:
    """Create a batch from JSON items (the API's programmatic batches), validated like a file."""
    data = json.dumps({"items": items}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    upload = store_bytes(data, "items.json")
    return batch_upload(
        merchant=merchant,
        upload=upload,
        user=user,
        api_key=api_key,
        name=name,
        source_format=JSON_FORMAT,
        funding_account=funding_account,
        execution_date=execution_date,
    )


# Approval (who may approve: payments/services/batches/approvals.py) --------------------------


def _approver_check(batch: PaymentBatch, merchant: Merchant, user, api_key: ApiKey | None):
    """Return the approving person (a user, or the API key's creator); raise BatchForbidden."""
    if api_key is not None:
        if api_key.merchant_id != merchant.pk or not api_key.has_scope("approve"):
            raise BatchForbidden(
                "scope_required", _("Approving a batch needs an API key with the approve scope.")
            )
        person = api_key.created_by
    else:
        person = user if user is not None and user.is_authenticated else None
    membership = Membership.objects.filter(user=person, merchant=merchant).first() if person else None
    if api_key is None and (membership is None or not membership.can_approve):
        raise BatchForbidden("role_cannot_approve", _("Only an owner or an approver can approve batches."))
    if merchant.four_eyes:
        if person is None:
            raise BatchForbidden(
                "four_eyes_required",
                _("Four-eyes approval needs to know who approves: this API key has no creator."),
            )
        if person.pk == batch_uploader_id(batch):
            raise BatchForbidden(
                "four_eyes_required",
                _("Four-eyes approval is on: someone other than the uploader must approve this batch."),
            )
    if batch_over_threshold(batch, merchant) and (
        membership is None or membership.role != Membership.Role.APPROVER
    ):
        raise BatchForbidden(
            "approver_required",
            _(
                "This batch is above the merchant's approval threshold: "
                "a member with the approver role must approve it."
            ),
        )
    return person


def batch_approve(*, batch: PaymentBatch, user=None, api_key: ApiKey | None = None) -> PaymentBatch:
    """Approve a validated batch; a worker then cuts it into chunks and executes it.

    Enforced here, whatever the caller: the approver's role (owner or
    approver; an API key needs the approve scope), four-eyes (approver other
    than the uploader, an API key counting as its creator) and the merchant's
    threshold above which only an approver may approve.
    """
    with transaction.atomic():
        merchant = lock_merchant(batch.merchant_id)
        try:
            ensure_may_move_money(merchant)
        except MerchantSuspended as exc:
            raise BatchForbidden(exc.code, str(exc)) from None
        locked = lock_batch(batch.pk)
        if locked.status != BatchStatus.VALIDATED:
            raise BatchStateError(
                "invalid_state",
                _("A batch that is %(status)s cannot be approved.")
                % {"status": locked.get_status_display().lower()},
            )
        person = _approver_check(locked, merchant, user, api_key)
        locked.approve(user=person)
        locked.approved_by_key = api_key
        locked.approved_at = timezone.now()
        locked.save()
        batch_event_record(batch=locked, type="batch.approved", actor=actor_for(user, api_key))
        audit_record(action="batch.approved", user=user, api_key=api_key, merchant=merchant, obj=locked)
        enqueue_on_commit("payments.tasks.batch_start_task", locked.pk)
    return locked


# Cancel -------------------------------------------------------------------------------------


def batch_cancel(*, batch: PaymentBatch, user=None, api_key: ApiKey | None = None) -> PaymentBatch:
    """Cancel a batch. Before execution the whole batch is cancelled; while processing, what is not
    yet submitted is cancelled and the batch then completes with the rest.

    Its unsubmitted payments are cancelled set-based by a worker.
    """
    if api_key is not None:
        if api_key.merchant_id != batch.merchant_id or not api_key.has_scope("write"):
            raise BatchForbidden("scope_required", _("This API key cannot cancel batches."))
    else:
        membership = (
            Membership.objects.filter(user=user, merchant_id=batch.merchant_id).first() if user else None
        )
        if membership is None or not (membership.can_create_payments or membership.can_approve):
            raise BatchForbidden("role_cannot_cancel", _("Your role cannot cancel batches."))
    actor = actor_for(user, api_key)
    with transaction.atomic():
        locked = lock_batch(batch.pk)
        now = timezone.now()
        if locked.status in (BatchStatus.UPLOADED, BatchStatus.VALIDATED, BatchStatus.APPROVED):
            locked.cancel()
            locked.cancelled_at = now
            locked.save()
            batch_event_record(batch=locked, type="batch.cancelled", actor=actor)
            audit_record(
                action="batch.cancelled", user=user, api_key=api_key, merchant=locked.merchant, obj=locked
            )
        elif locked.status == BatchStatus.PROCESSING and locked.cancel_requested_at is None:
            locked.cancel_requested_at = now
            locked.save(update_fields=["cancel_requested_at", "updated_at"])
            batch_event_record(batch=locked, type="batch.cancel_requested", actor=actor)
            audit_record(
                action="batch.cancel_requested",
                user=user,
                api_key=api_key,
                merchant=locked.merchant,
                obj=locked,
            )
        elif locked.status == BatchStatus.PROCESSING:
            return locked  # already being cancelled: asking twice changes nothing
        else:
            raise BatchStateError(
                "invalid_state",
                _("A batch that is %(status)s cannot be cancelled.")
                % {"status": locked.get_status_display().lower()},
            )
        enqueue_on_commit("payments.tasks.batch_cancel_rest_task", locked.pk)
    return locked


def batch_cancel_rest(*, batch_id: int, slice_size: int = 2000) -> int:
    """Cancel, set-based and slice by slice, the payments of a cancelled batch not yet submitted.

    Safe to run twice and beside chunk workers: every slice locks its rows in
    primary-key order and moves only those still `created`.
    """
    batch = PaymentBatch.objects.get(pk=batch_id)
    if batch.status != BatchStatus.CANCELLED and batch.cancel_requested_at is None:
        return 0
    sources = unsubmitted_states()
    total = 0
    while True:
        with transaction.atomic():
            ids = list(
                Payment.objects.filter(batch_id=batch_id, status__in=sources)
                .order_by("pk")
                .values_list("pk", flat=True)[:slice_size]
            )
            if not ids:
                break
            locked = lock_payments(
                Payment.objects.filter(pk__in=ids, status__in=transition_info("cancel").sources)
            )
            done = bulk_transition(locked, "cancel", actor="system:batch_cancel", batches={batch.pk: batch})
            total += len(done)
            if not done:
                break
    if batch.status == BatchStatus.PROCESSING:
        batch_check_complete(batch_id=batch_id)
    return total


def unsubmitted_states() -> frozenset[str]:
    """States a cancel may still catch before submission: those `cancel` and `submit`/`release` leave."""
    before = transition_info("submit").sources | transition_info("release").sources
    return transition_info("cancel").sources & before


# Start and completion -------------------------------------------------------------------------


def batch_start(*, batch_id: int) -> PaymentBatch | None:
    """Cut an approved batch into chunks recorded in the database and queue one task per chunk.

    A batch with a requested execution date later than today stays approved:
    the `paydesk-batches-due` schedule starts it on that day. A batch with
    bank-rail payments gets its (pending) bank file.
    """
    chunk_size = max(1, settings.PAYDESK_BATCH_CHUNK_SIZE)
    with transaction.atomic():
        batch = lock_batch(batch_id)
        if batch is None or batch.status != BatchStatus.APPROVED or not batch_due(batch):
            return batch
        chunks: list[BatchChunk] = []
        first = last = None
        count = 0
        ids = (
            Payment.objects.filter(batch_id=batch_id, status=PaymentStatus.CREATED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        now = timezone.now()
        for pk in ids.iterator(chunk_size=20_000):
            if first is None:
                first = pk
            last = pk
            count += 1
            if count == chunk_size:
                chunks.append(_chunk(batch_id, len(chunks) + 1, first, last, count, now))
                first, count = None, 0
        if first is not None:
            chunks.append(_chunk(batch_id, len(chunks) + 1, first, last, count, now))
        BatchChunk.objects.bulk_create(chunks, batch_size=1000)
        batch.start_processing()
        batch.started_at = now
        batch.chunk_count = len(chunks)
        batch.save()
        bank_file_prepare(batch=batch)
        batch_event_record(batch=batch, type="batch.processing", actor="system:batch")
        for chunk in BatchChunk.objects.filter(batch_id=batch_id).values_list("pk", flat=True):
            enqueue_on_commit("payments.tasks.batch_chunk_task", chunk)
        if not chunks:
            enqueue_on_commit("payments.tasks.batch_check_task", batch_id)
    return batch


def batches_due(*, on=None) -> int:
    """Queue the start of every approved batch whose requested execution date has come (scheduled)."""
    due = PaymentBatch.objects.filter(status=BatchStatus.APPROVED, execution_date__lte=on or today())
    count = 0
    for pk in due.values_list("pk", flat=True)[:500]:
        enqueue("payments.tasks.batch_start_task", pk)
        count += 1
    return count


def _chunk(batch_id: int, number: int, first: int, last: int, size: int, now) -> BatchChunk:
    return BatchChunk(
        batch_id=batch_id,
        number=number,
        first_payment_id=first,
        last_payment_id=last,
        size=size,
        enqueued_at=now,
    )


def outcome_summary(batch_id: int) -> dict[str, dict[str, dict[str, int]]]:
    """Counts and exact sums of a batch's payments per status and currency."""
    summary: dict[str, dict[str, dict[str, int]]] = {}
    rows = (
        Payment.objects.filter(batch_id=batch_id)
        .values("status", "currency")
        .annotate(n=Count("id"), total=Sum("amount_minor"))
        .order_by("status", "currency")
    )
    for row in rows:
        summary.setdefault(row["status"], {})[row["currency"]] = {
            "count": row["n"],
            "amount_minor": int(row["total"] or 0),
        }
    return summary


def batch_check_complete(*, batch_id: int) -> bool:
    """Complete a processing batch once every payment is final; return whether it is completed."""
    if Payment.objects.filter(batch_id=batch_id, status__in=OPEN_STATES).exists():
        return False
    with transaction.atomic():
        batch = lock_batch(batch_id)
        if batch is None or batch.status != BatchStatus.PROCESSING:
            return batch is not None and batch.status == BatchStatus.COMPLETED
        if Payment.objects.filter(batch_id=batch_id, status__in=OPEN_STATES).exists():
            return False
        batch.outcomes = outcome_summary(batch_id)
        batch.complete()
        batch.completed_at = timezone.now()
        batch.save()
        batch_event_record(batch=batch, type="batch.completed", actor="system:batch")
        if Merchant.objects.filter(pk=batch.merchant_id, notify_beneficiaries=True).exists():
            enqueue_on_commit("payments.tasks.batch_notify_beneficiaries_task", batch.pk)
    return True


def batch_notify_beneficiaries(*, batch_id: int) -> int:
    """Tell the paid beneficiaries of a completed batch, once; return how many notices were queued.

    The claim (`beneficiaries_notified_at`) and every Delivery commit together,
    so a second run, or a run after a crash, never sends twice and never
    leaves half the beneficiaries untold.
    """
    total = 0
    with transaction.atomic():
        claimed = PaymentBatch.objects.filter(
            pk=batch_id, status=BatchStatus.COMPLETED, beneficiaries_notified_at=None
        ).update(beneficiaries_notified_at=timezone.now())
        if not claimed:
            return 0
        paid = Payment.objects.filter(batch_id=batch_id, status=PaymentStatus.SUCCEEDED).order_by("pk")
        chunk: list[Payment] = []
        for payment in paid.iterator(chunk_size=2000):
            chunk.append(payment)
            if len(chunk) == 2000:
                total += len(beneficiary_notices(chunk))
                chunk = []
        total += len(beneficiary_notices(chunk))
    return total
