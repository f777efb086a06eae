"""Batch validation in a worker: stream the stored file into Payments and BatchRowErrors.

One pass over the file, in one database transaction: every row is checked
with `payment_input_validate` (the rules of a real-time payment) plus the
reference rules (unique in the file and against the merchant's payments,
checked set-based per block of rows); valid rows become Payments in status
`created`, invalid ones BatchRowErrors. A file-level problem (encoding,
bomb, pain.001 control totals, too many rows) rolls everything back and
rejects the batch as a whole, so nothing is ever half-applied.

PostgreSQL ingests with `COPY FROM STDIN` (bulk_create tops out far below),
while a second connection looks up existing references so the COPY stream
never pauses; other databases use `bulk_create` per block.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from merchants.crypto import field_hashes, masked_email, masked_phone
from merchants.models import Merchant
from payments.controls import batch_row_passed, controls_prepare, hold_reasons
from payments.db import is_unique_violation, streams_copy
from payments.formats import ENCODINGS, FormatError, RawRow, open_reader
from payments.gateways import Gateway, get_gateway, setup_checks_prepare
from payments.masking import mask_account
from payments.models import BatchStatus, PaymentBatch, PaymentStatus
from payments.queue import enqueue
from payments.risk import BatchScorer
from payments.services.batches.approvals import batch_notify_approvers
from payments.services.batches.funding import funding_account_for, funding_by_currency
from payments.services.batches.writers import CopyWriter, ErrorRow, OrmWriter, Writer
from payments.services.lifecycle.events import batch_event_record
from payments.services.lifecycle.locks import lock_batch, lock_merchant
from payments.services.lifecycle.rules import risk_hold_reason
from payments.services.payment_input import payment_input_validate
from payments.validation import PaymentInvalid

logger = logging.getLogger(__name__)

BLOCK_ROWS = 5000
# Re-runs of a validation that lost a race for references to a batch validated at the same time.
CONFLICT_RETRIES = 3
JSON_FORMAT = "json"


class FileRejected(Exception):
    """The file as a whole cannot become a batch; `code` is machine-readable."""

    def __init__(self, code: str, message: str, line: int | None = None, duplicate_of=None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.duplicate_of = duplicate_of


# Reading ----------------------------------------------------------------------------------


class JsonItemsReader:
    """The rows of a programmatic batch (JSON `items`), shaped like a payments.formats reader."""

    format = JSON_FORMAT
    encoding = "utf-8"
    msg_id = None
    version = None
    nb_of_txs = None
    ctrl_sum = None

    def __init__(self, fileobj) -> None:
        try:
            body = json.load(io.TextIOWrapper(fileobj, encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise FileRejected("invalid_json", _("The stored items are not valid JSON: %s") % exc) from None
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise FileRejected("invalid_json", _("The body must be an object with a list of items."))
        self._items = items

    def __iter__(self) -> Iterator[RawRow]:
        for i, item in enumerate(self._items, start=1):
            if not isinstance(item, dict):
                yield RawRow(i, {}, ())
                continue
            yield RawRow(i, dict(item), ())

    def close(self) -> None:
        self._items = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_batch_reader(batch: PaymentBatch, fileobj):
    if batch.source_format == JSON_FORMAT:
        return JsonItemsReader(fileobj)
    # The encoding its uploader named (batch_upload stores it before validation), else detected.
    encoding = batch.encoding if batch.encoding in ENCODINGS else None
    return open_reader(fileobj, batch.file_name, encoding=encoding)


# The pass over the rows --------------------------------------------------------------------


class _Tally:
    def __init__(self) -> None:
        self.rows = 0
        self.valid = 0
        self.errors = 0
        self.held = 0  # valid rows stored on hold by the rules
        self.totals: dict[str, list[int]] = {}
        # The earliest ReqdExctnDt of the file's valid rows (pain.001), if any.
        self.first_date: date | None = None

    def totals_json(self) -> dict[str, dict[str, int]]:
        return {c: {"count": n, "amount_minor": s} for c, (n, s) in sorted(self.totals.items())}


# The offending value of a row error in a beneficiary-data column, as it may be kept and shown.
SHOWN_MASKED = {
    "beneficiary_account": mask_account,
    "beneficiary_email": masked_email,
    "beneficiary_phone": masked_phone,
}


def _shown(text: str, limit: int) -> str:
    """Cut file text quoted in a row error to its column; show a NUL (refused by the database) as U+FFFD."""
    return text[:limit].replace("\x00", "\ufffd")


def _duplicate_message() -> str:
    return _("This reference appears earlier in the file.")


def _existing_message() -> str:
    return _("A payment with this reference already exists.")


def ingest_rows(
    batch: PaymentBatch,
    merchant: Merchant,
    reader,
    writer: Writer,
    *,
    funded: dict[str, bool] | None = None,
    memo: dict | None = None,
) -> _Tally:
    """Validate every row of `reader` and hand valid rows and errors to `writer`, block by block.

    `funded` (from `funding_by_currency`, read before a COPY stream opened) answers which currencies
    have a funding account; without it each currency is looked up when first met.
    """
    tally = _Tally()
    seen: set[str] = set()
    max_rows = settings.PAYDESK_BATCH_MAX_ROWS
    block: list[tuple[int, dict[str, Any], str | None]] = []
    errors: list[ErrorRow] = []
    line, ref, pmt_inf_id = 0, "", ""
    values: dict[str, Any] = {}
    # payment_input_validate's per-batch memo (same merchant, settings and language); given with the
    # fraud controls' answers already read (controls_prepare) when a COPY stream will be open.
    memo = {} if memo is None else memo

    def err(column: str, code: str, message: str) -> None:
        offending = values.get(column) if column and isinstance(values, dict) else None
        if column in SHOWN_MASKED and offending is not None:
            # Beneficiary data is stored encrypted, so a row error shows it masked too.
            offending = SHOWN_MASKED[column](str(offending))
        name = values.get("beneficiary_name") if isinstance(values, dict) else None
        errors.append(
            (
                line,
                _shown(column, 64),
                code[:64],
                _shown(message, 500),
                _shown(ref or "", 140),
                pmt_inf_id[:140],
                _shown("" if offending is None else str(offending), 500),
                _shown(name if isinstance(name, str) else "", 140),
            )
        )

    def flush() -> None:
        writer.beat()
        refs = [r[2] for r in block if r[2] is not None]
        taken = writer.existing(refs) if refs else set()
        good = []
        for line, clean, ref in block:
            if ref is not None and ref in taken:
                pmt = clean["metadata"].get("pmt_inf_id", "")[:140]
                name = str(clean.get("beneficiary_name") or "")[:140]
                errors.append(
                    (
                        line,
                        "reference",
                        "duplicate_reference",
                        _existing_message(),
                        ref[:140],
                        pmt,
                        ref[:500],
                        name,
                    )
                )
                continue
            good.append(clean)
            entry = tally.totals.setdefault(clean["currency"], [0, 0])
            entry[0] += 1
            entry[1] += clean["amount_minor"]
        if good:
            holds(good)
        if good:
            writer.payments(good)
        tally.valid += len(good)
        if errors:
            writer.errors(errors)
        block.clear()
        errors.clear()

    # Hold rules for batch rows (payments/controls.py), the same as a real-time payment's but with
    # nothing read per row: sanctions, the first-payment cap, the daily and monthly caps (volume
    # before the file from the memo, plus the file's rows not held so far), velocity per
    # beneficiary (committed payments of the last hour, read per block, plus the file's earlier
    # rows), and the risk score (stored on the row; held above the merchant's threshold, the
    # real-time rule). A held row is stored on_hold with its reasons and left out of execution
    # until released. Velocity per merchant per minute is not applied to one upload's rows.
    scorer = memo["risk_scorer"] if "risk_scorer" in memo else BatchScorer(merchant, memo)
    # Rows of the file so far per account, keyed by the first 64 bits of its keyed hash: a million
    # distinct accounts take ~80 MB this way, twice that with the 64-character hex strings.
    paid_in_file: dict[int, int] = {}
    since = timezone.now() - timedelta(hours=1)

    def holds(good: list[dict[str, Any]]) -> None:
        hashes = field_hashes([c["beneficiary_account"] for c in good])
        distinct = sorted(set(hashes))
        known = writer.known_accounts(distinct)
        recent = writer.recent_accounts(distinct, since) if merchant.velocity_per_beneficiary_hour else {}
        for clean, account_hash in zip(good, hashes, strict=True):
            key = int(account_hash[:16] or "0", 16)
            earlier = paid_in_file.get(key, 0)
            new = earlier == 0 and account_hash not in known
            reasons = hold_reasons(
                merchant,
                amount_minor=clean["amount_minor"],
                currency=clean["currency"],
                beneficiary_name=clean["beneficiary_name"],
                account_hash=account_hash,
                new_beneficiary=new,
                realtime=False,
                memo=memo,
                recent_to_account=recent.get(account_hash, 0) + earlier,
            )
            paid_in_file[key] = earlier + 1
            clean["beneficiary_account_hash"] = account_hash
            score, probability = scorer.score(clean["amount_minor"], clean["currency"], new)
            clean["risk_score"], clean["risk_probability"] = str(score), str(probability)
            risk = risk_hold_reason(merchant, probability)
            if risk is not None:
                reasons.append(risk)
            clean["status"] = PaymentStatus.ON_HOLD.value if reasons else PaymentStatus.CREATED.value
            if reasons:
                clean["metadata"] = {**clean["metadata"], "hold_reasons": [r.as_dict() for r in reasons]}
                tally.held += 1
            else:
                amount, currency = clean["amount_minor"], clean["currency"]
                batch_row_passed(merchant, memo, amount_minor=amount, currency=currency)

    gateway = writer.gateway
    rails: dict[str, Gateway] = {}
    funded_known = funded is not None
    funded = dict(funded or {})

    def rail_problems(clean: dict[str, Any]) -> list[tuple[str, str, str]]:
        """What the row's payout rail refuses (its own rules, a funding account for the currency)."""
        slug = gateway(clean["method"])
        rail = rails.get(slug) or rails.setdefault(slug, get_gateway(slug))
        problems = rail.row_problems(clean)
        if rail.needs_funding_account:
            currency = clean["currency"]
            if currency not in funded:
                funded[currency] = not funded_known and funding_account_for(batch, currency) is not None
            if not funded[currency]:
                problems.append(
                    (
                        "currency",
                        "no_funding_account",
                        _("The merchant has no %(currency)s account to pay this bank transfer from.")
                        % {"currency": currency},
                    )
                )
        return problems

    rows = 0
    for row in reader:
        rows += 1
        if rows > max_rows:
            raise FileRejected(
                "too_many_rows",
                _("The file has more than %(n)d rows, the limit of one batch.") % {"n": max_rows},
                line=row.line,
            )
        line = row.line
        values = row.values
        ref = values.get("reference")
        ref = ref.strip() if isinstance(ref, str) else None
        pmt_inf_id = row.pmt_inf_id or ""
        bad = False
        for problem in row.problems:
            err(problem.column or "", problem.code, problem.message)
            bad = True
        if not values:
            err("", "invalid_item", _("Each item must be an object."))
            bad = True
        if ref:
            if ref in seen:
                err("reference", "duplicate_reference", _duplicate_message())
                bad = True
            else:
                seen.add(ref)
        requested = None
        if row.requested_date:
            try:
                requested = date.fromisoformat(row.requested_date)
            except ValueError:
                err("", "invalid_date", _("ReqdExctnDt is not a valid date."))
                bad = True
        if not bad:
            try:
                clean = payment_input_validate(merchant=merchant, data=values, memo=memo, payout=True)
            except PaymentInvalid as exc:
                for e in exc.errors:
                    err(e.field, e.code, str(e.message))
                clean = None
            problems = rail_problems(clean) if clean is not None else []
            for field, code, message in problems:
                err(field, code, str(message))
            if clean is not None and not problems:
                clean["gateway"] = gateway(clean["method"])
                meta = dict(clean["metadata"])
                meta["batch_line"] = line
                if pmt_inf_id:
                    meta["pmt_inf_id"] = pmt_inf_id
                if requested is not None:
                    meta["requested_execution_date"] = requested.isoformat()
                    if tally.first_date is None or requested < tally.first_date:
                        tally.first_date = requested
                clean["metadata"] = meta
                block.append((line, clean, clean["reference"]))
        if len(block) >= BLOCK_ROWS or len(errors) >= BLOCK_ROWS:
            flush()
    flush()
    writer.finish()
    tally.rows = rows
    tally.errors = tally.rows - tally.valid
    return tally


