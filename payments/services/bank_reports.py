"""Applying the bank's answers to a bank file: pain.002 status reports and camt.054 notifications.

A merchant uploads the report (dashboard or `POST /api/v1/bank-reports`).
It is read as a stream and its entries are applied in chunks, each in one
transaction: the payments named by the entries' EndToEndIds (the payments'
references, on the bank-file rail, of this merchant only) are locked in
primary-key order, each entry becomes a notice about the payment's attempt,
and the notices go through the lifecycle core's `outcomes_apply` set-based,
so the one outcome table decides: ACSC/ACCC and a booked debit succeed, RJCT
fails with the ISO reason code as failure code, a return reverses a paid
payment (or fails one not yet known as paid) with the return reason.

Nothing is guessed: an EndToEndId that names no such payment is listed as
unmatched. An entry asking for what its payment already has (the same report
uploaded again, a debit notification after the status report) is counted as
a duplicate and changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable
from pathlib import Path, PurePath

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from merchants.models import ApiKey, Membership, Merchant
from payments.formats import FormatError
from payments.formats.bank_reports import PENDING, REJECTED, RETURNED, SETTLED, BankReportReader, ReportEntry
from payments.gateways import Outcome, notice
from payments.gateways.bank_file import BankFileGateway
from payments.models import BankFile, BankReport, GatewayAttempt, Payment, PaymentStatus
from payments.queue import enqueue_on_commit
from payments.services.lifecycle.locks import lock_payments
from payments.services.lifecycle.outcomes import outcomes_apply

logger = logging.getLogger(__name__)

RAIL = BankFileGateway.slug
CHUNK = 1000
REPORT_DIR = "bank_reports"
MAX_ERRORS = 1000
S = PaymentStatus
# The states in which a payment already has what an entry asks for (a repeat changes nothing).
ALREADY = {
    SETTLED: frozenset({S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.REFUNDED, S.REVERSED}),
    REJECTED: frozenset({S.FAILED}),
    RETURNED: frozenset({S.REVERSED, S.FAILED}),
}
OUTCOMES = {SETTLED: Outcome.SUCCEEDED, REJECTED: Outcome.FAILED, RETURNED: Outcome.REVERSED}
DEFAULT_CODES = {REJECTED: "rejected_by_bank", RETURNED: "returned_by_bank"}


class BankReportRejected(Exception):
    """The upload is not a report PayDesk can read; `code` is machine-readable."""

    status = 400

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _uploader_check(merchant: Merchant, user, api_key: ApiKey | None) -> None:
    if api_key is not None:
        if api_key.merchant_id != merchant.pk or not api_key.has_scope("write"):
            raise BankReportRejected(
                "scope_required", _("Uploading bank reports needs an API key with the write scope."), 403
            )
        return
    membership = Membership.objects.filter(user=user, merchant=merchant).first() if user else None
    if membership is None or not (membership.can_create_payments or membership.can_approve):
        raise BankReportRejected("role_cannot_upload", _("Your role cannot upload bank reports."), 403)


def _store(fileobj, name: str, merchant: Merchant) -> tuple[str, str]:
    """Copy the upload to MEDIA_ROOT (kept for audit); return its storage name and SHA-256."""
    now = timezone.now()
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in PurePath(name or "report").name)[:80]
    stored = f"{REPORT_DIR}/{merchant.pk}/{now:%Y/%m}/{secrets.token_hex(8)}-{safe or 'report.xml'}"
    target = Path(settings.MEDIA_ROOT) / stored
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        while block := fileobj.read(1 << 20):
            out.write(block)
            digest.update(block)
    return stored, digest.hexdigest()


def bank_report_receive(
    *, merchant: Merchant, fileobj, file_name: str = "", user=None, api_key: ApiKey | None = None
) -> BankReport:
    """Read a pain.002 or camt.054 and apply every entry; return the report with its counts.

    Raise BankReportRejected for a file that is not a supported report: it
    is read through once before any entry is applied, so a file broken on
    its last line applies nothing. Safe to upload twice: the second time
    every entry is a duplicate.
    """
    _uploader_check(merchant, user, api_key)
    stored, sha256 = _store(fileobj, file_name, merchant)
    path = Path(settings.MEDIA_ROOT) / stored
    counts = {"entries": 0, "matched": 0, "duplicates": 0}
    unmatched: list[str] = []
    errors: list[str] = []
    try:
        with open(path, "rb") as stream:
            for _entry in BankReportReader(stream):
                pass  # the whole file must read before anything of it is applied
        with open(path, "rb") as stream:
            reader = BankReportReader(stream)
            chunk: list[ReportEntry] = []
            for entry in reader:
                chunk.append(entry)
                if len(chunk) >= CHUNK:
                    _apply(merchant, chunk, counts, unmatched, errors)
                    chunk = []
            _apply(merchant, chunk, counts, unmatched, errors)
    except FormatError as exc:
        path.unlink(missing_ok=True)
        raise BankReportRejected(exc.code, exc.message) from None
    header = reader.header
    report = BankReport.objects.create(
        merchant=merchant,
        kind=header.kind,
        version=header.version,
        msg_id=header.msg_id,
        file_name=(file_name or "")[:255],
        file_sha256=sha256,
        stored_file=stored,
        entries=counts["entries"],
        matched=counts["matched"],
        duplicates=counts["duplicates"],
        unmatched=unmatched,
        errors=errors[:MAX_ERRORS],
        uploaded_by=user if user is not None and user.is_authenticated else None,
        uploaded_by_key=api_key,
    )
    logger.info(
        "bank report %s (%s): %d matched, %d duplicates, %d unmatched, %d errors",
        report.public_id,
        report.kind,
        report.matched,
        report.duplicates,
        len(unmatched),
        len(errors),
    )
    return report


def _expand(merchant: Merchant, entries: list[ReportEntry], errors: list[str]) -> list[ReportEntry]:
    """Replace a group-level rejection (a whole bank file refused) by one entry per payment of that file."""
    out: list[ReportEntry] = []
    for entry in entries:
        if entry.end_to_end_id or not entry.original_msg_id:
            out.append(entry)
            continue
        bank_file = BankFile.objects.filter(merchant=merchant, msg_id=entry.original_msg_id).first()
        if bank_file is None:
            errors.append(_("Group status RJCT for unknown message %(id)s.") % {"id": entry.original_msg_id})
            continue
        references = Payment.objects.filter(batch_id=bank_file.batch_id, gateway=RAIL).values_list(
            "reference", flat=True
        )
        for reference in references.iterator(chunk_size=5000):
            out.append(ReportEntry(reference, REJECTED, "RJCT", entry.reason_code, entry.reason_message))
    return out


def _apply(
    merchant: Merchant,
    entries: Iterable[ReportEntry],
    counts: dict[str, int],
    unmatched: list[str],
    errors: list[str],
) -> None:
    entries = _expand(merchant, list(entries), errors)
    if not entries:
        return
    counts["entries"] += len(entries)
    references = {e.end_to_end_id for e in entries if e.end_to_end_id}
    with transaction.atomic():
        payments = {
            p.reference: p
            for p in lock_payments(
                Payment.objects.filter(merchant=merchant, gateway=RAIL, reference__in=references)
            )
        }
        attempts: dict[int, GatewayAttempt] = {}
        for attempt in GatewayAttempt.objects.filter(
            payment_id__in=[p.pk for p in payments.values()], kind=GatewayAttempt.Kind.PAYMENT, gateway=RAIL
        ).order_by("payment_id", "number"):
            attempts[attempt.payment_id] = attempt  # the latest one wins
        items, keys = [], {}
        planned: dict[int, str] = {}
        for entry in entries:
            payment = payments.get(entry.end_to_end_id)
            attempt = attempts.get(payment.pk) if payment is not None else None
            if attempt is None:
                unmatched.append(entry.end_to_end_id or "NOTPROVIDED")
                continue
            status = planned.get(payment.pk, payment.status)
            if entry.outcome == PENDING or status in ALREADY[entry.outcome]:
                if entry.outcome == PENDING and status in (S.PROCESSING, S.REQUIRES_ACTION):
                    counts["matched"] += 1
                else:
                    counts["duplicates"] += 1
                continue
            code = entry.reason_code or DEFAULT_CODES.get(entry.outcome, "")
            items.append(
                (
                    attempt,
                    notice(
                        f"payment.{OUTCOMES[entry.outcome]}",
                        attempt.idempotency_key,
                        failure_code=code if entry.outcome != SETTLED else "",
                        failure_message=entry.reason_message,
                    ),
                )
            )
            keys[attempt.idempotency_key] = entry.end_to_end_id
            planned[payment.pk] = {SETTLED: S.SUCCEEDED, REJECTED: S.FAILED, RETURNED: S.REVERSED}[
                entry.outcome
            ]
        applied, reasons, batch_ids = outcomes_apply(items)
        counts["matched"] += applied
        for reason in reasons:
            key, _sep, why = reason.partition(": ")
            errors.append(f"{keys.get(key, key)}: {why}")
        for batch_id in sorted(batch_ids):
            enqueue_on_commit("payments.tasks.batch_check_task", batch_id)
