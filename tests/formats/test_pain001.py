import io
from decimal import Decimal

import pytest

from payments.formats import FormatError, Pain001Reader, open_reader
from tests.formats.builders import BILLION_LAUGHS_DTD, PmtInf, Tx, pain001, tx_lines


def two_blocks() -> list[PmtInf]:
    return [
        PmtInf(
            "PMT-A",
            [
                Tx("E2E-1", "100.50", ustrd=["Invoice 17", "March"], email="jane@example.com"),
                Tx("E2E-2", "0.10", name="Zoë &amp; Co", iban=None, other_id="ACCT-77"),
            ],
        ),
        PmtInf("PMT-B", [Tx("E2E-3", "0.20", ccy="USD", name="王芳")]),
    ]


def read(document: str | bytes, **kwargs) -> tuple[Pain001Reader, list]:
    data = document.encode() if isinstance(document, str) else document
    reader = Pain001Reader(io.BytesIO(data), **kwargs)
    return reader, list(reader)


@pytest.mark.parametrize("version", ["pain.001.001.03", "pain.001.001.09"])
def test_maps_transactions_and_exposes_group_header(version):
    document = pain001(two_blocks(), version=version)
    reader, rows = read(document)
    assert reader.format == "pain.001"
    assert reader.version == version
    assert reader.msg_id == "MSG-0001"
    assert reader.nb_of_txs == 3
    assert reader.ctrl_sum == Decimal("100.80")
    assert [row.values["reference"] for row in rows] == ["E2E-1", "E2E-2", "E2E-3"]
    first = rows[0].values
    assert first == {
        "reference": "E2E-1",
        "amount": "100.50",
        "currency": "EUR",
        "method": "bank_transfer",
        "beneficiary_name": "Jane Doe",
        "beneficiary_account": "FR1420041010050500013M02606",
        "beneficiary_email": "jane@example.com",
        "beneficiary_phone": "",
        "description": "Invoice 17 March",
    }
    assert rows[1].values["beneficiary_name"] == "Zoë & Co"
    assert rows[1].values["beneficiary_account"] == "ACCT-77"
    assert rows[2].values["currency"] == "USD"
    assert rows[2].values["beneficiary_name"] == "王芳"
    assert [row.pmt_inf_id for row in rows] == ["PMT-A", "PMT-A", "PMT-B"]
    assert [row.line for row in rows] == tx_lines(document)


def test_group_header_is_known_before_iteration():
    reader = Pain001Reader(io.BytesIO(pain001(two_blocks()).encode()), chunk_size=64)
    assert (reader.msg_id, reader.nb_of_txs) == ("MSG-0001", 3)
    assert len(list(reader)) == 3


def test_small_chunks_give_the_same_rows_and_lines():
    document = pain001(two_blocks())
    _, big = read(document)
    _, small = read(document, chunk_size=7)
    assert big == small


def test_control_sum_is_exact_decimal():
    # 0.1 + 0.2 is not 0.3 in binary floating point; it must be here.
    blocks = [PmtInf("P", [Tx("A", "0.1"), Tx("B", "0.2")], ctrl="0.30")]
    _, rows = read(pain001(blocks, ctrl="0.3"))
    assert len(rows) == 2


def test_wrong_group_control_sum_rejects_after_the_last_row():
    document = pain001(two_blocks(), ctrl="100.81")
    reader = Pain001Reader(io.BytesIO(document.encode()))
    seen = []
    with pytest.raises(FormatError) as error:
        for row in reader:
            seen.append(row)
    assert error.value.code == "control_sum_mismatch"
    assert "100.81" in error.value.message
    assert "100.80" in error.value.message
    assert len(seen) == 3


def test_wrong_payment_info_control_sum_rejects():
    blocks = two_blocks()
    blocks[1].ctrl = "0.21"
    with pytest.raises(FormatError) as error:
        read(pain001(blocks))
    assert error.value.code == "control_sum_mismatch"
    assert "PMT-B" in error.value.message


def test_group_count_lower_than_transactions_rejects_as_soon_as_exceeded():
    document = pain001(two_blocks(), nb="2")
    with pytest.raises(FormatError) as error:
        read(document)
    assert error.value.code == "count_mismatch"
    assert error.value.line == tx_lines(document)[2]


def test_group_count_higher_than_transactions_rejects_at_the_end():
    with pytest.raises(FormatError) as error:
        read(pain001(two_blocks(), nb="4"))
    assert error.value.code == "count_mismatch"


def test_wrong_payment_info_count_rejects():
    blocks = two_blocks()
    blocks[0].nb = "3"
    with pytest.raises(FormatError) as error:
        read(pain001(blocks))
    assert error.value.code == "count_mismatch"
    assert "PMT-A" in error.value.message