# The service --------------------------------------------------------------------------------

VALIDATE_TASK = "payments.tasks.batch_validate_task"


def enqueue_validation(batch_id: int) -> None:
    """Queue a batch's validation with its own (longer) task timeout: a million rows take a while."""
    enqueue(VALIDATE_TASK, batch_id, q_options={"timeout": settings.PAYDESK_BATCH_TASK_TIMEOUT})


def enqueue_validation_on_commit(batch_id: int) -> None:
    transaction.on_commit(lambda: enqueue_validation(batch_id))


def validation_lease_seconds() -> int:
    """How long a validation may go without a sign of life before another worker takes it over.

    On PostgreSQL a running validation beats every few seconds on a second
    connection; elsewhere it cannot, so the lease is the task's timeout.
    """
    if streams_copy():
        return settings.PAYDESK_BATCH_VALIDATION_LEASE
    return max(settings.PAYDESK_BATCH_VALIDATION_LEASE, settings.PAYDESK_BATCH_TASK_TIMEOUT)


def _claim(batch_id: int) -> PaymentBatch | None:
    """Commit the validation attempt counter; return the batch, or None if someone else has it."""
    now = timezone.now()
    lease = now - timedelta(seconds=validation_lease_seconds())
    claimed = (
        PaymentBatch.objects.filter(pk=batch_id, status=BatchStatus.VALIDATING)
        .filter(Q(validation_started_at=None) | Q(validation_started_at__lt=lease))
        .update(validation_attempts=F("validation_attempts") + 1, validation_started_at=now)
    )
    if not claimed:
        return None
    return PaymentBatch.objects.select_related("merchant").get(pk=batch_id)


