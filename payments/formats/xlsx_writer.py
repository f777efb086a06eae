"""A streaming XLSX writer: SpreadsheetML rows deflated straight into the response.

The workbook is a ZIP written to a sink that is emptied as it fills, so the
first bytes go out at once and memory stays flat however many rows there
are (the ZIP entries carry data descriptors: no seeking back). Its parts are
the minimum Excel, LibreOffice and openpyxl read: content types, the package
and workbook relations, a workbook of one sheet, the styles of the number
formats, and the sheet. Cells:

- text is an inline string cell, never a formula, whatever it starts with
  (``=``, ``+``, ``-``, ``@``): kept as it is, not prefixed with ``'`` as in
  the CSV; characters XML 1.0 cannot carry are dropped;
- a Decimal is a number shown with its own number of decimals (``12.50``
  as ``0.00``, ``1200`` as ``0``, ``1.234`` as ``0.000``);
- a datetime is an Excel date-time (``yyyy-mm-dd hh:mm:ss``), in UTC when it
  is aware (Excel has no time zones);
- ints and floats are numbers, booleans booleans, None an empty cell.

openpyxl's write-only workbook does the same about seven times slower
(pure-Python etree per cell) and only after the whole file is written.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape

_ROWS_PER_PIECE = 512
# Excel's rows per sheet, less the header row. A sheet stays far below ZIP64 sizes at that count.
MAX_SHEET_ROWS = 1_048_575
_SHEET_NAME_UNSAFE = str.maketrans({c: "_" for c in "[]:*?/\\"})
_EPOCH = datetime(1899, 12, 30)
# Characters XML 1.0 cannot carry at all.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Number formats of Decimals by places (styles 1-5), then date-time (6) and date (7).
_MAX_PLACES = 4
_DATETIME_STYLE = _MAX_PLACES + 2
_DATE_STYLE = _MAX_PLACES + 3


def _content_types(sheets: int) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        + "".join(
            f'<Override PartName="/xl/worksheets/sheet{n}.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for n in range(1, sheets + 1)
        )
        + '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        "</Types>"
    )


_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)


def _workbook_rels(sheets: int) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + "".join(
            f'<Relationship Id="rId{n}" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
            f'Target="worksheets/sheet{n}.xml"/>'
            for n in range(1, sheets + 1)
        )
        + f'<Relationship Id="rId{sheets + 1}" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
        'Target="styles.xml"/></Relationships>'
    )


_MAIN = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'


def _workbook(title: str, sheets: int) -> str:
    names = [title] + [f"{title[:25]} ({n})" for n in range(2, sheets + 1)]
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook {_MAIN} {_REL}><sheets>'
        + "".join(
            f'<sheet name="{escape(name, {chr(34): "&quot;"})}" sheetId="{n}" r:id="rId{n}"/>'
            for n, name in enumerate(names, start=1)
        )
        + "</sheets></workbook>"
    )


def _styles() -> str:
    formats = [(164 + places, "0." + "0" * places) for places in range(1, _MAX_PLACES + 1)]
    formats += [(170, "yyyy-mm-dd hh:mm:ss"), (171, "yyyy-mm-dd")]
    xfs = ['<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>']
    ids = [1] + [fid for fid, _code in formats]  # places 0 uses the built-in "0"
    xfs += [
        f'<xf numFmtId="{i}" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>' for i in ids
    ]
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet {_MAIN}>'
        f'<numFmts count="{len(formats)}">'
        + "".join(f'<numFmt numFmtId="{fid}" formatCode="{code}"/>' for fid, code in formats)
        + "</numFmts>"
        '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        f'<cellXfs count="{len(xfs)}">' + "".join(xfs) + "</cellXfs>"
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    )


class _Sink:
    """A write-only file for ZipFile (no tell/seek: data descriptors) that is drained as it fills."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def _letters(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def _text(ref: str, text: str) -> str:
    text = escape(_XML_ILLEGAL.sub("", text))
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def _cell(ref: str, value: object) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return _text(ref, value)
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, Decimal):
        if not value.is_finite():
            return _text(ref, str(value))
        places = max(0, -value.as_tuple().exponent)
        style = places + 1 if places <= _MAX_PLACES else 0
        return f'<c r="{ref}" s="{style}"><v>{value:f}</v></c>'
    if isinstance(value, int | float):
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        serial = (value - _EPOCH).total_seconds() / 86400
        return f'<c r="{ref}" s="{_DATETIME_STYLE}"><v>{serial!r}</v></c>'
    if isinstance(value, date):
        return f'<c r="{ref}" s="{_DATE_STYLE}"><v>{(value - _EPOCH.date()).days}</v></c>'
    return _text(ref, str(value))


def iter_xlsx(
    rows: Iterable[Sequence[object]],
    columns: Sequence[str],
    *,
    sheet_title: str = "Sheet1",
    rows_per_sheet: int = MAX_SHEET_ROWS,
) -> Iterator[bytes]:
    """Yield the bytes of a workbook: a header row of `columns`, then `rows`, as they come.

    Past `rows_per_sheet` data rows (Excel's limit by default) the rows go on in a new sheet
    ("<title> (2)", ...) with the header again. The workbook's own parts follow the sheets, once
    their number is known.
    """
    letters = [_letters(i) for i in range(len(columns))]
    head = "".join(_text(f"{letter}1", name) for letter, name in zip(letters, columns, strict=True))
    sink = _Sink()
    sheets = 0
    rows = iter(rows)
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as package:
        pending = next(rows, None)
        while sheets == 0 or pending is not None:
            sheets += 1
            with package.open(f"xl/worksheets/sheet{sheets}.xml", "w") as sheet:
                sheet.write(
                    (
                        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {_MAIN}>'
                        f'<sheetData><row r="1">{head}</row>'
                    ).encode()
                )
                buffer: list[str] = []
                number = 1
                while pending is not None and number <= rows_per_sheet:
                    number += 1
                    cells = "".join(
                        _cell(f"{letter}{number}", value)
                        for letter, value in zip(letters, pending, strict=True)
                    )
                    buffer.append(f'<row r="{number}">{cells}</row>')
                    if len(buffer) >= _ROWS_PER_PIECE:
                        sheet.write("".join(buffer).encode())
                        buffer.clear()
                        piece = sink.drain()
                        if piece:
                            yield piece
                    pending = next(rows, None)
                buffer.append("</sheetData></worksheet>")
                sheet.write("".join(buffer).encode())
        title = _XML_ILLEGAL.sub("", sheet_title).translate(_SHEET_NAME_UNSAFE)[:31] or "Sheet1"
        package.writestr("xl/workbook.xml", _workbook(title, sheets))
        package.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(sheets))
        package.writestr("xl/styles.xml", _styles())
        package.writestr("_rels/.rels", _ROOT_RELS)
        package.writestr("[Content_Types].xml", _content_types(sheets))
    yield sink.drain()


__all__ = ["iter_xlsx"]
