"""Streaming CSV batch reader with encoding and delimiter detection.

Encodings: UTF-8 (with or without BOM), UTF-16 LE/BE (with BOM, e.g. Excel's
"Unicode text", which is tab-delimited; without BOM when the NUL pattern is
unmistakable) and GB18030 (a superset of GBK/GB2312). A byte-order mark
decides at once. Without one, the file is decoded as ASCII until the first
chunk (64 KiB) holding a non-ASCII byte, which must decode as UTF-8, or else
as GB18030 with evidence: its non-ASCII characters are nearly all from
GB2312 (the common Chinese characters and punctuation) and none is
private-use or unassigned. Anything else is rejected with ``encoding_error``
and its line, asking the uploader to name the encoding. Since everything
before was ASCII (identical in all of them), this is exact however late the
first non-ASCII byte comes. A chunk that is clearly UTF-8 up to a bad byte
stays UTF-8 (and fails). The whole file is then decoded strictly while it
streams, and the first undecodable byte rejects the file with
``encoding_error`` and its physical line.

Why evidence: Windows-1252 text is often valid GB18030 too ("Müller" reads
as "M" + a rare Han character + "ler", "Núñez" lands in the private-use
area), so "it decodes" proves nothing and the names would be corrupted
silently. Accented Latin letters are followed by ASCII letters, which never
makes a GB2312 pair; Chinese text is made of them.

An uploader who knows better names the encoding (``ENCODINGS``: utf-8,
gb18030, utf-16, cp1252, latin-1) and detection is skipped; ``encoding``
tells which one was used.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import unicodedata
from collections.abc import Iterator
from typing import BinaryIO

from .base import (
    BaseReader,
    FormatError,
    HeaderMap,
    RawRow,
    RowProblem,
    apply_value_aliases,
    empty_values,
    map_header,
    normalize_header_name,
)

DETECT_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024
MAX_LINE_CHARS = 1_000_000
DELIMITERS = (",", ";", "\t")

# display name -> (codec, BOM)
_BOMS: tuple[tuple[str, str, bytes], ...] = (
    ("utf-8-sig", "utf-8", codecs.BOM_UTF8),
    ("utf-16-le", "utf-16-le", codecs.BOM_UTF16_LE),
    ("utf-16-be", "utf-16-be", codecs.BOM_UTF16_BE),
)
_UTF8_EVIDENCE = 8  # non-ASCII characters
# The encodings an uploader may name, and the codec each decodes with ("utf-8" skips a BOM,
# "utf-16" reads one or else takes little-endian, as Windows writes it).
ENCODINGS = {
    "utf-8": "utf-8-sig",
    "gb18030": "gb18030",
    "utf-16": "utf-16",
    "cp1252": "cp1252",
    "latin-1": "latin-1",
}
# Share of a chunk's non-ASCII characters that must be GB2312 for the chunk to count as GB18030.
_GB2312_EVIDENCE = 0.9
_NOT_TEXT = frozenset({"Cn", "Co", "Cs"})


def gb18030_evidence(text: str) -> bool:
    """Whether GB18030-decoded `text` looks like Chinese rather than misread Latin text."""
    foreign = [c for c in text if not c.isascii()]
    if not foreign:
        return False
    if any(unicodedata.category(c) in _NOT_TEXT for c in foreign):
        return False
    common = 0
    for c in foreign:
        try:
            c.encode("gb2312")
        except UnicodeEncodeError:
            continue
        common += 1
    return common >= _GB2312_EVIDENCE * len(foreign)


def read_head(stream: BinaryIO, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def sniff_bom(head: bytes) -> tuple[str, str | None, int]:
    """Return (display name, codec or None if undecided, BOM length)."""
    for display, codec, bom in _BOMS:
        if head.startswith(bom):
            return display, codec, len(bom)
    sample = head[:4096]
    if b"\x00" in sample:
        # UTF-16 without BOM: ASCII text has a NUL in every other byte.
        sample = sample[: len(sample) // 2 * 2]
        half = max(len(sample) // 2, 1)
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if odd > half * 0.3 and even * 4 < odd:
            return "utf-16-le", "utf-16-le", 0
        if even > half * 0.3 and odd * 4 < even:
            return "utf-16-be", "utf-16-be", 0
    return "utf-8", None, 0


def _count_breaks(text: str, cr_pending: bool) -> tuple[int, bool]:
    """Count universal line breaks in text; a CRLF split across chunks counts once."""
    n = text.count("\n") + text.count("\r") - text.count("\r\n")
    if cr_pending and text.startswith("\n"):
        n -= 1
    return n, text.endswith("\r")


class _LineSource:
    """Decode a byte stream incrementally and split it into physical lines.

    Lines keep their terminators (as ``open(newline="")`` does), which is
    what ``csv.reader`` needs for quoted fields spanning lines.
    """

    def __init__(
        self, stream: BinaryIO, head: bytes, chunk_size: int, max_line_chars: int, encoding: str | None = None
    ) -> None:
        self._stream = stream
        self._chunk_size = chunk_size
        self._max_line_chars = max_line_chars
        if encoding:
            # Named by the uploader: no detection. A BOM of that encoding is skipped by its codec.
            self.encoding, self._codec, bom_length = encoding, ENCODINGS[encoding], 0
            if encoding == "utf-16" and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                self._codec = "utf-16-le"
        else:
            self.encoding, self._codec, bom_length = sniff_bom(head)
        self._first = head[bom_length:]
        self._breaks = 0  # line breaks in all text decoded so far
        self._cr_pending = False

    def _chunks(self) -> Iterator[bytes]:
        if self._first:
            yield self._first
        self._first = b""
        while chunk := self._stream.read(self._chunk_size):
            yield chunk

    def _account(self, text: str) -> str:
        n, self._cr_pending = _count_breaks(text, self._cr_pending)
        self._breaks += n
        return text

    def _failure_line(self, codec: str, state: tuple[bytes, int] | None, data: bytes) -> int:
        """Replay ``data`` byte by byte to find the line of the first bad byte."""
        decoder = codecs.getincrementaldecoder(codec)()
        if state is not None:
            decoder.setstate(state)
        breaks, cr_pending = self._breaks, self._cr_pending
        for i in range(len(data)):
            try:
                text = decoder.decode(data[i : i + 1])
            except UnicodeDecodeError:
                break
            if text:
                n, cr_pending = _count_breaks(text, cr_pending)
                breaks += n
        return breaks + 1

    def _choose_codec(self, chunk: bytes) -> str:
        """Pick the codec for the first chunk holding non-ASCII bytes."""
        try:
            codecs.getincrementaldecoder("utf-8")().decode(chunk)
        except UnicodeDecodeError as exc:
            valid = chunk[: exc.start].decode("utf-8")
            # Text that is plainly UTF-8 up to a bad byte is a broken UTF-8
            # file, not GB18030 (where a few pairs can look like UTF-8 by
            # chance, but not many in a row).
            if len(valid) - len(valid.encode("ascii", "ignore")) >= _UTF8_EVIDENCE:
                return "utf-8"
        else:
            return "utf-8"
        try:
            text = codecs.getincrementaldecoder("gb18030")().decode(chunk)
        except UnicodeDecodeError:
            text = None
        if text is not None and gb18030_evidence(text):
            return "gb18030"
        raise FormatError(
            "encoding_error",
            "The file is not UTF-8 (with or without BOM) nor UTF-16, and its text does not read as "
            "Chinese (GB18030). Save it as CSV UTF-8, or upload it again naming its encoding "
            "(e.g. cp1252 for Excel's CSV in Western European languages).",
            line=self._failure_line("utf-8", None, chunk),
        )

    def _decode_error(self, line: int) -> FormatError:
        return FormatError(
            "encoding_error",
            f"The file is not valid {self.encoding} from this line on.",
            line=line,
        )

    def texts(self) -> Iterator[str]:
        """Yield decoded text chunks, raising FormatError on undecodable bytes."""
        decoder = None
        if self._codec is not None:
            decoder = codecs.getincrementaldecoder(self._codec)()
        for chunk in self._chunks():
            if decoder is None:
                if chunk.isascii():
                    yield self._account(chunk.decode("ascii"))
                    continue
                self._codec = self._choose_codec(chunk)
                self.encoding = self._codec
                decoder = codecs.getincrementaldecoder(self._codec)()
            state = decoder.getstate()
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError:
                line = self._failure_line(self._codec or "utf-8", state, chunk)
                raise self._decode_error(line) from None
            if text:
                yield self._account(text)
        if decoder is not None:
            try:
                text = decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise self._decode_error(self._breaks + 1) from None
            if text:
                yield self._account(text)

    def lines(self) -> Iterator[str]:
        """Yield physical lines with their terminators."""
        pending = ""
        count = 0
        limit = self._max_line_chars
        for text in self.texts():
            if pending:
                text = pending + text
            parts = io.StringIO(text, newline="").readlines()
            # A trailing "\r" may be the first half of a CRLF in the next chunk.
            pending = "" if parts[-1].endswith("\n") else parts.pop()
            if len(pending) > limit or (parts and max(map(len, parts)) > limit):
                too_long = next((i for i, part in enumerate(parts) if len(part) > limit), len(parts))
                raise FormatError(
                    "line_too_long",
                    f"A line is longer than {limit} characters.",
                    line=count + too_long + 1,
                )
            count += len(parts)
            yield from parts
        if pending:
            yield pending


def sniff_delimiter(line: str) -> str:
    """Pick the delimiter that best splits a header line into known columns."""
    best = ","
    best_score = (-1, -1)
    for delimiter in DELIMITERS:
        cells = next(csv.reader([line], delimiter=delimiter, skipinitialspace=True), [])
        known = sum(1 for cell in cells if normalize_header_name(cell) in _KNOWN)
        score = (known, len(cells))
        if score > best_score:
            best, best_score = delimiter, score
    return best


class CsvReader(BaseReader):
    """Read a CSV batch file from a binary stream, one ``RawRow`` per data row.

    The header is read and checked on construction, so header problems
    (``empty_file``, ``missing_columns``, ``unknown_columns``,
    ``duplicate_columns``, ``encoding_error`` in the first chunk) raise
    FormatError before iteration starts. During iteration, FormatError may
    still come (``encoding_error``, ``malformed_csv``, ``line_too_long``).
    Blank lines are skipped. ``encoding`` is final once iteration has ended
    (see the module docstring).
    """

    format = "csv"

    def __init__(
        self,
        stream: BinaryIO,
        *,
        chunk_size: int = CHUNK_BYTES,
        max_line_chars: int = MAX_LINE_CHARS,
        encoding: str | None = None,
    ) -> None:
        super().__init__()
        head = read_head(stream, DETECT_BYTES)
        self._source = _LineSource(stream, head, chunk_size, max_line_chars, encoding)
        lines = self._source.lines()
        peeked: list[str] = []
        for line in lines:
            peeked.append(line)
            if line.strip():
                break
        else:
            raise FormatError("empty_file", "The file has no header row.", line=1)
        self.delimiter = sniff_delimiter(peeked[-1])
        self._csv = csv.reader(
            itertools.chain(peeked, lines),
            delimiter=self.delimiter,
            skipinitialspace=True,
        )
        self._header = self._read_header()
        self.columns = self._header.columns

    @property  # type: ignore[override]
    def encoding(self) -> str:
        return self._source.encoding

    def _read_header(self) -> HeaderMap:
        reader = self._csv
        previous = 0
        try:
            for fields in reader:
                if any(field.strip() for field in fields):
                    return map_header(fields, line=previous + 1)
                previous = reader.line_num
        except csv.Error as exc:
            raise FormatError("malformed_csv", str(exc), line=reader.line_num) from None
        raise FormatError("empty_file", "The file has no header row.", line=1)

    def _rows(self) -> Iterator[RawRow]:
        reader = self._csv
        positions = self._header.positions
        width = self._header.width
        unnamed = self._header.unnamed
        previous = reader.line_num
        try:
            for fields in reader:
                line = previous + 1
                previous = reader.line_num
                if not fields:
                    continue
                n = len(fields)
                values = empty_values()
                blank = True
                for name, index in positions:
                    if index < n:
                        value = fields[index].strip()
                        if value:
                            values[name] = value
                            blank = False
                problems: tuple[RowProblem, ...] = ()
                if n > width or unnamed:
                    extra = [
                        i + 1
                        for i in itertools.chain(unnamed, range(width, n))
                        if i < n and fields[i].strip()
                    ]
                    if extra:
                        problems = (_extra_values(extra, width),)
                        blank = False
                if blank:
                    continue
                yield RawRow(line, apply_value_aliases(values), problems)
        except csv.Error as exc:
            raise FormatError("malformed_csv", str(exc), line=reader.line_num) from None


def _extra_values(positions: list[int], width: int) -> RowProblem:
    return RowProblem(
        "extra_values",
        "Values found outside the header's columns (position {}); the header has {} columns.".format(
            ", ".join(map(str, positions)), width
        ),
    )


_KNOWN = frozenset(empty_values())