def batch_validate(*, batch_id: int) -> PaymentBatch | None:
    """Validate a `validating` batch into Payments and row errors; safe to run twice.

    Ends with the batch `validated` (at least one valid row) or `rejected`.
    A batch whose validation keeps killing its worker is rejected after
    PAYDESK_MAX_ATTEMPTS attempts. Row errors and the rejection reason are
    stored in the source language, wherever validation runs (a worker, or
    inline in a request in Chinese); pages translate them when shown.
    """
    with translation.override(settings.LANGUAGE_CODE):
        return _batch_validate(batch_id)


def _batch_validate(batch_id: int) -> PaymentBatch | None:
    batch = _claim(batch_id)
    if batch is None:
        return None
    if batch.validation_attempts > settings.PAYDESK_MAX_ATTEMPTS:
        _reject(batch_id, FileRejected("validation_failed", _("Validation failed repeatedly; upload again.")))
        return PaymentBatch.objects.get(pk=batch_id)
    for attempt in range(CONFLICT_RETRIES + 1):
        try:
            _validate_once(batch, streaming=attempt == 0)
        except FileRejected as exc:
            _reject(batch_id, exc)
        except FormatError as exc:
            _reject(batch_id, FileRejected(exc.code, exc.message, line=exc.line))
        except (IntegrityError, OperationalError) as exc:
            # A batch validated at the same time took some of our references first (unique
            # violation, or a deadlock between the two COPYs): run again, and this time they
            # are found as duplicates once it has committed.
            if attempt == CONFLICT_RETRIES or not _reference_conflict(exc):
                raise
            logger.info("batch %s: references taken concurrently; validating again", batch.public_id)
            time.sleep(0.2 * (attempt + 1))
            continue
        break
    return PaymentBatch.objects.get(pk=batch_id)


