"""Streaming XLSX batch reader (first worksheet) for untrusted uploads.

Why not ``openpyxl.load_workbook(read_only=True)``: it keeps the whole
shared-strings table in memory (a 10^6-row sheet of unique references, names
and accounts costs hundreds of MB), and its read-only parser runs at a few
thousand rows per second. This reader walks the OOXML package itself:

* zip-bomb checks on every member's *declared* sizes before anything is
  read (zipfile never returns more than the declared size of a member, and
  fails the CRC check if the data disagrees), and only stored/deflated
  members are read (bzip2/lzma would decompress without a bound);
* every XML part is parsed with the hardened expat parser of ``_xml`` (no
  DTD, hence no entities and no external references);
* shared strings are spilled to a temporary file and looked up by offset, so
  memory stays flat whatever the number of strings;
* cells are read straight from the sheet XML, so row numbers are exact.

Numbers: an XLSX file stores numeric cells as IEEE-754 doubles, written as
text of up to 17 significant digits (Excel writes 1234.56 as
"1234.5599999999999"). The only faithful reading is the shortest decimal that
round-trips to the same double, i.e. ``repr(float(text))``, converted to a
plain Decimal string. This is the single place where a float touches an
amount; text cells are read verbatim and are what we recommend for amounts
and account numbers.
"""

from __future__ import annotations

import math
import mmap
import posixpath
import re
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import IO, BinaryIO
from xml.parsers import expat

from ._xml import create_parser, local_name, xml_error
from .base import (
    BaseReader,
    FormatError,
    HeaderMap,
    RawRow,
    RowProblem,
    apply_value_aliases,
    empty_values,
    map_header,
)

MAX_TOTAL_UNCOMPRESSED = 1024**3  # 1 GiB for the whole package
MAX_MEMBER_UNCOMPRESSED = 1024**3
MAX_RATIO = 200  # uncompressed / compressed, for members above RATIO_MIN_SIZE
RATIO_MIN_SIZE = 1024 * 1024
MAX_MEMBERS = 10_000
CHUNK_BYTES = 64 * 1024
MAX_CELL_CHARS = 32_767  # Excel's own limit for a cell

_READABLE_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_OFFICE_DOCUMENT = "/officeDocument"
_SHARED_STRINGS = "/sharedStrings"
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_OFFSET = struct.Struct("<Q")


def check_zip(
    archive: zipfile.ZipFile,
    *,
    max_total: int = MAX_TOTAL_UNCOMPRESSED,
    max_member: int = MAX_MEMBER_UNCOMPRESSED,
    max_ratio: float = MAX_RATIO,
    max_members: int = MAX_MEMBERS,
) -> None:
    """Raise FormatError("zip_bomb") if declared sizes exceed the limits."""
    members = archive.infolist()
    if len(members) > max_members:
        raise FormatError("zip_bomb", f"The workbook has too many parts ({len(members)}).")
    total = 0
    for info in members:
        size = info.file_size
        total += size
        if size > max_member:
            raise FormatError("zip_bomb", f"Workbook part {info.filename} is too large when unpacked.")
        if size > RATIO_MIN_SIZE and size > max_ratio * max(info.compress_size, 1):
            raise FormatError(
                "zip_bomb",
                f"Workbook part {info.filename} is compressed suspiciously well.",
            )
    if total > max_total:
        raise FormatError("zip_bomb", "The workbook is too large when unpacked.")


def excel_number_text(raw: str) -> str:
    """Return the decimal text of a numeric cell (see the module docstring)."""
    raw = raw.strip()
    try:
        number = float(raw)  # the documented float: XLSX numbers are doubles
    except ValueError:
        return raw
    if not math.isfinite(number):
        return raw
    exact = Decimal(repr(number))
    if exact == exact.to_integral_value():
        return str(int(exact))
    return format(exact, "f")


def unescape(text: str) -> str:
    """Decode OOXML ``_xHHHH_`` escapes (``_x005F_`` protects a literal ``_``)."""
    if "_x" not in text:
        return text
    return _ESCAPE.sub(_unescape_one, text)


def _unescape_one(match: re.Match[str]) -> str:
    code = int(match.group(1), 16)
    # A lone surrogate is not a character; it could not even be re-encoded.
    return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)


def column_index(ref: str) -> int:
    """Return the 1-based column of a cell reference such as ``"AB12"`` (0 if none)."""
    n = 0
    for char in ref:
        code = ord(char) & ~0x20  # upper-case ASCII letters
        if 65 <= code <= 90 and char.isascii():
            n = n * 26 + code - 64
        else:
            break
    return n


