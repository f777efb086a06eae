""" "Download the bad rows": the rejected rows of a batch as a file to fix and upload again.

The rows are read again from the stored upload, as they were uploaded (the
original values, untouched by validation), and written as CSV with the
template's column names (payments/formats/batch_template.py), the columns
the upload had, in its order. The upload refuses unknown columns, so the
file carries no reason column: the reasons are in errors.csv and on the
batch page, by line. Both files are streamed: the stored file and the
row errors are read side by side in line order.

Cells are formula-neutralised like every CSV PayDesk writes (a value
starting with = + - @ gets a leading '), so such a value must be corrected
before the upload. Once the stored file is past its retention
(payments/services/batches/retention.py) the bad rows can no longer be
given: `BadRowsUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.core.files.storage import default_storage
from django.utils.translation import gettext as _

from payments.formats import ALL_COLUMNS, FORMAT_CSV, FORMAT_XLSX, FormatError
from payments.formats.writers import iter_csv
from payments.models import BatchRowError, PaymentBatch
from payments.services.batches.ingest import FileRejected, open_batch_reader


class BadRowsUnavailable(Exception):
    """The batch's rejected rows cannot be given (no row errors, or the file is gone)."""


def batch_bad_rows_available(batch: PaymentBatch) -> bool:
    """Whether "Download the bad rows" can be offered for `batch`."""
    return bool(batch.stored_file) and batch.row_errors.exists()


def _error_lines(batch: PaymentBatch) -> Iterator[int]:
    return (
        BatchRowError.objects.filter(batch_id=batch.pk)
        .order_by("line")
        .values_list("line", flat=True)
        .distinct()
        .iterator(chunk_size=5000)
    )


def iter_bad_rows_csv(batch: PaymentBatch) -> Iterator[str]:
    """Yield the CSV of the batch's rejected rows; raise BadRowsUnavailable before the first chunk."""
    if not batch_bad_rows_available(batch) or not default_storage.exists(batch.stored_file):
        raise BadRowsUnavailable(_("The uploaded file is no longer kept, so its rows cannot be given."))
    fileobj = default_storage.open(batch.stored_file, "rb")
    try:
        reader = open_batch_reader(batch, fileobj)
    except (FormatError, FileRejected):
        fileobj.close()
        raise BadRowsUnavailable(_("The uploaded file can no longer be read.")) from None
    # A CSV or XLSX gives its own columns back; JSON items and pain.001 the template's.
    tabular = batch.source_format in (FORMAT_CSV, FORMAT_XLSX) and getattr(reader, "columns", ())
    columns = tuple(reader.columns) if tabular else ALL_COLUMNS
    return _rows_csv(batch, fileobj, reader, columns)


def _rows_csv(batch: PaymentBatch, fileobj, reader, columns) -> Iterator[str]:
    with fileobj, reader:
        yield from iter_csv(_bad_rows(batch, reader), columns, bom=True)


def _bad_rows(batch: PaymentBatch, reader) -> Iterator[dict]:
    lines = _error_lines(batch)
    wanted = next(lines, None)
    for row in reader:
        if wanted is None:
            return
        if row.line < wanted:
            continue
        while wanted is not None and wanted < row.line:
            wanted = next(lines, None)
        if wanted == row.line:
            yield {
                k: v if isinstance(v, str) else ("" if v is None else str(v)) for k, v in row.values.items()
            }
            wanted = next(lines, None)
