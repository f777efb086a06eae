"""Streaming readers and writers of batch files: CSV, XLSX, pain.001, pain.002.

Pure Python: no Django, no database, no other PayDesk module. Readers never
hold a whole file in memory; they yield ``RawRow`` objects one at a time and
are safe on untrusted uploads (zip bombs, XML entity bombs, XXE, undecodable
text, overlong lines are rejected).

Usage::

    with open_reader(upload, upload.name) as reader:
        reader.format, reader.encoding, reader.msg_id   # known up front
        for row in reader:                              # single pass
            row.line, row.values["amount"], row.problems

A ``FormatError`` rejects the whole file; it may come from ``open_reader``
(bad header, bad package, ...) or at any point of the iteration (a bad byte
on line 90,000; pain.001 control totals, checked at the end). Codes:

``unsupported_format``     not CSV, XLSX or pain.001 (e.g. legacy .xls, other XML)
``empty_file``             no header row
``missing_columns``        required columns absent (``column`` lists them)
``unknown_columns``        columns outside the contract
``duplicate_columns``      a column appears twice
``encoding_error``         not UTF-8/UTF-16/GB18030/Windows-1252 (or not the encoding named);
                           ``line`` is where it fails
``malformed_csv``          the CSV parser gave up (e.g. a field over 128 KiB)
``line_too_long``          a physical line over 1,000,000 characters
``invalid_xlsx``           not a readable workbook (corrupt, encrypted, ...)
``zip_bomb``               declared sizes or compression ratio over the limits
``dtd_forbidden``          a DTD/entity declaration in any XML (xlsx or pain.001)
``xml_error``              malformed XML
``unsupported_version``    a pain.001 version other than .03 and .09
``missing_element``        pain.001 GrpHdr, MsgId or NbOfTxs missing
``invalid_control_value``  pain.001 NbOfTxs/CtrlSum not numbers
``count_mismatch``         pain.001 NbOfTxs differs (group or PmtInf level)
``control_sum_mismatch``   pain.001 CtrlSum differs (group or PmtInf level)
``value_too_long``         a pain.001 element text over 10,000 characters

Row-level structural problems are not file errors: they come as
``RawRow.problems`` (``extra_values``: values outside the header's columns;
``unsupported_amount``: a pain.001 ``EqvtAmt``), for the caller to record as
row errors along with its own validation.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from typing import BinaryIO

from .base import (
    ALL_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    BaseReader,
    FormatError,
    RawRow,
    RowProblem,
)
from .csv_reader import ENCODINGS, CsvReader, read_head
from .pain001 import SUPPORTED_VERSIONS, Pain001Reader
from .writers import (
    TxStatus,
    iter_error_csv,
    iter_pain002,
    iter_result_csv,
    write_error_csv,
    write_pain002,
    write_result_csv,
)
from .xlsx_reader import XlsxReader

__all__ = [
    "ALL_COLUMNS",
    "ENCODINGS",
    "FORMAT_CSV",
    "FORMAT_PAIN001",
    "FORMAT_XLSX",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "SUPPORTED_VERSIONS",
    "BaseReader",
    "CsvReader",
    "FormatError",
    "Pain001Reader",
    "RawRow",
    "RowProblem",
    "TxStatus",
    "XlsxReader",
    "detect_format",
    "iter_error_csv",
    "iter_pain002",
    "iter_result_csv",
    "open_reader",
    "write_error_csv",
    "write_pain002",
    "write_result_csv",
]

FORMAT_CSV = "csv"
FORMAT_XLSX = "xlsx"
FORMAT_PAIN001 = "pain.001"
HEAD_BYTES = 64 * 1024

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PAIN001_MARK = "urn:iso:std:iso:20022:tech:xsd:pain.001."


def _head_text(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="ignore")
    return head.decode("utf-8", errors="ignore")


def detect_format(filename: str, head: bytes) -> str:
    """Return "csv", "xlsx" or "pain.001" for a file, by its content.

    ``head`` is the first bytes of the file (64 KiB is plenty). The content
    decides, not the name: a zip package is XLSX, an XML document in a
    pain.001 namespace is pain.001, anything else is CSV. Raise
    FormatError("unsupported_format") for a legacy/encrypted Office file or
    an XML document that is not pain.001. ``filename`` only improves the
    error message.
    """
    if head.startswith(_ZIP_MAGIC):
        return FORMAT_XLSX
    if head.startswith(_OLE2_MAGIC):
        raise FormatError(
            "unsupported_format",
            "{} is a legacy .xls or password-protected workbook; save it as "
            "an unprotected .xlsx or as CSV UTF-8.".format(filename or "The file"),
        )
    text = _head_text(head).lstrip("\ufeff \t\r\n")
    if text.startswith("<"):
        if _PAIN001_MARK in text:
            return FORMAT_PAIN001
        raise FormatError(
            "unsupported_format",
            "{} is XML but not an ISO 20022 pain.001 message.".format(filename or "The file"),
        )
    return FORMAT_CSV


class _PrefixedStream(io.RawIOBase):
    """A non-seekable stream with its already-read first bytes put back."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def _seekable(fileobj: BinaryIO) -> bool:
    try:
        return bool(fileobj.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def open_reader(fileobj: BinaryIO, filename: str = "", *, encoding: str | None = None) -> BaseReader:
    """Detect the format of a binary file object and return its reader.

    `encoding` (one of ENCODINGS) is the text encoding of a CSV as its
    uploader named it; detection then is skipped. XLSX and pain.001 say
    their own encoding.

    The reader's header (or pain.001 group header) has been read and checked
    when this returns; iterate it once for the rows and close it when done.
    A seekable ``fileobj`` is read from its current position; a non-seekable
    one is streamed (XLSX, which needs random access, is spooled to a
    temporary file first). Raise FormatError for a file rejected as a whole.
    """
    if _seekable(fileobj):
        start = fileobj.tell()
        head = read_head(fileobj, HEAD_BYTES)
        fileobj.seek(start)
        stream: BinaryIO = fileobj
    else:
        head = read_head(fileobj, HEAD_BYTES)
        stream = io.BufferedReader(_PrefixedStream(head, fileobj))  # type: ignore[arg-type]
    kind = detect_format(filename, head)
    if kind == FORMAT_XLSX:
        if stream is fileobj:
            return XlsxReader(stream)
        spool = tempfile.TemporaryFile()
        try:
            shutil.copyfileobj(stream, spool)
            spool.seek(0)
            return XlsxReader(spool, close_stream=True)
        except BaseException:
            spool.close()
            raise
    if kind == FORMAT_PAIN001:
        return Pain001Reader(stream)
    return CsvReader(stream, encoding=encoding)