def column_letter(index: int) -> str:
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _open_member(archive: zipfile.ZipFile, name: str) -> IO[bytes]:
    info = archive.getinfo(name)
    if info.compress_type not in _READABLE_COMPRESSION:
        raise FormatError("invalid_xlsx", f"Workbook part {name} uses an unsupported compression.")
    return archive.open(info)


def _feed(archive: zipfile.ZipFile, name: str, parser: expat.XMLParserType) -> Iterator[None]:
    """Push one XML part through ``parser`` chunk by chunk, yielding after each."""
    try:
        with _open_member(archive, name) as member:
            while True:
                chunk = member.read(CHUNK_BYTES)
                parser.Parse(chunk, not chunk)
                yield
                if not chunk:
                    break
    except expat.ExpatError as exc:
        raise xml_error(exc, f"Workbook part {name}") from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise FormatError("invalid_xlsx", f"Workbook part {name} is corrupt: {exc}") from None


def _parse_part(
    archive: zipfile.ZipFile,
    name: str,
    start: Callable[[str, dict[str, str]], None],
    end: Callable[[str], None] | None = None,
    text: Callable[[str], None] | None = None,
) -> None:
    """Stream one whole XML part of the package through the hardened parser."""
    parser = create_parser()
    parser.StartElementHandler = start
    if end is not None:
        parser.EndElementHandler = end
    if text is not None:
        parser.CharacterDataHandler = text
    for _ in _feed(archive, name, parser):
        pass


def _relationships(archive: zipfile.ZipFile, part: str) -> list[tuple[str, str, str]]:
    """Return (id, type, resolved target) of a part's relationships."""
    folder, base = posixpath.split(part)
    rels_name = posixpath.join(folder, "_rels", base + ".rels")
    if rels_name not in archive.NameToInfo:
        return []
    found: list[tuple[str, str, str]] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if local_name(name) == "Relationship" and attrs.get("TargetMode") != "External":
            target = attrs.get("Target", "")
            if target.startswith("/"):
                resolved = target.lstrip("/")
            else:
                resolved = posixpath.normpath(posixpath.join(folder, target))
            found.append((attrs.get("Id", ""), attrs.get("Type", ""), resolved))

    _parse_part(archive, rels_name, start)
    return found


def _first_sheet_id(archive: zipfile.ZipFile, workbook: str) -> str:
    ids: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if not ids and local_name(name) == "sheet":
            for key, value in attrs.items():
                if " " in key and local_name(key) == "id":  # r:id, any namespace
                    ids.append(value)

    _parse_part(archive, workbook, start)
    if not ids:
        raise FormatError("invalid_xlsx", "The workbook has no worksheet.")
    return ids[0]


class SharedStrings:
    """The shared-strings table, kept in a temporary file and read by offset."""

    def __init__(self) -> None:
        self._data: IO[bytes] = tempfile.TemporaryFile()
        self._ends: IO[bytes] = tempfile.TemporaryFile()
        self._data_map: mmap.mmap | bytes = b""
        self._ends_map: mmap.mmap | bytes = b""
        self._size = 0
        self.count = 0
        self._cache: dict[int, str] = {}

    def load(self, archive: zipfile.ZipFile, part: str) -> None:
        """Parse the shared-strings part into the temporary files."""
        handler = _StringsParser(self._append)
        _parse_part(archive, part, handler.start, handler.end, handler.text)
        self._data.flush()
        self._ends.flush()
        if self._size:
            self._data_map = mmap.mmap(self._data.fileno(), 0, access=mmap.ACCESS_READ)
        if self.count:
            self._ends_map = mmap.mmap(self._ends.fileno(), 0, access=mmap.ACCESS_READ)

    def _append(self, value: str) -> None:
        encoded = value.encode("utf-8")
        self._data.write(encoded)
        self._size += len(encoded)
        self._ends.write(_OFFSET.pack(self._size))
        self.count += 1

    def __getitem__(self, index: int) -> str:
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        if not 0 <= index < self.count:
            raise FormatError("invalid_xlsx", "A cell refers to a missing shared string.")
        start = _OFFSET.unpack_from(self._ends_map, (index - 1) * 8)[0] if index else 0
        stop = _OFFSET.unpack_from(self._ends_map, index * 8)[0]
        value = self._data_map[start:stop].decode("utf-8")
        if len(self._cache) >= 4096:
            self._cache.clear()
        self._cache[index] = value
        return value

    def close(self) -> None:
        for mapped in (self._data_map, self._ends_map):
            if isinstance(mapped, mmap.mmap):
                mapped.close()
        self._data.close()
        self._ends.close()


