import codecs
import io

import pytest

from payments.formats import FormatError, detect_format, open_reader
from tests.formats.builders import PmtInf, Tx, csv_text, pain001, xlsx_bytes


def test_zip_content_is_xlsx_whatever_the_name():
    assert detect_format("payments.csv", xlsx_bytes([])[:4096]) == "xlsx"


def test_pain001_xml_is_detected_by_namespace():
    head = pain001([PmtInf("P", [Tx("E", "1.00")])]).encode()[:4096]
    assert detect_format("upload.txt", head) == "pain.001"


def test_pain001_in_utf16_with_bom_is_detected():
    head = pain001([PmtInf("P", [Tx("E", "1.00")])], prolog='<?xml version="1.0" encoding="UTF-16"?>\n')
    assert detect_format("x.xml", codecs.BOM_UTF16_LE + head.encode("utf-16-le")) == "pain.001"


def test_pain001_after_bom_and_whitespace_is_detected():
    head = codecs.BOM_UTF8 + b"\n  " + pain001([PmtInf("P", [Tx("E", "1.00")])]).encode()
    assert detect_format("x.xml", head) == "pain.001"


@pytest.mark.parametrize(
    "head",
    [
        csv_text([["R1", "1.00", "EUR", "card", "A", "X"]]).encode(),
        codecs.BOM_UTF8 + b"reference;amount",
        b"",
    ],
)
def test_everything_else_is_csv(head):
    assert detect_format("whatever.xlsx", head) == "csv"


def test_other_xml_is_unsupported():
    head = b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.008.001.02">'
    with pytest.raises(FormatError) as error:
        detect_format("direct-debit.xml", head)
    assert error.value.code == "unsupported_format"
    assert "direct-debit.xml" in error.value.message


def test_legacy_xls_is_unsupported():
    with pytest.raises(FormatError) as error:
        detect_format("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    assert error.value.code == "unsupported_format"


def test_format_error_carries_its_details():
    error = FormatError("encoding_error", "bad byte", line=7, column="amount")
    assert (error.code, error.message, error.line, error.column) == (
        "encoding_error",
        "bad byte",
        7,
        "amount",
    )
    assert str(error) == "encoding_error: bad byte (line 7)"


class _Pipe(io.RawIOBase):
    """A non-seekable stream, like a socket or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        chunk = self._inner.read(min(len(buffer), 1000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_open_reader_streams_non_seekable_csv_and_pain001():
    rows = [[f"R{i}", "1.00", "EUR", "card", "Zoë", "X"] for i in range(3000)]
    with open_reader(_Pipe(csv_text(rows).encode()), "a.csv") as reader:
        assert [row.line for row in reader][-1] == 3001
    document = pain001([PmtInf("P", [Tx(f"E{i}", "1.00") for i in range(500)])])
    with open_reader(_Pipe(document.encode()), "a.xml") as reader:
        assert reader.msg_id == "MSG-0001"
        assert len(list(reader)) == 500


def test_open_reader_reads_from_the_current_position_of_a_seekable_file():
    data = b"junk" + csv_text([["R1", "1.00", "EUR", "card", "A", "X"]]).encode()
    stream = io.BytesIO(data)
    stream.seek(4)
    with open_reader(stream, "a.csv") as reader:
        assert [row.values["reference"] for row in reader] == ["R1"]
