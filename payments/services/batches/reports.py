"""Reading a batch: its JSON shape, live progress, and the streamed reports.

Reports are generators over database iterators and the payments.formats
writers, so a report of a million payments never sits in memory:
- the row-error CSV (line, column, code, message);
- the result CSV: one line per input row, the payment's outcome or the row's
  error, merged in file order (formula-injection safe, by the writer);
- a pain.002 status report: ACSC for settled payments, RJCT with the reason
  for failed, cancelled, reversed and invalid rows, ACSP/PDNG while pending;
  the group status (ACCP / PART / RJCT) follows from them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from decimal import Decimal, InvalidOperation
from itertools import groupby

from django.db.models import Count
from django.utils.translation import pgettext_lazy

from merchants.crypto import masked
from payments.channels.messages import row_error_text
from payments.formats import TxStatus, iter_error_csv, iter_pain002, iter_result_csv
from payments.formats.writers import ERROR_COLUMNS, RESULT_COLUMNS
from payments.models import FINAL_STATES, BatchChunk, BatchRowError, Payment, PaymentBatch, PaymentStatus
from payments.money import format_minor

S = PaymentStatus
SETTLED = {S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.REFUNDED}
REJECTED = {S.FAILED, S.CANCELLED, S.REVERSED}
IN_PROCESS = {S.PROCESSING, S.REQUIRES_ACTION}
INVALID_STATUS = "invalid"


def batch_progress(batch: PaymentBatch) -> dict:
    """Exact progress, counted from the payments themselves (one grouped query on an index)."""
    by_status = dict(
        Payment.objects.filter(batch_id=batch.pk).values_list("status").annotate(n=Count("id")).order_by()
    )
    total = sum(by_status.values())
    final = sum(n for s, n in by_status.items() if s in FINAL_STATES or s == S.PARTIALLY_REFUNDED)
    unsent = by_status.get(S.CREATED, 0) + by_status.get(S.ON_HOLD, 0)
    chunks = dict(
        BatchChunk.objects.filter(batch_id=batch.pk).values_list("status").annotate(n=Count("id")).order_by()
    )
    return {
        "id": batch.public_id,
        "status": batch.status,
        "status_display": str(batch.get_status_display()),
        "is_final": batch.is_final,
        "cancel_requested": batch.cancel_requested_at is not None,
        "total": total,
        "by_status": {s: by_status.get(s, 0) for s in S.values if by_status.get(s)},
        "submitted": total - unsent,
        "final": final,
        "percent": round(100 * final / total, 1) if total else (100.0 if batch.is_final else 0.0),
        "chunks": {
            "total": batch.chunk_count,
            **{status: chunks.get(status, 0) for status in BatchChunk.Status.values},
        },
    }


# Reports ------------------------------------------------------------------------------------


def _error_lines(batch: PaymentBatch) -> Iterator[tuple[int, list[dict]]]:
    rows = (
        BatchRowError.objects.filter(batch_id=batch.pk)
        .order_by("line", "pk")
        .values("line", "column", "code", "message", "reference", "pmt_inf_id")
        .iterator(chunk_size=5000)
    )
    for line, errors in groupby(rows, key=lambda r: r["line"]):
        yield line, list(errors)


def _payment_lines(batch: PaymentBatch) -> Iterator[tuple[int, dict]]:
    rows = (
        Payment.objects.filter(batch_id=batch.pk)
        .order_by("pk")
        .values(
            "public_id",
            "reference",
            "amount_minor",
            "currency",
            "method",
            "beneficiary_name",
            "beneficiary_account_last4",
            "status",
            "failure_code",
            "failure_message",
            "metadata",
        )
        .iterator(chunk_size=5000)
    )
    for row in rows:
        yield int((row["metadata"] or {}).get("batch_line") or 0), row


def _in_file_order(batch: PaymentBatch) -> Iterator[tuple[int, dict | None, list[dict] | None]]:
    """Payments and invalid rows merged by their line in the file."""
    payments = ((line, 0, row, None) for line, row in _payment_lines(batch))
    errors = ((line, 1, None, errs) for line, errs in _error_lines(batch))
    for line, _kind, payment, errs in heapq.merge(payments, errors, key=lambda t: (t[0], t[1])):
        yield line, payment, errs


def error_rows(batch: PaymentBatch) -> Iterator[dict]:
    return (
        BatchRowError.objects.filter(batch_id=batch.pk)
        .order_by("line", "pk")
        .values("line", "column", "code", "message")
        .iterator(chunk_size=5000)
    )


# Column headers for people: in English they are the column names themselves (the files the API
# serves never change); the dashboard's downloads use them in the reader's language.
COLUMN_LABELS = {
    "line": pgettext_lazy("file column", "line"),
    "reference": pgettext_lazy("file column", "reference"),
    "amount": pgettext_lazy("file column", "amount"),
    "currency": pgettext_lazy("file column", "currency"),
    "method": pgettext_lazy("file column", "method"),
    "beneficiary_name": pgettext_lazy("file column", "beneficiary_name"),
    "beneficiary_account": pgettext_lazy("file column", "beneficiary_account"),
    "beneficiary_email": pgettext_lazy("file column", "beneficiary_email"),
    "beneficiary_phone": pgettext_lazy("file column", "beneficiary_phone"),
    "description": pgettext_lazy("file column", "description"),
    "status": pgettext_lazy("file column", "status"),
    "payment_id": pgettext_lazy("file column", "payment_id"),
    "failure_code": pgettext_lazy("file column", "failure_code"),
    "failure_message": pgettext_lazy("file column", "failure_message"),
    "column": pgettext_lazy("file column", "column"),
    "code": pgettext_lazy("file column", "code"),
    "message": pgettext_lazy("file column", "message"),
}


def column_labels(columns: Sequence[str]) -> list[str]:
    """Return the headers of `columns` in the active language (the names themselves in English)."""
    return [str(COLUMN_LABELS.get(name, name)) for name in columns]


def iter_errors_csv(batch: PaymentBatch, *, labelled: bool = False) -> Iterator[str]:
    """The row errors as CSV; ``labelled``: headers in the active language (dashboard downloads)."""
    if not labelled:
        return iter_error_csv(error_rows(batch), bom=True)
    rows = ({**row, "message": row_error_text(row["code"], row["message"])} for row in error_rows(batch))
    return iter_error_csv(rows, bom=True, header=column_labels(ERROR_COLUMNS))


def result_rows(batch: PaymentBatch) -> Iterator[dict]:
    for line, payment, errs in _in_file_order(batch):
        if payment is not None:
            yield {
                "line": line,
                "reference": payment["reference"],
                "amount": format_minor(payment["amount_minor"], payment["currency"]),
                "currency": payment["currency"],
                "method": payment["method"],
                "beneficiary_name": payment["beneficiary_name"],
                # Masked: the full number stays in the dashboard's audited reveal (docs/privacy.md).
                "beneficiary_account": masked(payment["beneficiary_account_last4"]),
                "status": payment["status"],
                "payment_id": payment["public_id"],
                "failure_code": payment["failure_code"],
                "failure_message": payment["failure_message"],
            }
        else:
            yield {
                "line": line,
                "reference": errs[0]["reference"],
                "status": INVALID_STATUS,
                "failure_code": errs[0]["code"],
                "failure_message": "; ".join(f"{e['column'] or '-'}: {e['message']}" for e in errs),
            }


def iter_results_csv(batch: PaymentBatch, *, labelled: bool = False) -> Iterator[str]:
    """The result file; ``labelled``: headers in the active language (dashboard downloads)."""
    header = column_labels(RESULT_COLUMNS) if labelled else None
    return iter_result_csv(result_rows(batch), bom=True, header=header)


def _tx_status(payment: dict) -> tuple[str, str | None, str | None]:
    status = payment["status"]
    if status in SETTLED:
        return "ACSC", None, None
    if status in REJECTED:
        return "RJCT", payment["failure_code"] or status, payment["failure_message"] or None
    if status in IN_PROCESS:
        return "ACSP", None, None
    return "PDNG", None, None


def pain002_transactions(batch: PaymentBatch) -> Iterator[TxStatus]:
    for _line, payment, errs in _in_file_order(batch):
        if payment is not None:
            status, code, message = _tx_status(payment)
            yield TxStatus(
                end_to_end_id=payment["reference"],
                status=status,
                reason_code=code,
                reason_message=message,
                pmt_inf_id=(payment["metadata"] or {}).get("pmt_inf_id") or None,
            )
        else:
            yield TxStatus(
                end_to_end_id=errs[0]["reference"] or "NOTPROVIDED",
                status="RJCT",
                reason_code=errs[0]["code"],
                reason_message="; ".join(e["message"] for e in errs),
                pmt_inf_id=errs[0]["pmt_inf_id"] or None,
            )


def iter_pain002_report(batch: PaymentBatch) -> Iterator[bytes]:
    """A pain.002 status report of the batch (group status derived, or RJCT for a rejected file)."""
    control = batch.control or {}
    original = control.get("version") or "pain.001.001.03"
    version = "pain.002.001.10" if original.endswith(".09") else "pain.002.001.03"
    ctrl_sum = None
    if control.get("ctrl_sum"):
        try:
            ctrl_sum = Decimal(control["ctrl_sum"])
        except InvalidOperation:
            ctrl_sum = None
    options: dict = {
        "msg_id": f"STS-{batch.public_id}"[:35],
        "orgnl_msg_id": batch.message_id or batch.public_id,
        "orgnl_msg_nm_id": original,
        "orgnl_nb_of_txs": control.get("nb_of_txs")
        if control.get("nb_of_txs") is not None
        else batch.row_count,
        "orgnl_ctrl_sum": ctrl_sum,
        "version": version,
    }
    if batch.status == "rejected" and batch.valid_count == 0 and batch.rejection_code != "no_valid_rows":
        options.update(
            status="RJCT",
            reason_code=batch.rejection_code or "rejected",
            reason_message=batch.rejection_reason,
        )
        return iter_pain002(iter(()), **options)
    return iter_pain002(pain002_transactions(batch), **options)
