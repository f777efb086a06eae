import csv
import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from defusedxml.ElementTree import fromstring as defused_fromstring

from payments.formats import (
    TxStatus,
    iter_pain002,
    iter_result_csv,
    write_error_csv,
    write_pain002,
    write_result_csv,
)
from payments.formats.writers import RESULT_COLUMNS, group_status, neutralize

NS10 = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1+1", "'+1+1"),
        ("-5.00", "'-5.00"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Jane = Doe", "Jane = Doe"),
        ("1234.50", "1234.50"),
        ("", ""),
    ],
)
def test_neutralize(value, expected):
    assert neutralize(value) == expected


def test_result_csv_neutralises_every_cell_and_reads_back():
    rows = [
        {
            "line": 2,
            "reference": "PAY-1",
            "amount": Decimal("1234.50"),
            "currency": "CNY",
            "method": "alipay",
            "beneficiary_name": "=cmd|'/C calc'!A0",
            "beneficiary_account": "+8613800000000",
            "status": "succeeded",
            "payment_id": "pay_abc",
            "failure_code": None,
            "failure_message": None,
        },
        {"line": 3, "reference": "@PAY-2", "amount": Decimal("1E+1"), "status": "failed"},
    ]
    out = io.StringIO(newline="")
    assert write_result_csv(rows, out) == 2
    parsed = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert parsed[0] == list(RESULT_COLUMNS)
    first = dict(zip(parsed[0], parsed[1], strict=True))
    assert first["beneficiary_name"] == "'=cmd|'/C calc'!A0"
    assert first["beneficiary_account"] == "'+8613800000000"
    assert first["amount"] == "1234.50"
    assert first["failure_code"] == ""
    second = dict(zip(parsed[0], parsed[2], strict=True))
    assert second["reference"] == "'@PAY-2"
    assert second["amount"] == "10"
    assert second["beneficiary_name"] == ""
    assert out.getvalue().endswith("\r\n")


def test_result_csv_accepts_objects_and_custom_columns():
    @dataclass
    class Result:
        reference: str
        status: str

    chunks = list(iter_result_csv((Result(f"R{i}", "created") for i in range(600)), ("reference", "status")))
    assert len(chunks) > 1  # streamed in pieces, not one string
    text = "".join(chunks)
    assert text.startswith("reference,status\r\nR0,created\r\n")
    assert text.count("\r\n") == 601


def test_result_csv_can_start_with_a_bom_for_excel():
    text = "".join(iter_result_csv([], bom=True))
    assert text.startswith("\ufeffline,reference")


def test_error_csv():
    @dataclass
    class RowError:
        line: int
        column: str
        code: str
        message: str

    errors = [
        RowError(4, "amount", "too_many_decimals", "JPY allows no decimals"),
        {"line": 9, "column": "beneficiary_name", "code": "required", "message": "-required-"},
    ]
    out = io.StringIO(newline="")
    assert write_error_csv(errors, out) == 2
    parsed = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert parsed == [
        ["line", "column", "code", "message"],
        ["4", "amount", "too_many_decimals", "JPY allows no decimals"],
        ["9", "beneficiary_name", "required", "'-required-"],
    ]


def _statuses() -> list[TxStatus]:
    return [
        TxStatus("E2E-1", "ACSC", pmt_inf_id="PMT-A", instr_id="I-1"),
        TxStatus("E2E-2", "RJCT", "insufficient_funds", "Balance <too> low & more", pmt_inf_id="PMT-A"),
        TxStatus("E2E-3", "ACSC", pmt_inf_id="PMT-B"),
    ]


def _parse(data: bytes) -> ET.Element:
    return defused_fromstring(data)


