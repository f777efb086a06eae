"""A streaming XLSX writer: openpyxl's write-only workbook, spooled to a temporary file.

Rows go to the sheet one at a time (openpyxl's write-only mode keeps no cell
in memory and writes strings inline, without a shared-strings table); the
finished workbook is read back from the temporary file in pieces. A text
cell is always a string cell, never a formula, whatever it starts with
(``=``, ``+``, ``-``, ``@``): the text is kept as it is, not prefixed.
Decimals are numbers shown with their own number of decimals; datetimes are
Excel dates in UTC (Excel has no time zones).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
_PIECE = 64 * 1024


def _number_format(value: Decimal) -> str:
    places = -value.as_tuple().exponent
    return "0." + "0" * places if places > 0 else "0"


def iter_xlsx(
    rows: Iterable[Sequence[object]], columns: Sequence[str], *, sheet_title: str = "Sheet1"
) -> Iterator[bytes]:
    """Yield the bytes of a one-sheet workbook: a header row of `columns`, then `rows`.

    The workbook is written completely (to a temporary file) before the first piece is yielded.
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=sheet_title[:31])
    sheet.append([_text(sheet, name) for name in columns])
    formats: dict[int, str] = {}
    for row in rows:
        sheet.append([_cell(sheet, value, formats) for value in row])
    with tempfile.TemporaryFile() as spool:
        workbook.save(spool)
        spool.seek(0)
        while piece := spool.read(_PIECE):
            yield piece


def _text(sheet, text: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("", text))
    # openpyxl would store a text starting with "=" as a formula: force a string cell.
    cell.data_type = "s"
    return cell


def _cell(sheet, value: object, formats: dict[int, str]) -> object:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if value[0] == "=" or ILLEGAL_CHARACTERS_RE.search(value):
            return _text(sheet, value)
        return value
    if isinstance(value, Decimal):
        cell = WriteOnlyCell(sheet, value)
        places = -value.as_tuple().exponent
        cell.number_format = formats.get(places) or formats.setdefault(places, _number_format(value))
        return cell
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        cell = WriteOnlyCell(sheet, value)
        cell.number_format = DATETIME_FORMAT
        return cell
    return value


__all__ = ["iter_xlsx"]
