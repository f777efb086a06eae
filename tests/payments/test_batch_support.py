"""Builders of real batch files and helpers shared by the test_batch_* modules (no tests here)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence
from decimal import Decimal

import openpyxl
import pytest

from payments.models import PaymentBatch
from payments.services.batches.lifecycle import batch_upload
from payments.services.batches.upload import store_bytes

HEADER = ("reference", "amount", "currency", "method", "beneficiary_name", "beneficiary_account")


ACCOUNT = "GB29NWBK60161331926819"


def rows(
    n: int, *, prefix: str = "PAY", amount: str = "10.00", currency: str = "USD", account: str = ACCOUNT
):
    """`n` valid rows: PAY-00001, 10.00 USD, bank_transfer."""
    return [
        (f"{prefix}-{i:05d}", amount, currency, "bank_transfer", f"Employee {i}", account)
        for i in range(1, n + 1)
    ]


def csv_bytes(
    data: Iterable[Sequence[str]],
    *,
    header: Sequence[str] = HEADER,
    encoding: str = "utf-8",
    delimiter: str = ",",
) -> bytes:
    lines = [delimiter.join(header)] + [delimiter.join(r) for r in data]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def xlsx_bytes(data: Iterable[Sequence[object]], *, header: Sequence[str] = HEADER) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(header))
    for row in data:
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def zip_bomb_xlsx() -> bytes:
    """A workbook whose sheet inflates a thousandfold (20 MB of blanks in a few KB)."""
    base = xlsx_bytes(rows(1))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</sheetData>", b"</sheetData>" + b" " * (20 * 1024 * 1024))
            dst.writestr(info.filename, data)
    return out.getvalue()


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE Document [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n' for i in range(1, 10)
    )
    + "]>\n"
)


def pain001(
    txs: Sequence[tuple[str, str, str, str, str]],
    *,
    msg_id: str = "MSG-0001",
    version: str = "pain.001.001.03",
    ctrl_sum: str | None = None,
    nb_of_txs: str | None = None,
    prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n',
    pmt_inf_id: str = "PMT-1",
) -> bytes:
    """A pain.001 with one PmtInf; txs are (end_to_end_id, amount, currency, name, iban)."""
    total = str(sum((Decimal(t[1]) for t in txs), Decimal(0)))
    ctrl = ctrl_sum if ctrl_sum is not None else total
    nb = nb_of_txs if nb_of_txs is not None else str(len(txs))
    v09 = version.endswith(".09")
    bic = "BICFI" if v09 else "BIC"
    date = "<Dt>2026-01-16</Dt>" if v09 else "2026-01-16"
    out = [
        prolog.rstrip("\n"),
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{version}">',
        "<CstmrCdtTrfInitn>",
        f"<GrpHdr><MsgId>{msg_id}</MsgId><CreDtTm>2026-01-15T10:00:00</CreDtTm>"
        f"<NbOfTxs>{nb}</NbOfTxs><CtrlSum>{ctrl}</CtrlSum><InitgPty><Nm>ACME</Nm></InitgPty></GrpHdr>",
        f"<PmtInf><PmtInfId>{pmt_inf_id}</PmtInfId><PmtMtd>TRF</PmtMtd><NbOfTxs>{len(txs)}</NbOfTxs>"
        f"<CtrlSum>{total}</CtrlSum><ReqdExctnDt>{date}</ReqdExctnDt><Dbtr><Nm>ACME</Nm></Dbtr>"
        "<DbtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></DbtrAcct>"
        f"<DbtrAgt><FinInstnId><{bic}>COBADEFFXXX</{bic}></FinInstnId></DbtrAgt>",
    ]
    for e2e, amount, ccy, name, iban in txs:
        out.append(
            f"<CdtTrfTxInf><PmtId><EndToEndId>{e2e}</EndToEndId></PmtId>"
            f'<Amt><InstdAmt Ccy="{ccy}">{amount}</InstdAmt></Amt>'
            f"<Cdtr><Nm>{name}</Nm></Cdtr><CdtrAcct><Id><IBAN>{iban}</IBAN></Id></CdtrAcct></CdtTrfTxInf>"
        )
    out += ["</PmtInf>", "</CstmrCdtTrfInitn>", "</Document>"]
    return ("\n".join(out) + "\n").encode("utf-8")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def upload(
    merchant, data: bytes, *, user=None, api_key=None, name: str = "payments.csv", capture=None
) -> PaymentBatch:
    """Upload `data` through the service and run its validation (the on-commit task) inline."""
    stored = store_bytes(data, name)
    if capture is None:
        batch = batch_upload(merchant=merchant, upload=stored, user=user, api_key=api_key, name=name)
    else:
        with capture(execute=True):
            batch = batch_upload(merchant=merchant, upload=stored, user=user, api_key=api_key, name=name)
    batch.refresh_from_db()
    return batch
