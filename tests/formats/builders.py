"""Builders of real batch files for the format tests (no Django needed)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import openpyxl

HEADER = ["reference", "amount", "currency", "method", "beneficiary_name", "beneficiary_account"]

BILLION_LAUGHS_DTD = (
    '<?xml version="1.0"?>\n'
    "<!DOCTYPE lolz [\n"
    ' <!ENTITY lol "lol">\n'
    ' <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
    ' <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">\n'
    ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n'
    ' <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">\n'
    ' <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">\n'
    ' <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">\n'
    ' <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">\n'
    ' <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">\n'
    ' <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">\n'
    "]>\n"
)


def csv_text(rows: Iterable[Sequence[str]], header: Sequence[str] = HEADER, delimiter: str = ",") -> str:
    lines = [delimiter.join(header)]
    lines.extend(delimiter.join(row) for row in rows)
    return "\r\n".join(lines) + "\r\n"


def xlsx_bytes(rows: Iterable[Sequence[object]], header: Sequence[object] = HEADER) -> bytes:
    """Make a workbook with openpyxl (strings go to the shared-strings table)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Payments"
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def rewrite_zip(
    data: bytes,
    replace: dict[str, bytes] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """Copy a zip package, replacing (or adding) some members."""
    replace = dict(replace or {})
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", compression) as target:
        for info in source.infolist():
            payload = replace.pop(info.filename, None)
            target.writestr(info.filename, payload if payload is not None else source.read(info))
        for name, payload in replace.items():
            target.writestr(name, payload)
    return out.getvalue()


SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"


@dataclass(frozen=True)
class Num:
    """A numeric cell written verbatim as <v>text</v> (as Excel stores it)."""

    text: str


def _col(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def excel_style_xlsx(rows: Iterable[Sequence[object]], header: Sequence[object] = HEADER) -> bytes:
    """Make a workbook the way Excel does: text in the shared-strings table.

    openpyxl writes inline strings only, so this builds the package by hand.
    Cells: str -> shared string, int/Num -> number, None -> absent.
    """
    strings: dict[str, int] = {}
    sheet_rows = []
    for number, row in enumerate([header, *rows], start=1):
        cells = []
        for index, value in enumerate(row):
            ref = f"{_col(index)}{number}"
            if value is None:
                continue
            if isinstance(value, str):
                position = strings.setdefault(value, len(strings))
                cells.append(f'<c r="{ref}" t="s"><v>{position}</v></c>')
            else:
                text = value.text if isinstance(value, Num) else str(value)
                cells.append(f'<c r="{ref}"><v>{text}</v></c>')
        sheet_rows.append(f'<row r="{number}">{"".join(cells)}</row>')
    shared = "".join(f'<si><t xml:space="preserve">{escape(text)}</t></si>' for text in strings)
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG_REL_NS}">'
            f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{SHEET_NS}" xmlns:r="{_REL_NS}">'
            '<sheets><sheet name="Payments" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG_REL_NS}">'
            f'<Relationship Id="rId1" Type="{_REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{_REL_NS}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": sheet_xml("".join(sheet_rows)).decode(),
        "xl/sharedStrings.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{SHEET_NS}" count="{len(strings)}" '
            f'uniqueCount="{len(strings)}">{shared}</sst>'
        ),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, text in parts.items():
            package.writestr(name, text.encode("utf-8"))
    return out.getvalue()