def _no_query_while_streaming(writer: CopyWriter):
    """An execute wrapper that refuses a query while `writer` streams a COPY on this connection: the
    query would wait for the stream, and the stream for the query (a hang, never an answer)."""

    def wrapper(execute, sql, params, many, context):
        if writer.streaming:
            raise RuntimeError(f"A query ran on the connection streaming a COPY: {sql[:200]}")
        return execute(sql, params, many, context)

    return wrapper


def _reference_conflict(exc: Exception) -> bool:
    """Whether a database error is a unique violation or a deadlock (both: another batch's references)."""
    return is_unique_violation(exc)


def _validate_once(batch: PaymentBatch, *, streaming: bool = True) -> None:
    if not batch.stored_file:
        raise FileRejected("file_missing", _("The uploaded file is missing."))
    with default_storage.open(batch.stored_file, "rb") as fileobj:
        with open_batch_reader(batch, fileobj) as reader:
            _check_message_id(batch, reader)
            with transaction.atomic():
                merchant = batch.merchant
                if not streams_copy():
                    writer: Writer = OrmWriter(batch)
                    try:
                        tally = ingest_rows(batch, merchant, reader, writer, memo=controls_prepare(merchant))
                    finally:
                        writer.close()
                else:
                    # Everything row validation reads from the database is read now: once the COPY
                    # stream is open, a query on this connection would wait for it forever.
                    setup_checks_prepare(merchant, payout=True)
                    funded = funding_by_currency(batch)
                    memo = controls_prepare(merchant)
                    writer = CopyWriter(batch, streaming=streaming)
                    try:
                        with connection.execute_wrapper(_no_query_while_streaming(writer)):
                            tally = ingest_rows(batch, merchant, reader, writer, funded=funded, memo=memo)
                    finally:
                        writer.close()
                _finish(batch, reader, tally)


