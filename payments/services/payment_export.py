"""The filtered payment list as a file: one row source, two writers (CSV and XLSX).

`payment_export_rows` reads the selector's queryset once, in chunks from a
database iterator, and yields one tuple per payment in `EXPORT_COLUMNS`
order with typed values (an exact Decimal amount with the currency's
decimals, an aware datetime). The CSV writer renders them as text, the XLSX
writer as numbers and dates (payments/formats/xlsx_writer.py); both stream and
neither holds the list in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal

from django.db.models import QuerySet

from merchants.crypto import masked
from payments.formats.writers import iter_csv
from payments.formats.xlsx_writer import iter_xlsx
from payments.money import currency_exponent

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT_COLUMNS = (
    "id",
    "created_at",
    "reference",
    "amount",
    "currency",
    "method",
    "status",
    "beneficiary_name",
    "beneficiary_account",
    "batch",
    "failure_code",
)


def payment_export_rows(*, qs: QuerySet, full_accounts: bool) -> Iterator[tuple]:
    """Yield the export's rows of `qs` (a payment_list queryset), streamed from the database.

    Accounts are the full numbers only with `full_accounts` (a stepped-up, audited reveal decided by
    the caller); otherwise the stored last four, masked, so nothing is decrypted.
    """
    rows = qs.values_list(
        "public_id",
        "created_at",
        "reference",
        "amount_minor",
        "currency",
        "method",
        "status",
        "beneficiary_name",
        "beneficiary_account" if full_accounts else "beneficiary_account_last4",
        "batch__public_id",
        "failure_code",
    ).iterator(chunk_size=2000)
    for pid, created, ref, minor, cur, method, status, name, account, batch, code in rows:
        yield (
            pid,
            created,
            ref,
            Decimal(minor).scaleb(-currency_exponent(cur)),
            cur,
            method,
            status,
            name,
            account if full_accounts else masked(account),
            batch or "",
            code,
        )


def payment_export_csv(rows: Iterable[tuple]) -> Iterator[str]:
    """CSV text of the rows (UTF-8 BOM, formula-neutralised by the writer)."""
    return iter_csv((dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in rows), EXPORT_COLUMNS, bom=True)


def payment_export_xlsx(rows: Iterable[tuple]) -> Iterator[bytes]:
    """An XLSX workbook of the rows: amounts as numbers, dates as dates, text never a formula."""
    return iter_xlsx(rows, EXPORT_COLUMNS, sheet_title="Payments")
