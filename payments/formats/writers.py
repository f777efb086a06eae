"""Streaming writers: result CSV, row-error CSV and pain.002 status reports.

Every writer consumes an iterable lazily and emits output as it goes, so a
report of 10^6 payments never sits in memory. Each has a generator form
(``iter_*``, for Django's ``StreamingHttpResponse``) and a ``write_*`` form
writing to a file object.

CSV formula injection: a cell whose text starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return gets a leading ``'`` so that spreadsheet
programs show it as text instead of evaluating it (OWASP "CSV injection").
The rule is applied to every cell, uniformly: a (hypothetical) negative
amount ``-5.00`` would come out as ``'-5.00``. Amounts in PayDesk are never
negative, and one rule with no exceptions is easier to trust.
"""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, Any, TextIO
from xml.sax.saxutils import escape

RESULT_COLUMNS: tuple[str, ...] = (
    "line",
    "reference",
    "amount",
    "currency",
    "method",
    "beneficiary_name",
    "beneficiary_account",
    "status",
    "payment_id",
    "failure_code",
    "failure_message",
)
ERROR_COLUMNS: tuple[str, ...] = ("line", "column", "code", "message")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ROWS_PER_CHUNK = 256

PAIN002_VERSIONS = ("pain.002.001.10", "pain.002.001.03")
ACCEPTED = "ACCP"
PARTIAL = "PART"
REJECTED = "RJCT"
_STATUS = re.compile(r"[A-Z]{4}\Z")
# Characters XML 1.0 cannot carry at all.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def neutralize(text: str) -> str:
    """Prefix a cell that a spreadsheet would run as a formula with ``'``."""
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def cell_text(value: object) -> str:
    """Render a value for a CSV cell (Decimal without exponent, None as "")."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _field(item: object, name: str) -> object:
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


class _LastLine:
    """A file-like sink for csv.writer that keeps only what was just written."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = ""

    def write(self, text: str) -> int:
        self.value = text
        return len(text)


def iter_csv(
    items: Iterable[object],
    columns: Sequence[str],
    *,
    bom: bool = False,
    header: Sequence[str] | None = None,
) -> Iterator[str]:
    """Yield CSV text (header first) for mappings or objects, in chunks of rows.

    Each item gives its cells by key (mapping) or attribute (object); missing
    ones are empty. Every cell is neutralised against formula injection.
    ``header`` replaces the column names in the first line (people's labels).
    """
    sink = _LastLine()
    writer = csv.writer(sink, lineterminator="\r\n")
    writer.writerow([neutralize(name) for name in header] if header is not None else columns)
    chunk = ["\ufeff" + sink.value if bom else sink.value]
    for item in items:
        writer.writerow([neutralize(cell_text(_field(item, name))) for name in columns])
        chunk.append(sink.value)
        if len(chunk) >= _ROWS_PER_CHUNK:
            yield "".join(chunk)
            chunk.clear()
    if chunk:
        yield "".join(chunk)


def iter_result_csv(
    rows: Iterable[object],
    columns: Sequence[str] = RESULT_COLUMNS,
    *,
    bom: bool = False,
    header: Sequence[str] | None = None,
) -> Iterator[str]:
    """Yield the per-payment result CSV of a batch (see RESULT_COLUMNS).

    ``header``: people's labels of the columns for the first line instead of their names.
    """
    return iter_csv(rows, columns, bom=bom, header=header)


def write_result_csv(rows: Iterable[object], out: TextIO, columns: Sequence[str] = RESULT_COLUMNS) -> int:
    """Write the result CSV to a text file (open it with ``newline=""``).

    ``rows`` are mappings or objects with the fields named by ``columns``.
    Return the number of data rows written.
    """
    return _write(rows, columns, out)


def iter_error_csv(
    errors: Iterable[object], *, bom: bool = False, header: Sequence[str] | None = None
) -> Iterator[str]:
    """Yield the row-error CSV: line, column, code, message (``header``: as iter_result_csv)."""
    return iter_csv(errors, ERROR_COLUMNS, bom=bom, header=header)