def sheet_xml(rows_xml: str, prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n') -> bytes:
    return (f'{prolog}<worksheet xmlns="{SHEET_NS}"><sheetData>{rows_xml}</sheetData></worksheet>').encode()


def inline_row(number: int, values: Sequence[str]) -> str:
    cells = "".join(
        f'<c r="{chr(65 + i)}{number}" t="inlineStr"><is><t>{value}</t></is></c>'
        for i, value in enumerate(values)
    )
    return f'<row r="{number}">{cells}</row>'


# -- pain.001 ----------------------------------------------------------------


@dataclass
class Tx:
    e2e: str
    amount: str
    ccy: str = "EUR"
    name: str = "Jane Doe"
    iban: str | None = "FR1420041010050500013M02606"
    other_id: str | None = None
    ustrd: Sequence[str] = ()
    email: str | None = None


@dataclass
class PmtInf:
    ident: str
    txs: list[Tx]
    nb: str | None = "auto"
    ctrl: str | None = "auto"
    extra: str = field(default="")


def _sum(amounts: Iterable[str]) -> str:
    from decimal import Decimal

    return str(sum((Decimal(a) for a in amounts), Decimal(0)))


def pain001(
    pmt_infs: Sequence[PmtInf],
    *,
    version: str = "pain.001.001.03",
    msg_id: str = "MSG-0001",
    nb: str | None = "auto",
    ctrl: str | None = "auto",
    prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n',
) -> str:
    """Render a pain.001 document, one element per line, auto control totals."""
    v09 = version.endswith(".09")
    all_txs = [tx for p in pmt_infs for tx in p.txs]
    out = [prolog.rstrip("\n")]
    out.append(f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{version}">')
    out.append("<CstmrCdtTrfInitn>")
    out.append("<GrpHdr>")
    out.append(f"<MsgId>{msg_id}</MsgId>")
    out.append("<CreDtTm>2026-01-15T10:00:00</CreDtTm>")
    if nb is not None:
        out.append(f"<NbOfTxs>{len(all_txs) if nb == 'auto' else nb}</NbOfTxs>")
    if ctrl is not None:
        value = _sum(tx.amount for tx in all_txs) if ctrl == "auto" else ctrl
        out.append(f"<CtrlSum>{value}</CtrlSum>")
    out.append("<InitgPty><Nm>ACME GmbH</Nm></InitgPty>")
    out.append("</GrpHdr>")
    bic = "BICFI" if v09 else "BIC"
    for p in pmt_infs:
        out.append("<PmtInf>")
        out.append(f"<PmtInfId>{p.ident}</PmtInfId>")
        out.append("<PmtMtd>TRF</PmtMtd>")
        if p.nb is not None:
            out.append(f"<NbOfTxs>{len(p.txs) if p.nb == 'auto' else p.nb}</NbOfTxs>")
        if p.ctrl is not None:
            value = _sum(tx.amount for tx in p.txs) if p.ctrl == "auto" else p.ctrl
            out.append(f"<CtrlSum>{value}</CtrlSum>")
        out.append("<PmtTpInf><SvcLvl><Cd>SEPA</Cd></SvcLvl></PmtTpInf>")
        if v09:
            out.append("<ReqdExctnDt><Dt>2026-01-16</Dt></ReqdExctnDt>")
        else:
            out.append("<ReqdExctnDt>2026-01-16</ReqdExctnDt>")
        out.append("<Dbtr><Nm>ACME GmbH</Nm></Dbtr>")
        out.append("<DbtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></DbtrAcct>")
        out.append(f"<DbtrAgt><FinInstnId><{bic}>COBADEFFXXX</{bic}></FinInstnId></DbtrAgt>")
        out.append("<ChrgBr>SLEV</ChrgBr>")
        out.append(p.extra)
        for tx in p.txs:
            out.append("<CdtTrfTxInf>")
            out.append(f"<PmtId><InstrId>I-{tx.e2e}</InstrId><EndToEndId>{tx.e2e}</EndToEndId></PmtId>")
            out.append(f'<Amt><InstdAmt Ccy="{tx.ccy}">{tx.amount}</InstdAmt></Amt>')
            out.append(f"<CdtrAgt><FinInstnId><{bic}>BNPAFRPPXXX</{bic}></FinInstnId></CdtrAgt>")
            contact = f"<CtctDtls><EmailAdr>{tx.email}</EmailAdr></CtctDtls>" if tx.email else ""
            out.append(f"<Cdtr><Nm>{tx.name}</Nm>{contact}</Cdtr>")
            if tx.iban is not None:
                out.append(f"<CdtrAcct><Id><IBAN>{tx.iban}</IBAN></Id></CdtrAcct>")
            elif tx.other_id is not None:
                out.append(f"<CdtrAcct><Id><Othr><Id>{tx.other_id}</Id></Othr></Id></CdtrAcct>")
            if tx.ustrd:
                out.append("<RmtInf>" + "".join(f"<Ustrd>{u}</Ustrd>" for u in tx.ustrd) + "</RmtInf>")
            out.append("</CdtTrfTxInf>")
        out.append("</PmtInf>")
    out.append("</CstmrCdtTrfInitn>")
    out.append("</Document>")
    return "\n".join(line for line in out if line) + "\n"


def tx_lines(document: str) -> list[int]:
    """Return the 1-based lines holding a <CdtTrfTxInf> start tag."""
    return [i for i, line in enumerate(document.split("\n"), start=1) if "<CdtTrfTxInf>" in line]
