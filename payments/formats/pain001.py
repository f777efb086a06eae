"""Streaming reader of ISO 20022 pain.001 (customer credit transfer initiation).

Versions pain.001.001.03 and pain.001.001.09. Mapping per transaction
(``CdtTrfTxInf``):

========================================  ======================
``PmtId/EndToEndId``                      reference
``Amt/InstdAmt`` text and ``@Ccy``        amount, currency
``Cdtr/Nm``                               beneficiary_name
``CdtrAcct/Id/IBAN`` (else ``Othr/Id``)   beneficiary_account
``Cdtr/CtctDtls/EmailAdr``                beneficiary_email
``Cdtr/CtctDtls/PhneNb`` (else ``MobNb``) beneficiary_phone
``RmtInf/Ustrd`` (several joined by " ")  description
(constant)                                method = bank_transfer
========================================  ======================

Control totals are checked with exact Decimal arithmetic: ``NbOfTxs`` and
``CtrlSum`` of the group header against all transactions, and those of each
``PmtInf`` (when present) against its own. A ``PmtInf`` mismatch raises when
that block ends; a group mismatch raises when iteration reaches the end of
the document, after the last row was yielded. Either way the caller must
reject the whole file (design section 3).

The document is parsed with the hardened expat parser of ``_xml`` (no DTD,
so no entities: billion laughs and XXE are refused). Row line numbers are
expat's exact line of each ``<CdtTrfTxInf>`` start tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import BinaryIO

from ._xml import CHUNK_BYTES, StreamingXmlReader
from .base import BaseReader, FormatError, RawRow, RowProblem, empty_values

NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
SUPPORTED_VERSIONS = ("pain.001.001.03", "pain.001.001.09")
MAX_DEPTH = 64
METHOD = "bank_transfer"

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")
_COUNT = re.compile(r"[0-9]{1,15}\Z")

# Path below CdtTrfTxInf -> field captured from that element's text.
_TX_FIELDS: dict[tuple[str, ...], str] = {
    ("PmtId", "EndToEndId"): "reference",
    ("Amt", "InstdAmt"): "amount",
    ("Amt", "EqvtAmt", "Amt"): "equivalent_amount",
    ("Cdtr", "Nm"): "beneficiary_name",
    ("CdtrAcct", "Id", "IBAN"): "beneficiary_account",
    ("CdtrAcct", "Id", "Othr", "Id"): "other_account",
    ("Cdtr", "CtctDtls", "EmailAdr"): "beneficiary_email",
    ("Cdtr", "CtctDtls", "PhneNb"): "beneficiary_phone",
    ("Cdtr", "CtctDtls", "MobNb"): "mobile_phone",
    ("RmtInf", "Ustrd"): "description",
}
_GROUP_FIELDS = ("MsgId", "NbOfTxs", "CtrlSum")
_PMT_FIELDS = ("PmtInfId", "NbOfTxs", "CtrlSum", "ReqdExctnDt")
# ReqdExctnDt: an ISODate in .03; in .09 a choice of Dt (ISODate) or DtTm (ISODateTime).
_DATE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:T.*)?\Z")


def parse_decimal(text: str) -> Decimal | None:
    """Return the xs:decimal value of ``text``, or None if it is not one."""
    text = text.strip()
    if not _DECIMAL.match(text):
        return None
    return Decimal(text)


class _Block:
    """Running totals of a group or of one PmtInf."""

    __slots__ = ("declared", "count", "total", "unparsable_line", "ident", "date")

    def __init__(self) -> None:
        self.declared: dict[str, str] = {}
        self.count = 0
        self.total = Decimal(0)
        self.unparsable_line: int | None = None
        self.ident: str | None = None
        self.date: str | None = None

    def add(self, amount: str, line: int) -> None:
        self.count += 1
        value = parse_decimal(amount)
        if value is None:
            if self.unparsable_line is None:
                self.unparsable_line = line
        else:
            self.total += value


def _control_count(raw: str, where: str, line: int | None) -> int:
    if not _COUNT.match(raw.strip()):
        raise FormatError(
            "invalid_control_value",
            f"{where} NbOfTxs '{raw}' is not a number of transactions.",
            line=line,
        )
    return int(raw)


def _control_sum(raw: str, where: str, line: int | None) -> Decimal:
    value = parse_decimal(raw)
    if value is None:
        raise FormatError(
            "invalid_control_value",
            f"{where} CtrlSum '{raw}' is not a decimal amount.",
            line=line,
        )
    return value


def _check_block(block: _Block, where: str, line: int | None) -> None:
    """Raise FormatError if a block's declared totals disagree with its transactions."""
    if "NbOfTxs" in block.declared:
        declared = _control_count(block.declared["NbOfTxs"], where, line)
        if declared != block.count:
            raise FormatError(
                "count_mismatch",
                f"{where} NbOfTxs is {declared} but the file has {block.count} transactions.",
                line=line,
            )
    if "CtrlSum" in block.declared:
        declared_sum = _control_sum(block.declared["CtrlSum"], where, line)
        if block.unparsable_line is not None:
            raise FormatError(
                "control_sum_mismatch",
                f"{where} CtrlSum cannot be verified: an amount is not a decimal number.",
                line=block.unparsable_line,
            )
        if declared_sum != block.total:
            raise FormatError(
                "control_sum_mismatch",
                f"{where} CtrlSum is {declared_sum} but the transactions add up to {block.total}.",
                line=line,
            )


