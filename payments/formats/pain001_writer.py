"""Streaming writer of ISO 20022 pain.001.001.09 customer credit-transfer initiations (bank files).

The caller knows the totals up front (one aggregate query) and hands the
transactions over as iterators, block by block, so a file of 10^6
transfers is written without ever holding them: the group header and each
payment information block (``PmtInf``) declare ``NbOfTxs`` and ``CtrlSum``
before their transactions, and the writer checks, as it goes, that what it
wrote adds up to what was declared (ValueError otherwise: the caller
discards the file).

Element order and types follow the pain.001.001.09 XSD (validated in
tests/formats/test_bank_files.py against the official schema).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape

VERSION = "pain.001.001.09"
NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:" + VERSION
# Characters XML 1.0 cannot carry at all.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}\Z")
_BIC = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?\Z")
_PIECE = 256  # transactions per yielded piece


@dataclass(frozen=True, slots=True)
class Party:
    """A debtor: holder name, account (IBAN or other id) and bank (BIC or clearing member id)."""

    name: str
    iban: str = ""
    account_number: str = ""
    bic: str = ""
    bank_code: str = ""


@dataclass(frozen=True, slots=True)
class Transfer:
    """One credit transfer: the amount is a decimal string in the block's currency."""

    end_to_end_id: str
    amount: str
    creditor_name: str
    creditor_account: str
    remittance: str = ""


@dataclass(frozen=True, slots=True)
class PaymentBlock:
    """One PmtInf: one debtor account, one currency, one requested execution date."""

    pmt_inf_id: str
    execution_date: date
    debtor: Party
    currency: str
    nb_of_txs: int
    ctrl_sum: Decimal
    transfers: Iterable[Transfer]


def _text(value: str, limit: int) -> str:
    return escape(_XML_ILLEGAL.sub("", value)[:limit])


def _leaf(tag: str, value: str, limit: int = 140) -> str:
    return f"<{tag}>{_text(value, limit)}</{tag}>"


def _account(iban: str, other: str) -> str:
    """CashAccount38/Id: the IBAN when it is one, else the account number as Othr/Id (Max34Text)."""
    compact = iban.replace(" ", "").upper()
    if compact and _IBAN.match(compact):
        return f"<Id><IBAN>{compact}</IBAN></Id>"
    return "<Id><Othr>" + _leaf("Id", other or iban, 34) + "</Othr></Id>"


def _agent(party: Party) -> str:
    """FinInstnId: the BIC, else the bank code as a clearing member id, else NOTPROVIDED (as EPC asks)."""
    bic = party.bic.replace(" ", "").upper()
    if bic and _BIC.match(bic):
        inner = f"<BICFI>{bic}</BICFI>"
    elif party.bank_code:
        inner = "<ClrSysMmbId>" + _leaf("MmbId", party.bank_code, 35) + "</ClrSysMmbId>"
    else:
        inner = "<Othr><Id>NOTPROVIDED</Id></Othr>"
    return f"<FinInstnId>{inner}</FinInstnId>"


def _transfer(tx: Transfer, currency: str) -> str:
    parts = [
        "<CdtTrfTxInf><PmtId>",
        _leaf("EndToEndId", tx.end_to_end_id, 35),
        f'</PmtId><Amt><InstdAmt Ccy="{currency}">{tx.amount}</InstdAmt></Amt>',
        "<Cdtr>",
        _leaf("Nm", tx.creditor_name),
        "</Cdtr><CdtrAcct>",
        _account(tx.creditor_account, tx.creditor_account),
        "</CdtrAcct>",
    ]
    if tx.remittance:
        parts.append("<RmtInf>" + _leaf("Ustrd", tx.remittance) + "</RmtInf>")
    parts.append("</CdtTrfTxInf>")
    return "".join(parts)


def iter_pain001(
    *,
    msg_id: str,
    created_at: datetime,
    initiating_party: str,
    nb_of_txs: int,
    ctrl_sum: Decimal,
    blocks: Iterable[PaymentBlock],
) -> Iterator[bytes]:
    """Yield a UTF-8 pain.001.001.09 document piece by piece.

    ``nb_of_txs`` and ``ctrl_sum`` are the totals of all blocks; every block
    carries its own. Raise ValueError when the transactions do not add up to
    a declared total (after the offending block or at the end).
    """
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="{NAMESPACE}"><CstmrCdtTrfInitn><GrpHdr>'
        + _leaf("MsgId", msg_id, 35)
        + _leaf("CreDtTm", created_at.isoformat(timespec="seconds"))
        + f"<NbOfTxs>{nb_of_txs}</NbOfTxs><CtrlSum>{_decimal(ctrl_sum)}</CtrlSum>"
        + "<InitgPty>"
        + _leaf("Nm", initiating_party)
        + "</InitgPty></GrpHdr>"
    ).encode("utf-8")
    count, total = 0, Decimal(0)
    for block in blocks:
        if block.nb_of_txs < 1:
            raise ValueError(f"PmtInf {block.pmt_inf_id} has no transaction (the schema needs one)")
        debtor = block.debtor
        yield (
            "<PmtInf>"
            + _leaf("PmtInfId", block.pmt_inf_id, 35)
            + "<PmtMtd>TRF</PmtMtd><BtchBookg>false</BtchBookg>"
            + f"<NbOfTxs>{block.nb_of_txs}</NbOfTxs><CtrlSum>{_decimal(block.ctrl_sum)}</CtrlSum>"
            + f"<ReqdExctnDt><Dt>{block.execution_date.isoformat()}</Dt></ReqdExctnDt>"
            + "<Dbtr>"
            + _leaf("Nm", debtor.name)
            + "</Dbtr><DbtrAcct>"
            + _account(debtor.iban, debtor.account_number)
            + f"<Ccy>{block.currency}</Ccy></DbtrAcct><DbtrAgt>"
            + _agent(debtor)
            + "</DbtrAgt>"
        ).encode("utf-8")
        n, block_sum, piece = 0, Decimal(0), []
        for tx in block.transfers:
            piece.append(_transfer(tx, block.currency))
            n += 1
            block_sum += Decimal(tx.amount)
            if len(piece) >= _PIECE:
                yield "".join(piece).encode("utf-8")
                piece.clear()
        piece.append("</PmtInf>")
        yield "".join(piece).encode("utf-8")
        if n != block.nb_of_txs or block_sum != block.ctrl_sum:
            raise ValueError(
                f"PmtInf {block.pmt_inf_id} declares {block.nb_of_txs} / {block.ctrl_sum} "
                f"but has {n} / {block_sum}"
            )
        count += n
        total += block_sum
    if count != nb_of_txs or total != ctrl_sum:
        raise ValueError(f"GrpHdr declares {nb_of_txs} / {ctrl_sum} but the file has {count} / {total}")
    yield b"</CstmrCdtTrfInitn></Document>\n"


def _decimal(value: Decimal) -> str:
    return format(value, "f")