def test_pain002_partial_report_parses_back():
    out = io.BytesIO()
    write_pain002(
        out,
        _statuses(),
        msg_id="RPT-1",
        orgnl_msg_id="MSG-0001",
        orgnl_nb_of_txs=3,
        orgnl_ctrl_sum=Decimal("100.80"),
        created_at=datetime(2026, 1, 15, 10, 0, tzinfo=UTC),
    )
    root = _parse(out.getvalue())
    assert root.tag == "{urn:iso:std:iso:20022:tech:xsd:pain.002.001.10}Document"
    assert root.findtext("p:CstmrPmtStsRpt/p:GrpHdr/p:MsgId", namespaces=NS10) == "RPT-1"
    assert (
        root.findtext("p:CstmrPmtStsRpt/p:GrpHdr/p:CreDtTm", namespaces=NS10) == "2026-01-15T10:00:00+00:00"
    )
    group = root.find("p:CstmrPmtStsRpt/p:OrgnlGrpInfAndSts", NS10)
    assert group is not None
    assert group.findtext("p:OrgnlMsgId", namespaces=NS10) == "MSG-0001"
    assert group.findtext("p:OrgnlMsgNmId", namespaces=NS10) == "pain.001.001.03"
    assert group.findtext("p:OrgnlNbOfTxs", namespaces=NS10) == "3"
    assert group.findtext("p:OrgnlCtrlSum", namespaces=NS10) == "100.80"
    assert group.findtext("p:GrpSts", namespaces=NS10) == "PART"
    counts = {
        entry.findtext("p:DtldSts", namespaces=NS10): entry.findtext("p:DtldNbOfTxs", namespaces=NS10)
        for entry in group.findall("p:NbOfTxsPerSts", NS10)
    }
    assert counts == {"ACSC": "2", "RJCT": "1"}
    blocks = root.findall("p:CstmrPmtStsRpt/p:OrgnlPmtInfAndSts", NS10)
    assert [block.findtext("p:OrgnlPmtInfId", namespaces=NS10) for block in blocks] == ["PMT-A", "PMT-B"]
    txs = [tx for block in blocks for tx in block.findall("p:TxInfAndSts", NS10)]
    assert [tx.findtext("p:OrgnlEndToEndId", namespaces=NS10) for tx in txs] == ["E2E-1", "E2E-2", "E2E-3"]
    assert [tx.findtext("p:TxSts", namespaces=NS10) for tx in txs] == ["ACSC", "RJCT", "ACSC"]
    assert txs[0].findtext("p:OrgnlInstrId", namespaces=NS10) == "I-1"
    assert txs[0].find("p:StsRsnInf", NS10) is None
    reason = txs[1].find("p:StsRsnInf", NS10)
    assert reason is not None
    assert reason.findtext("p:Rsn/p:Prtry", namespaces=NS10) == "insufficient_funds"
    assert reason.findtext("p:AddtlInf", namespaces=NS10) == "Balance <too> low & more"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [(["ACSC", "ACSC"], "ACCP"), (["RJCT", "RJCT"], "RJCT"), (["ACSC", "RJCT"], "PART")],
)
def test_pain002_group_status(statuses, expected):
    txs = [TxStatus(f"E{i}", status) for i, status in enumerate(statuses)]
    root = _parse(b"".join(iter_pain002(txs, msg_id="R", orgnl_msg_id="M")))
    assert root.findtext("p:CstmrPmtStsRpt/p:OrgnlGrpInfAndSts/p:GrpSts", namespaces=NS10) == expected
    block = root.find("p:CstmrPmtStsRpt/p:OrgnlPmtInfAndSts", NS10)
    assert block is not None
    assert block.findtext("p:OrgnlPmtInfId", namespaces=NS10) == "NOTPROVIDED"


def test_group_status_helper():
    assert group_status(5, 0) == "ACCP"
    assert group_status(0, 5) == "RJCT"
    assert group_status(4, 1) == "PART"


def test_pain002_with_explicit_status_streams_before_consuming_transactions():
    consumed = []

    def transactions():
        for i in range(1000):
            consumed.append(i)
            yield TxStatus(f"E{i}", "ACSC")

    pieces = iter_pain002(transactions(), msg_id="R", orgnl_msg_id="M", status="ACCP")
    first = next(pieces)
    assert b"<GrpSts>ACCP</GrpSts>" in first
    assert consumed == []
    rest = b"".join(pieces)
    assert len(consumed) == 1000
    root = _parse(first + rest)
    assert len(root.findall(".//p:TxInfAndSts", NS10)) == 1000


def test_pain002_file_rejected_as_a_whole_has_a_group_reason_and_no_transactions():
    data = b"".join(
        iter_pain002(
            [],
            msg_id="R",
            orgnl_msg_id="M",
            status="RJCT",
            reason_code="control_sum_mismatch",
            reason_message="GrpHdr CtrlSum is 100.81 but the transactions add up to 100.80.",
            version="pain.002.001.03",
        )
    )
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"}
    root = _parse(data)
    group = root.find("p:CstmrPmtStsRpt/p:OrgnlGrpInfAndSts", ns)
    assert group is not None
    assert group.findtext("p:GrpSts", namespaces=ns) == "RJCT"
    assert group.findtext("p:StsRsnInf/p:Rsn/p:Prtry", namespaces=ns) == "control_sum_mismatch"
    assert root.find(".//p:OrgnlPmtInfAndSts", ns) is None


def test_pain002_truncates_reason_fields_and_drops_illegal_xml_characters():
    tx = TxStatus("E1", "RJCT", "x" * 50, "y\x00" * 200)
    root = _parse(b"".join(iter_pain002([tx], msg_id="R", orgnl_msg_id="M")))
    reason = root.find(".//p:StsRsnInf", NS10)
    assert reason is not None
    assert reason.findtext("p:Rsn/p:Prtry", namespaces=NS10) == "x" * 35
    assert reason.findtext("p:AddtlInf", namespaces=NS10) == "y" * 105


def test_pain002_rejects_invalid_status_codes():
    with pytest.raises(ValueError):
        b"".join(iter_pain002([TxStatus("E1", "done")], msg_id="R", orgnl_msg_id="M"))
    with pytest.raises(ValueError):
        b"".join(iter_pain002([], msg_id="R", orgnl_msg_id="M", version="pain.002.001.99"))
