"""Streaming readers of the bank's answers to a bank file: pain.002 and camt.054.

- pain.002.001.03 and .001.10 (customer payment status report): one entry per
  ``TxInfAndSts`` with its ``OrgnlEndToEndId``, ``TxSts`` (ACSC, ACCC, RJCT,
  or an interim status such as ACSP) and the ISO reason code of
  ``StsRsnInf/Rsn/Cd`` (or ``Prtry``); a group status of RJCT with no
  transaction is one entry for the whole original message.
- camt.054.001.02 and .001.08 (debit/credit notification): one entry per
  ``TxDtls`` of an ``Ntry``: a booked debit (``BOOK``, ``DBIT``) confirms a
  transfer; a transaction with ``RtrInf`` is a return, with its reason.
  Other entries (credits, pending or information-only bookings) are skipped.

The document goes through the hardened expat parser of ``_xml`` (no DTD, so
no entity expansion and no external entities) and is read in chunks, so a
report of any size is parsed with bounded memory. FormatError codes:
``xml_error``, ``dtd_forbidden``, ``unsupported_format``,
``unsupported_version``, ``value_too_long``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from ._xml import CHUNK_BYTES, StreamingXmlReader
from .base import FormatError

NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
PAIN002 = "pain.002"
CAMT054 = "camt.054"
SUPPORTED = {
    "pain.002.001.03": PAIN002,
    "pain.002.001.10": PAIN002,
    "camt.054.001.02": CAMT054,
    "camt.054.001.08": CAMT054,
}
ROOTS = {PAIN002: "CstmrPmtStsRpt", CAMT054: "BkToCstmrDbtCdtNtfctn"}
MAX_DEPTH = 64

# What an entry says of its transfer.
SETTLED = "settled"  # pain.002 ACSC/ACCC, camt.054 booked debit
REJECTED = "rejected"  # pain.002 RJCT
RETURNED = "returned"  # camt.054 return (RtrInf)
PENDING = "pending"  # an interim pain.002 status (ACCP, ACSP, PDNG, ...)
SETTLED_STATUSES = frozenset({"ACSC", "ACCC"})


@dataclass(slots=True)
class ReportEntry:
    """One transaction status a report gives: its EndToEndId, what happened and why."""

    end_to_end_id: str
    outcome: str
    status: str
    reason_code: str = ""
    reason_message: str = ""
    line: int = 0
    # A group-level rejection names the original message instead of a transaction.
    original_msg_id: str = ""


@dataclass
class ReportHeader:
    kind: str = ""
    version: str = ""
    msg_id: str = ""
    original_msg_ids: list[str] = field(default_factory=list)


# (path below the root, field) captured as text; paths are tuples of local names.
_PAIN002_GROUP = {
    ("GrpHdr", "MsgId"): "msg_id",
    ("OrgnlGrpInfAndSts", "OrgnlMsgId"): "orgnl_msg_id",
    ("OrgnlGrpInfAndSts", "GrpSts"): "grp_sts",
    ("OrgnlGrpInfAndSts", "StsRsnInf", "Rsn", "Cd"): "grp_reason",
    ("OrgnlGrpInfAndSts", "StsRsnInf", "Rsn", "Prtry"): "grp_reason_prtry",
    ("OrgnlGrpInfAndSts", "StsRsnInf", "AddtlInf"): "grp_info",
}
_PAIN002_TX = {
    ("OrgnlEndToEndId",): "e2e",
    ("TxSts",): "status",
    ("StsRsnInf", "Rsn", "Cd"): "reason",
    ("StsRsnInf", "Rsn", "Prtry"): "reason_prtry",
    ("StsRsnInf", "AddtlInf"): "info",
}
_CAMT_ENTRY = {
    ("CdtDbtInd",): "direction",
    ("Sts",): "status",  # .02: the code itself
    ("Sts", "Cd"): "status",  # .08
}
_CAMT_TX = {
    ("Refs", "EndToEndId"): "e2e",
    ("RtrInf", "Rsn", "Cd"): "reason",
    ("RtrInf", "Rsn", "Prtry"): "reason_prtry",
    ("RtrInf", "AddtlInf"): "info",
}


class BankReportReader(StreamingXmlReader):
    """Read a pain.002 or camt.054 from a binary stream; iterate its entries once.

    ``header`` (kind, version, MsgId) is known after construction; the
    original MsgIds of a pain.002 as they are met.
    """

    document = "The report"

    def __init__(self, stream: BinaryIO, *, chunk_size: int = CHUNK_BYTES) -> None:
        self.header = ReportHeader()
        self._xml_open(stream, chunk_size)
        self._ready: list[ReportEntry] = []
        self._capture_target: tuple[dict, str] | None = None
        self._group: dict[str, str] = {}
        self._group_txs = 0
        self._entry: dict[str, str] | None = None
        self._entry_depth = 0
        self._entry_txs = 0
        self._entry_line = 0
        self._tx: dict[str, str] | None = None
        self._tx_depth = 0
        self._tx_line = 0
        while not self.header.kind and not self._done:
            self._feed()
        if not self.header.kind:
            raise FormatError("unsupported_format", "The file is empty.")

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
        if depth == 1:
            if local != ROOTS[self.header.kind]:
                raise FormatError(
                    "unsupported_format", f"Expected {ROOTS[self.header.kind]}.", line=self._line()
                )
            return
        if self.header.kind == PAIN002:
            self._start_pain002(stack, depth)
        else:
            self._start_camt054(stack, depth)

    def _start_document(self, name: str) -> None:
        namespace, _, local = name.rpartition(" ")
        version = namespace[len(NAMESPACE_PREFIX) :] if namespace.startswith(NAMESPACE_PREFIX) else ""
        if local != "Document" or not version.startswith(("pain.002.", "camt.054.")):
            raise FormatError(
                "unsupported_format",
                "The file is not an ISO 20022 pain.002 or camt.054 message.",
                line=self._line(),
            )
        if version not in SUPPORTED:
            raise FormatError(
                "unsupported_version",
                "{} is not supported; use {}.".format(version, ", ".join(sorted(SUPPORTED))),
                line=self._line(),
            )
        self.header.kind = SUPPORTED[version]
        self.header.version = version
        self._prefix = namespace + " "

    def _start_pain002(self, stack: list[str], depth: int) -> None:
        path = tuple(stack[2:])
        if self._tx is not None:
            key = _PAIN002_TX.get(tuple(stack[self._tx_depth + 1 :]))
            if key:
                self._begin(self._tx, key, depth)
            return
        if path[:1] == ("OrgnlPmtInfAndSts",) and stack[-1] == "TxInfAndSts" and depth == 3:
            self._tx, self._tx_depth, self._tx_line = {}, depth, self._line()
            self._group_txs += 1
            return
        key = _PAIN002_GROUP.get(path)
        if key:
            self._begin(self._group, key, depth)

    def _start_camt054(self, stack: list[str], depth: int) -> None:
        path = tuple(stack[2:])
        if self._tx is not None:
            key = _CAMT_TX.get(tuple(stack[self._tx_depth + 1 :]))
            if key:
                self._begin(self._tx, key, depth)
            return
        if self._entry is not None:
            rest = tuple(stack[self._entry_depth + 1 :])
            if rest == ("NtryDtls", "TxDtls"):
                self._tx, self._tx_depth, self._tx_line = {}, depth, self._line()
                self._entry_txs += 1
                return
            key = _CAMT_ENTRY.get(rest)
            if key:
                self._begin(self._entry, key, depth)
            return
        if path == ("Ntfctn", "Ntry"):
            self._entry, self._entry_depth, self._entry_line = {}, depth, self._line()
            self._entry_txs = 0
        elif path == ("GrpHdr", "MsgId"):
            self._begin(self._group, "msg_id", depth)

    def _begin(self, target: dict, key: str, depth: int) -> None:
        self._capture_target = (target, key)
        self._capture_begin(depth)

    def _end(self, name: str) -> None:
        stack = self._stack
        stack.pop()
        depth = len(stack)
        if self._capture is not None and depth == self._capture_depth:
            target, key = self._capture_target or ({}, "")
            target.setdefault(key, "".join(self._capture).strip())
            self._capture = None
        if self._tx is not None and depth == self._tx_depth:
            self._finish_tx()
        elif self._entry is not None and depth == self._entry_depth:
            if (
                self._entry_txs == 0
                and self._entry.get("direction") == "DBIT"
                and self._entry.get("status") == "BOOK"
            ):
                self._ready.append(
                    ReportEntry(
                        "", SETTLED, "BOOK", "", "booked debit without transaction details", self._entry_line
                    )
                )
            self._entry = None
        elif depth == 2 and self.header.kind == PAIN002 and stack[-1:] == [ROOTS[PAIN002]]:
            self._group_element_done()
        elif depth == 0:
            self._finish_document()

    def _group_element_done(self) -> None:
        group = self._group
        if group.get("msg_id"):
            self.header.msg_id = group["msg_id"][:35]
        original = group.get("orgnl_msg_id", "")
        if original and original not in self.header.original_msg_ids:
            self.header.original_msg_ids.append(original)

    def _finish_tx(self) -> None:
        tx, self._tx = self._tx or {}, None
        reason = tx.get("reason") or tx.get("reason_prtry", "")
        e2e = tx.get("e2e", "")
        if self.header.kind == PAIN002:
            status = tx.get("status", "").upper()
            if status in SETTLED_STATUSES:
                outcome = SETTLED
            elif status == "RJCT":
                outcome = REJECTED
            else:
                outcome = PENDING
            self._ready.append(
                ReportEntry(e2e, outcome, status, reason[:64], tx.get("info", "")[:500], self._tx_line)
            )
            return
        entry = self._entry or {}
        if "reason" in tx or "reason_prtry" in tx or "info" in tx:
            self._ready.append(
                ReportEntry(e2e, RETURNED, "RTRN", reason[:64], tx.get("info", "")[:500], self._tx_line)
            )
        elif entry.get("direction") == "DBIT" and entry.get("status") == "BOOK":
            self._ready.append(ReportEntry(e2e, SETTLED, "BOOK", line=self._tx_line))

    def _finish_document(self) -> None:
        if self.header.kind != PAIN002:
            return
        group = self._group
        if group.get("grp_sts", "").upper() == "RJCT" and self._group_txs == 0:
            reason = group.get("grp_reason") or group.get("grp_reason_prtry", "")
            self._ready.append(
                ReportEntry(
                    "",
                    REJECTED,
                    "RJCT",
                    reason[:64],
                    group.get("grp_info", "")[:500],
                    0,
                    original_msg_id=group.get("orgnl_msg_id", ""),
                )
            )

    # -- iteration ---------------------------------------------------------

    def __iter__(self) -> Iterator[ReportEntry]:
        ready = self._ready
        while True:
            if ready:
                yield from ready
                ready.clear()
            if self._done:
                return
            self._feed()