def _check_message_id(batch: PaymentBatch, reader) -> None:
    """Reject a pain.001 whose MsgId the merchant used in the last 30 days; record it otherwise."""
    msg_id = (reader.msg_id or "")[:64]
    control = {}
    if reader.version:
        control = {
            "version": reader.version,
            "nb_of_txs": reader.nb_of_txs,
            "ctrl_sum": format(reader.ctrl_sum, "f") if reader.ctrl_sum is not None else None,
        }
    with transaction.atomic():
        lock_merchant(batch.merchant_id)  # serialise the check
        if msg_id:
            first = batch_duplicate_of(merchant_id=batch.merchant_id, message_id=msg_id, exclude=batch.pk)
            if first is not None:
                raise FileRejected(
                    "duplicate_message_id",
                    _("This pain.001 message (MsgId %(id)s) was already uploaded as batch %(batch)s.")
                    % {"id": msg_id, "batch": first.public_id},
                    duplicate_of=first,
                )
        PaymentBatch.objects.filter(pk=batch.pk).update(
            message_id=msg_id, source_format=reader.format, control=control, updated_at=timezone.now()
        )
    batch.message_id, batch.source_format, batch.control = msg_id, reader.format, control


def batch_duplicate_of(
    *, merchant_id: int, sha256: str = "", message_id: str = "", exclude: int | None = None
) -> PaymentBatch | None:
    """Return the first live batch of the last N days with this file hash or MsgId, if any.

    Rejected and cancelled batches do not count: their file may be sent again.
    """
    since = timezone.now() - timedelta(days=settings.PAYDESK_BATCH_DUPLICATE_DAYS)
    qs = PaymentBatch.objects.filter(merchant_id=merchant_id, created_at__gte=since).exclude(
        status__in=[BatchStatus.REJECTED, BatchStatus.CANCELLED]
    )
    if sha256:
        qs = qs.filter(file_sha256=sha256)
    elif message_id:
        qs = qs.filter(message_id=message_id)
    else:
        return None
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    return qs.order_by("created_at", "pk").first()


def _finish(batch: PaymentBatch, reader, tally: _Tally) -> None:
    locked = lock_batch(batch.pk)
    locked.row_count = tally.rows
    locked.valid_count = tally.valid
    locked.error_count = tally.errors
    locked.totals = tally.totals_json()
    locked.encoding = (getattr(reader, "encoding", "") or "")[:20]
    locked.validated_at = timezone.now()
    if locked.execution_date is None and tally.first_date is not None:
        # pain.001: the batch is started on the earliest ReqdExctnDt of its payment blocks.
        locked.execution_date = tally.first_date
    if tally.valid == 0:
        locked.rejection_code = "no_valid_rows" if tally.rows else "no_rows"
        locked.reject(
            _("No row of the file is valid; see the row errors.")
            if tally.rows
            else _("The file has no rows.")
        )
        locked.save()
        batch_event_record(batch=locked, type="batch.rejected", actor="system:validation")
        return
    locked.mark_validated()
    locked.save()
    batch_event_record(batch=locked, type="batch.validated", actor="system:validation")
    batch_notify_approvers(batch=locked)


def _reject(batch_id: int, exc: FileRejected) -> None:
    with transaction.atomic():
        batch = lock_batch(batch_id)
        if batch is None or batch.status not in (BatchStatus.UPLOADED, BatchStatus.VALIDATING):
            return
        batch.rejection_code = exc.code[:64]
        batch.rejection_line = exc.line
        batch.duplicate_of = exc.duplicate_of
        batch.row_count = batch.valid_count = batch.error_count = 0
        batch.totals = {}
        batch.validated_at = timezone.now()
        batch.reject(exc.message)
        batch.save()
        batch_event_record(batch=batch, type="batch.rejected", actor="system:validation")