class _TextCapture:
    """Collect character data of one element, refusing oversized text."""

    def __init__(self) -> None:
        self.capture: list[str] | None = None
        self.length = 0
        self.row = 0  # sheet row, for error messages
        self.names: dict[str, str] = {}  # "uri local" -> local, memoised

    def local(self, name: str) -> str:
        local = self.names.get(name)
        if local is None:
            local = self.names[name] = local_name(name)
        return local

    def begin(self) -> None:
        self.capture = []
        self.length = 0

    def finish(self) -> str:
        text = "".join(self.capture or ())
        self.capture = None
        return text

    def text(self, data: str) -> None:
        if self.capture is not None:
            self.capture.append(data)
            self.length += len(data)
            if self.length > MAX_CELL_CHARS * 4:
                raise FormatError("invalid_xlsx", "A cell is too long.", line=self.row)


class _StringsParser(_TextCapture):
    """Expat handlers for ``<si>`` items, skipping phonetic runs (``rPh``)."""

    def __init__(self, append: Callable[[str], None]) -> None:
        super().__init__()
        self.append = append
        self.parts: list[str] = []
        self.in_phonetic = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = self.local(name)
        if local == "t":
            if not self.in_phonetic:
                self.begin()
        elif local == "si":
            self.parts.clear()
        elif local == "rPh":
            self.in_phonetic += 1

    def end(self, name: str) -> None:
        local = self.local(name)
        if local == "t":
            if self.capture is not None:
                self.parts.append(self.finish())
        elif local == "si":
            self.append(unescape("".join(self.parts)))
        elif local == "rPh":
            self.in_phonetic -= 1


class _SheetParser(_TextCapture):
    """Expat handlers turning ``<row>``/``<c>`` elements into (row, {col: text})."""

    def __init__(self, strings: SharedStrings | None) -> None:
        super().__init__()
        self.strings = strings
        self.ready: list[tuple[int, dict[int, str]]] = []
        self.row = 0
        self.cells: dict[int, str] = {}
        self.col = 0
        self.ctype = "n"
        self.value: str | None = None
        self.inline: list[str] = []
        self.in_is = False
        self.in_phonetic = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = self.names.get(name) or self.local(name)
        if local == "c":
            ref = attrs.get("r")
            self.col = column_index(ref) if ref else self.col + 1
            self.ctype = attrs.get("t", "n")
            self.value = None
            self.inline.clear()
        elif local == "v":
            self.begin()
        elif local == "t":
            if self.in_is and not self.in_phonetic:
                self.begin()
        elif local == "row":
            ref = attrs.get("r")
            self.row = int(ref) if ref and ref.isdigit() else self.row + 1
            self.cells = {}
            self.col = 0
        elif local == "is":
            self.in_is = True
        elif local == "rPh":
            self.in_phonetic += 1

    def end(self, name: str) -> None:
        local = self.names.get(name) or self.local(name)
        if local == "c":
            value = self._cell_text()
            if value:
                self.cells[self.col] = value
        elif local == "v":
            if self.capture is not None:
                self.value = self.finish()
        elif local == "t":
            if self.capture is not None:
                self.inline.append(self.finish())
        elif local == "row":
            if self.cells:
                self.ready.append((self.row, self.cells))
            self.cells = {}
        elif local == "is":
            self.in_is = False
        elif local == "rPh":
            self.in_phonetic -= 1

    def _cell_text(self) -> str:
        ctype, value = self.ctype, self.value
        if ctype == "inlineStr":
            return unescape("".join(self.inline))
        if value is None:
            return ""
        if ctype == "s":
            if self.strings is None or not value.strip().isdigit():
                raise FormatError("invalid_xlsx", "A cell refers to a missing shared string.", line=self.row)
            return self.strings[int(value)]
        if ctype == "n":
            return excel_number_text(value)
        if ctype == "b":
            return "TRUE" if value.strip() == "1" else "FALSE"
        # "str" (formula result), "e" (error such as #N/A), "d" (ISO date)
        return unescape(value)