def write_error_csv(errors: Iterable[object], out: TextIO) -> int:
    """Write row errors (mappings or objects with line, column, code, message).

    Return the number of errors written.
    """
    return _write(errors, ERROR_COLUMNS, out)


def _write(items: Iterable[object], columns: Sequence[str], out: IO[Any]) -> int:
    count = 0

    def counted() -> Iterator[object]:
        nonlocal count
        for item in items:
            count += 1
            yield item

    for chunk in iter_csv(counted(), columns):
        out.write(chunk)
    return count


# -- pain.002 ---------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class TxStatus:
    """The status of one original transaction in a pain.002 report.

    ``status`` is an ISO 20022 transaction status code: ``ACSC`` (settled),
    ``RJCT`` (rejected), or an interim one such as ``ACSP``/``PDNG``.
    ``reason_code`` (e.g. our ``failure_code``) goes to ``Rsn/Prtry``,
    truncated to 35 characters; ``reason_message`` to ``AddtlInf`` (105).
    Transactions are grouped into ``OrgnlPmtInfAndSts`` blocks by
    ``pmt_inf_id``, as they come: pass them ordered by it.
    """

    end_to_end_id: str
    status: str
    reason_code: str | None = None
    reason_message: str | None = None
    pmt_inf_id: str | None = None
    instr_id: str | None = None


def group_status(accepted: int, rejected: int) -> str:
    """Return ACCP when nothing was rejected, RJCT when all were, else PART."""
    if rejected == 0:
        return ACCEPTED
    if accepted == 0:
        return REJECTED
    return PARTIAL


def _clean(text: str, limit: int | None = None) -> str:
    text = _XML_ILLEGAL.sub("", text)
    return text[:limit] if limit is not None else text


def _leaf(tag: str, text: str, limit: int | None = None) -> str:
    return f"<{tag}>{escape(_clean(text, limit))}</{tag}>"


def _reason(code: str | None, message: str | None) -> str:
    if not code and not message:
        return ""
    parts = ["<StsRsnInf>"]
    if code:
        parts.append("<Rsn>" + _leaf("Prtry", code, 35) + "</Rsn>")
    if message:
        parts.append(_leaf("AddtlInf", message, 105))
    parts.append("</StsRsnInf>")
    return "".join(parts)


def _tx_xml(tx: TxStatus) -> str:
    if not _STATUS.match(tx.status):
        raise ValueError(f"Not an ISO 20022 status code: {tx.status!r}")
    parts = ["<TxInfAndSts>"]
    if tx.instr_id:
        parts.append(_leaf("OrgnlInstrId", tx.instr_id))
    parts.append(_leaf("OrgnlEndToEndId", tx.end_to_end_id or "NOTPROVIDED"))
    parts.append(_leaf("TxSts", tx.status))
    parts.append(_reason(tx.reason_code, tx.reason_message))
    parts.append("</TxInfAndSts>")
    return "".join(parts)


class _Body:
    """Render TxInfAndSts grouped by PmtInfId, counting statuses on the way."""

    def __init__(self, default_pmt_inf_id: str) -> None:
        self.default = default_pmt_inf_id
        self.current: str | None = None
        self.accepted = 0
        self.rejected = 0
        self.per_status: dict[str, int] = {}

    def chunks(self, transactions: Iterable[TxStatus]) -> Iterator[str]:
        buffer: list[str] = []
        for tx in transactions:
            pmt = tx.pmt_inf_id or self.default
            if pmt != self.current:
                if self.current is not None:
                    buffer.append("</OrgnlPmtInfAndSts>")
                buffer.append("<OrgnlPmtInfAndSts>" + _leaf("OrgnlPmtInfId", pmt))
                self.current = pmt
            buffer.append(_tx_xml(tx))
            self.per_status[tx.status] = self.per_status.get(tx.status, 0) + 1
            if tx.status == REJECTED:
                self.rejected += 1
            else:
                self.accepted += 1
            if len(buffer) >= _ROWS_PER_CHUNK:
                yield "".join(buffer)
                buffer.clear()
        if self.current is not None:
            buffer.append("</OrgnlPmtInfAndSts>")
        if buffer:
            yield "".join(buffer)