class Pain001Reader(StreamingXmlReader, BaseReader):
    """Read a pain.001.001.03/.09 file from a binary stream.

    The group header is parsed on construction, so ``msg_id``, ``nb_of_txs``,
    ``ctrl_sum`` and ``version`` are set before iteration. FormatError codes:
    ``xml_error``, ``dtd_forbidden``, ``unsupported_format``,
    ``unsupported_version``, ``missing_element``, ``invalid_control_value``,
    ``count_mismatch``, ``control_sum_mismatch``, ``value_too_long``.
    """

    format = "pain.001"

    def __init__(self, stream: BinaryIO, *, chunk_size: int = CHUNK_BYTES) -> None:
        super().__init__()
        self.columns = tuple(empty_values())
        self._xml_open(stream, chunk_size)
        self._ready: list[RawRow] = []
        self._capture_key: tuple[str, str] | None = None
        self._group = _Block()
        self._group_line: int | None = None
        self._header_done = False
        self._pmt: _Block | None = None
        self._pmt_line: int | None = None
        self._tx: dict[str, str] | None = None
        self._tx_depth = 0
        self._tx_line = 0
        self._tx_ccy = ""
        # Parse up to the end of GrpHdr so its values are known up front.
        while not self._header_done and not self._done:
            self._feed()
        if not self._header_done:
            raise FormatError("missing_element", "The file has no GrpHdr.")

    # -- parsing -----------------------------------------------------------

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        stack = self._stack
        depth = len(stack)
        if depth == 0:
            self._start_document(name)
        local = self._local(name)
        stack.append(local)
        if depth >= MAX_DEPTH:
            raise FormatError("xml_error", "The XML is nested too deeply.", line=self._line())
        if self._tx is not None:
            field = _TX_FIELDS.get(tuple(stack[self._tx_depth + 1 :]))
            if field is not None:
                self._begin(("tx", field), depth)
                if field == "amount":
                    self._tx_ccy = attrs.get("Ccy", "")
                elif field == "equivalent_amount" and not self._tx_ccy:
                    self._tx_ccy = attrs.get("Ccy", "")
            return
        parent = stack[-2] if depth else ""
        if depth == 1 and local != "CstmrCdtTrfInitn":
            raise FormatError(
                "unsupported_format",
                "Expected CstmrCdtTrfInitn, found {}.".format(local.lstrip("\x00")),
                line=self._line(),
            )
        if parent == "GrpHdr" and depth == 3 and local in _GROUP_FIELDS:
            self._begin(("grp", local), depth)
        elif parent == "PmtInf" and depth == 3:
            if local == "CdtTrfTxInf":
                self._start_tx(depth)
            elif local in _PMT_FIELDS:
                self._begin(("pmt", local), depth)
        elif local == "PmtInf" and depth == 2:
            if not self._header_done:
                raise FormatError("missing_element", "GrpHdr must come first.", line=self._line())
            self._pmt = _Block()
            self._pmt_line = self._line()
        elif local == "GrpHdr" and depth == 2:
            self._group_line = self._line()

    def _start_document(self, name: str) -> None:
        namespace, _, local = name.rpartition(" ")
        if local != "Document" or not namespace.startswith(NAMESPACE_PREFIX + "pain.001."):
            raise FormatError(
                "unsupported_format",
                "The XML file is not an ISO 20022 pain.001 message.",
                line=self._line(),
            )
        version = namespace[len(NAMESPACE_PREFIX) :]
        if version not in SUPPORTED_VERSIONS:
            raise FormatError(
                "unsupported_version",
                "{} is not supported; use {}.".format(version, " or ".join(SUPPORTED_VERSIONS)),
                line=self._line(),
            )
        self.version = version
        self._prefix = namespace + " "

    def _start_tx(self, depth: int) -> None:
        self._tx = {}
        self._tx_depth = depth
        self._tx_line = self._line()
        self._tx_ccy = ""
        nb = self.nb_of_txs
        if nb is not None and self._group.count >= nb:
            raise FormatError(
                "count_mismatch",
                f"The group header declares NbOfTxs {nb} but the file has more transactions.",
                line=self._tx_line,
            )

    def _begin(self, key: tuple[str, str], depth: int) -> None:
        self._capture_key = key
        self._capture_begin(depth)

    def _end(self, name: str) -> None:
        stack = self._stack
        local = stack.pop()
        depth = len(stack)
        if self._capture is not None and depth == self._capture_depth:
            self._finish_capture()
        if depth == self._tx_depth and self._tx is not None and local == "CdtTrfTxInf":
            self._finish_tx()
        elif depth == 2 and local == "GrpHdr":
            self._finish_group_header()
        elif depth == 2 and local == "PmtInf" and self._pmt is not None:
            where = "PmtInf {}".format(self._pmt.ident or "")
            _check_block(self._pmt, where.strip(), self._pmt_line)
            self._pmt = None
        elif depth == 0:
            self._finish_document()

    def _finish_capture(self) -> None:
        text = "".join(self._capture or ()).strip()
        kind, key = self._capture_key or ("", "")
        self._capture = None
        if kind == "tx" and self._tx is not None:
            if key == "description" and self._tx.get(key):
                text = self._tx[key] + " " + text
            self._tx[key] = text
        elif kind == "grp":
            self._group.declared[key] = text
        elif kind == "pmt" and self._pmt is not None:
            if key == "PmtInfId":
                self._pmt.ident = text
            elif key == "ReqdExctnDt":
                match = _DATE.match(text)
                if match is None:
                    raise FormatError(
                        "invalid_date",
                        f"ReqdExctnDt '{text}' is not a date (YYYY-MM-DD).",
                        line=self._line(),
                    )
                self._pmt.date = match.group(1)
            else:
                self._pmt.declared[key] = text

    def _finish_group_header(self) -> None:
        declared = self._group.declared
        line = self._group_line
        for required in ("MsgId", "NbOfTxs"):
            if not declared.get(required):
                raise FormatError("missing_element", f"GrpHdr has no {required}.", line=line)
        self.msg_id = declared["MsgId"]
        self.nb_of_txs = _control_count(declared["NbOfTxs"], "GrpHdr", line)
        if "CtrlSum" in declared:
            self.ctrl_sum = _control_sum(declared["CtrlSum"], "GrpHdr", line)
        self._header_done = True

    def _finish_tx(self) -> None:
        tx = self._tx or {}
        self._tx = None
        values = empty_values()
        problems: list[RowProblem] = []
        amount = tx.get("amount")
        if amount is None and "equivalent_amount" in tx:
            amount = tx["equivalent_amount"]
            problems.append(
                RowProblem(
                    "unsupported_amount",
                    "EqvtAmt is not supported; give the amount as InstdAmt.",
                    column="amount",
                )
            )
        values["reference"] = tx.get("reference", "")
        values["amount"] = amount or ""
        values["currency"] = self._tx_ccy.strip()
        values["method"] = METHOD
        values["beneficiary_name"] = tx.get("beneficiary_name", "")
        values["beneficiary_account"] = tx.get("beneficiary_account") or tx.get("other_account", "")
        values["beneficiary_email"] = tx.get("beneficiary_email", "")
        values["beneficiary_phone"] = tx.get("beneficiary_phone") or tx.get("mobile_phone", "")
        values["description"] = tx.get("description", "")
        line = self._tx_line
        self._group.add(values["amount"], line)
        pmt = self._pmt
        if pmt is not None:
            pmt.add(values["amount"], line)
        self._ready.append(
            RawRow(
                line,
                values,
                tuple(problems),
                pmt.ident if pmt is not None else None,
                pmt.date if pmt is not None else None,
            )
        )

    def _finish_document(self) -> None:
        if not self._header_done:
            raise FormatError("missing_element", "The file has no GrpHdr.")

    # -- iteration ---------------------------------------------------------

    def _rows(self) -> Iterator[RawRow]:
        ready = self._ready
        while True:
            if ready:
                yield from ready
                ready.clear()
            if self._done:
                break
            self._feed()
        _check_block(self._group, "GrpHdr", self._group_line)