def test_optional_control_values_may_be_absent():
    blocks = two_blocks()
    for block in blocks:
        block.nb = block.ctrl = None
    reader, rows = read(pain001(blocks, ctrl=None))
    assert reader.ctrl_sum is None
    assert len(rows) == 3


def test_unparsable_amount_makes_control_sum_unverifiable():
    blocks = [PmtInf("P", [Tx("A", "12,50")], ctrl=None)]
    document = pain001(blocks, ctrl="12.50")
    with pytest.raises(FormatError) as error:
        read(document)
    assert error.value.code == "control_sum_mismatch"
    assert error.value.line == tx_lines(document)[0]


def test_unparsable_amount_without_control_sum_is_left_to_validation():
    blocks = [PmtInf("P", [Tx("A", "12,50")], ctrl=None)]
    _, rows = read(pain001(blocks, ctrl=None))
    assert rows[0].values["amount"] == "12,50"


@pytest.mark.parametrize(("field", "value"), [("nb", "three"), ("ctrl", "1e3")])
def test_malformed_group_control_values_are_rejected(field, value):
    with pytest.raises(FormatError) as error:
        read(pain001(two_blocks(), **{field: value}))
    assert error.value.code == "invalid_control_value"


def test_missing_group_count_is_rejected():
    with pytest.raises(FormatError) as error:
        read(pain001(two_blocks(), nb=None))
    assert error.value.code == "missing_element"


def test_billion_laughs_is_refused():
    document = pain001(two_blocks(), prolog=BILLION_LAUGHS_DTD).replace("Jane Doe", "&lol9;")
    with pytest.raises(FormatError) as error:
        read(document)
    assert error.value.code == "dtd_forbidden"
    assert error.value.line == 2


def test_external_entity_is_refused():
    prolog = '<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    document = pain001(two_blocks(), prolog=prolog).replace("Jane Doe", "&xxe;")
    with pytest.raises(FormatError) as error:
        read(document)
    assert error.value.code == "dtd_forbidden"


def test_undeclared_entity_is_an_xml_error():
    with pytest.raises(FormatError) as error:
        read(pain001(two_blocks()).replace("Jane Doe", "&nbsp;"))
    assert error.value.code == "xml_error"


def test_malformed_xml_reports_its_line():
    document = pain001(two_blocks())
    lines = document.split("\n")
    lines[20] = lines[20].replace("</", "<", 1)
    with pytest.raises(FormatError) as error:
        read("\n".join(lines))
    assert error.value.code == "xml_error"
    assert error.value.line is not None


def test_other_pain001_versions_are_unsupported():
    with pytest.raises(FormatError) as error:
        read(pain001(two_blocks(), version="pain.001.001.05"))
    assert error.value.code == "unsupported_version"


def test_other_iso_messages_are_unsupported():
    document = pain001(two_blocks()).replace("pain.001.001.03", "pain.008.001.02")
    with pytest.raises(FormatError) as error:
        read(document)
    assert error.value.code == "unsupported_format"


def test_latin1_declared_encoding_is_honoured():
    document = pain001(two_blocks(), prolog='<?xml version="1.0" encoding="ISO-8859-1"?>\n')
    document = document.replace("王芳", "Müller")
    _, rows = read(document.encode("latin-1"))
    assert rows[2].values["beneficiary_name"] == "Müller"


def test_equivalent_amount_is_flagged_but_counted():
    document = pain001([PmtInf("P", [Tx("A", "5.00")])]).replace(
        '<InstdAmt Ccy="EUR">5.00</InstdAmt>',
        '<EqvtAmt><Amt Ccy="EUR">5.00</Amt><CcyOfTrf>USD</CcyOfTrf></EqvtAmt>',
    )
    _, rows = read(document)
    assert rows[0].values["amount"] == "5.00"
    assert rows[0].values["currency"] == "EUR"
    assert [problem.code for problem in rows[0].problems] == ["unsupported_amount"]


def test_foreign_namespace_elements_do_not_map():
    foreign = '<x:Nm xmlns:x="urn:example:ext">not the name</x:Nm>'
    document = pain001(two_blocks()).replace("<Nm>王芳</Nm>", "<Nm>王芳</Nm>" + foreign)
    _, rows = read(document)
    assert rows[2].values["beneficiary_name"] == "王芳"


def test_open_reader_detects_pain001():
    with open_reader(io.BytesIO(pain001(two_blocks()).encode()), "batch.xml") as reader:
        assert reader.format == "pain.001"
        assert reader.msg_id == "MSG-0001"
        assert len(list(reader)) == 3