def iter_pain002(
    transactions: Iterable[TxStatus],
    *,
    msg_id: str,
    orgnl_msg_id: str,
    orgnl_msg_nm_id: str = "pain.001.001.03",
    created_at: datetime | None = None,
    orgnl_nb_of_txs: int | None = None,
    orgnl_ctrl_sum: Decimal | None = None,
    status: str | None = None,
    reason_code: str | None = None,
    reason_message: str | None = None,
    default_pmt_inf_id: str = "NOTPROVIDED",
    version: str = "pain.002.001.10",
) -> Iterator[bytes]:
    """Yield a UTF-8 pain.002 customer payment status report, piece by piece.

    The group status (``GrpSts``) is ``status`` if given, else derived from
    the transactions (``group_status``): as it precedes them in the document,
    the transactions are then rendered once into a temporary file (spilled
    to disk past 4 MiB) and copied out after the group header, and
    ``NbOfTxsPerSts`` is added. ``reason_code``/``reason_message`` give a
    group-level ``StsRsnInf`` (e.g. a file rejected as a whole).
    """
    if version not in PAIN002_VERSIONS:
        raise ValueError(f"Unsupported pain.002 version: {version!r}")
    created = (created_at or datetime.now(UTC)).isoformat(timespec="seconds")
    body = _Body(default_pmt_inf_id)
    head_parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{version}">',
        "<CstmrPmtStsRpt><GrpHdr>",
        _leaf("MsgId", msg_id),
        _leaf("CreDtTm", created),
        "</GrpHdr><OrgnlGrpInfAndSts>",
        _leaf("OrgnlMsgId", orgnl_msg_id),
        _leaf("OrgnlMsgNmId", orgnl_msg_nm_id),
    ]
    if orgnl_nb_of_txs is not None:
        head_parts.append(_leaf("OrgnlNbOfTxs", str(orgnl_nb_of_txs)))
    if orgnl_ctrl_sum is not None:
        head_parts.append(_leaf("OrgnlCtrlSum", format(orgnl_ctrl_sum, "f")))

    def group_info(grp_sts: str, counts: dict[str, int] | None) -> str:
        if not _STATUS.match(grp_sts):
            raise ValueError(f"Not an ISO 20022 status code: {grp_sts!r}")
        parts = [*head_parts, _leaf("GrpSts", grp_sts), _reason(reason_code, reason_message)]
        for code, count in (counts or {}).items():
            parts.append(
                "<NbOfTxsPerSts>"
                + _leaf("DtldNbOfTxs", str(count))
                + _leaf("DtldSts", code)
                + "</NbOfTxsPerSts>"
            )
        parts.append("</OrgnlGrpInfAndSts>")
        return "".join(parts)

    tail = "</CstmrPmtStsRpt></Document>\n"
    if status is not None:
        yield group_info(status, None).encode("utf-8")
        for chunk in body.chunks(transactions):
            yield chunk.encode("utf-8")
        yield tail.encode("utf-8")
        return
    with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as spool:
        for chunk in body.chunks(transactions):
            spool.write(chunk.encode("utf-8"))
        grp_sts = group_status(body.accepted, body.rejected)
        yield group_info(grp_sts, body.per_status).encode("utf-8")
        spool.seek(0)
        while piece := spool.read(64 * 1024):
            yield piece
    yield tail.encode("utf-8")


def write_pain002(out: IO[bytes], transactions: Iterable[TxStatus], **options: Any) -> None:
    """Write a pain.002 report to a binary file; options as for iter_pain002."""
    for piece in iter_pain002(transactions, **options):
        out.write(piece)


__all__ = [
    "ERROR_COLUMNS",
    "PAIN002_VERSIONS",
    "RESULT_COLUMNS",
    "TxStatus",
    "cell_text",
    "group_status",
    "iter_csv",
    "iter_error_csv",
    "iter_pain002",
    "iter_result_csv",
    "neutralize",
    "write_error_csv",
    "write_pain002",
    "write_result_csv",
]