class XlsxReader(BaseReader):
    """Read the first worksheet of an XLSX batch file.

    ``stream`` must be a seekable binary file. Package checks and the header
    run on construction (``invalid_xlsx``, ``zip_bomb``, ``dtd_forbidden``,
    ``xml_error``, ``empty_file``, column errors); iteration may still raise
    ``xml_error``/``invalid_xlsx``/``dtd_forbidden`` from the sheet. Row
    numbers are the sheet's. Blank rows are skipped.
    """

    format = "xlsx"

    def __init__(
        self,
        stream: BinaryIO,
        *,
        max_total_uncompressed: int = MAX_TOTAL_UNCOMPRESSED,
        max_ratio: float = MAX_RATIO,
        close_stream: bool = False,
    ) -> None:
        super().__init__()
        self._strings: SharedStrings | None = None
        self._owned_stream = stream if close_stream else None
        try:
            self._archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
            raise FormatError("invalid_xlsx", f"The file is not a valid XLSX workbook: {exc}") from None
        try:
            check_zip(
                self._archive,
                max_total=max_total_uncompressed,
                max_member=max_total_uncompressed,
                max_ratio=max_ratio,
            )
            self._sheet = self._locate_parts()
            self._rows_iter = self._sheet_rows()
            self._header_line, header_cells = self._first_row()
            width = max(header_cells) if header_cells else 0
            cells = [header_cells.get(col, "") for col in range(1, width + 1)]
            self._header: HeaderMap = map_header(cells, line=self._header_line)
        except BaseException:
            self.close()
            raise
        self.columns = self._header.columns

    def _locate_parts(self) -> str:
        archive = self._archive
        workbook = next(
            (target for _, kind, target in _relationships(archive, "") if kind.endswith(_OFFICE_DOCUMENT)),
            "xl/workbook.xml",
        )
        if workbook not in archive.NameToInfo:
            raise FormatError("invalid_xlsx", "The file is not an XLSX workbook (no workbook part).")
        relations = _relationships(archive, workbook)
        sheet_id = _first_sheet_id(archive, workbook)
        sheet = next((target for rid, _, target in relations if rid == sheet_id), None)
        if sheet is None or sheet not in archive.NameToInfo:
            raise FormatError("invalid_xlsx", "The first worksheet is missing from the workbook.")
        strings = next(
            (target for _, kind, target in relations if kind.endswith(_SHARED_STRINGS)),
            None,
        )
        if strings is not None and strings in archive.NameToInfo:
            self._strings = SharedStrings()
            self._strings.load(archive, strings)
        return sheet

    def _sheet_rows(self) -> Iterator[tuple[int, dict[int, str]]]:
        handler = _SheetParser(self._strings)
        parser = create_parser()
        parser.StartElementHandler = handler.start
        parser.EndElementHandler = handler.end
        parser.CharacterDataHandler = handler.text
        ready = handler.ready
        for _ in _feed(self._archive, self._sheet, parser):
            if ready:
                yield from ready
                ready.clear()

    def _first_row(self) -> tuple[int, dict[int, str]]:
        for row, cells in self._rows_iter:
            if any(value.strip() for value in cells.values()):
                return row, {col: value.strip() for col, value in cells.items()}
        raise FormatError("empty_file", "The worksheet has no header row.", line=1)

    def _rows(self) -> Iterator[RawRow]:
        positions = [(name, index + 1) for name, index in self._header.positions]
        known = {index for _, index in positions}
        width = self._header.width
        for row, cells in self._rows_iter:
            values = empty_values()
            blank = True
            for name, col in positions:
                value = cells.get(col)
                if value:
                    value = value.strip()
                    if value:
                        values[name] = value
                        blank = False
            problems: tuple[RowProblem, ...] = ()
            if not known.issuperset(cells):
                extra = sorted(col for col, value in cells.items() if col not in known and value.strip())
                if extra:
                    blank = False
                    problems = (
                        RowProblem(
                            "extra_values",
                            "Values found outside the header's columns (column {}); the "
                            "header has {} columns.".format(", ".join(map(column_letter, extra)), width),
                        ),
                    )
            if not blank:
                yield RawRow(row, apply_value_aliases(values), problems)

    def close(self) -> None:
        if self._strings is not None:
            self._strings.close()
            self._strings = None
        archive = getattr(self, "_archive", None)
        if archive is not None:
            archive.close()
        if self._owned_stream is not None:
            self._owned_stream.close()
            self._owned_stream = None
