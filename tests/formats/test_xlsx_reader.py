import io
import zipfile

import openpyxl
import pytest

from payments.formats import FormatError, XlsxReader, open_reader
from payments.formats.xlsx_reader import column_index, excel_number_text, unescape
from tests.formats.builders import (
    BILLION_LAUGHS_DTD,
    HEADER,
    Num,
    excel_style_xlsx,
    inline_row,
    rewrite_zip,
    sheet_xml,
    xlsx_bytes,
)

SHEET = "xl/worksheets/sheet1.xml"


def read(data: bytes, **kwargs) -> tuple[XlsxReader, list]:
    reader = XlsxReader(io.BytesIO(data), **kwargs)
    rows = list(reader)
    reader.close()
    return reader, rows


def test_excel_style_workbook_with_shared_strings_and_numbers():
    data = excel_style_xlsx(
        [
            ["PAY-1", "1234.50", "CNY", "alipay", "张伟", "6222020200112233445"],
            ["PAY-2", Num("1234.5599999999999"), "USD", "card", "Ann", 4111111111111111],
            ["PAY-3", 100, "JPY", "card", "Bob", "0012"],
        ]
    )
    # The hand-made package is a real workbook: openpyxl reads the same cells.
    check = openpyxl.load_workbook(io.BytesIO(data), read_only=True).active
    assert list(check.iter_rows(min_row=3, max_row=3, values_only=True))[0][1] == 1234.56
    reader, rows = read(data)
    assert reader.format == "xlsx"
    assert reader.columns == tuple(HEADER)
    assert [row.line for row in rows] == [2, 3, 4]
    assert rows[0].values["amount"] == "1234.50"
    assert rows[0].values["beneficiary_name"] == "张伟"
    assert rows[1].values["amount"] == "1234.56"
    assert rows[1].values["beneficiary_account"] == "4111111111111111"
    assert rows[2].values["amount"] == "100"
    assert rows[2].values["beneficiary_account"] == "0012"
    assert rows[2].values["description"] == ""


def test_openpyxl_written_numbers_and_strings():
    data = xlsx_bytes(
        [["PAY-1", 1234.56, "USD", "card", "Ann", 4111111111111111], ["PAY-2", 0.1, "EUR", "card", "B", 7]]
    )
    _, rows = read(data)
    assert [row.values["amount"] for row in rows] == ["1234.56", "0.1"]
    assert rows[0].values["beneficiary_account"] == "4111111111111111"


def test_write_only_workbook_with_inline_strings():
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append([name.upper() for name in HEADER] + ["Description"])
    sheet.append(["R1", "10.00", "EUR", "card", " Zoë ", "X", "salary"])
    out = io.BytesIO()
    workbook.save(out)
    _, rows = read(out.getvalue())
    assert rows[0].values["beneficiary_name"] == "Zoë"
    assert rows[0].values["description"] == "salary"


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("1234.5599999999999", "1234.56"),  # Excel's 17-digit rendering of 1234.56
        ("0.10000000000000001", "0.1"),
        ("100", "100"),
        ("1E+16", "10000000000000000"),
        ("1.5E-5", "0.000015"),
        ("12.5", "12.5"),
        ("not a number", "not a number"),
    ],
)
def test_numeric_cells_become_the_shortest_round_trip_decimal(raw, text):
    assert excel_number_text(raw) == text


def test_cell_types_from_hand_written_sheet_xml():
    rows_xml = inline_row(1, HEADER) + (
        '<row r="2">'
        '<c r="A2" t="inlineStr"><is><r><t>R</t></r><r><t>1</t></r></is></c>'
        '<c r="B2"><v>1234.5599999999999</v></c>'
        '<c r="C2" t="str"><f>"EUR"</f><v>EUR</v></c>'
        '<c r="D2" t="inlineStr"><is><t>card</t></is></c>'
        '<c r="E2" t="inlineStr"><is><t>Line_x000D_Break &amp; _x005F_x0041_</t></is></c>'
        '<c r="F2" t="b"><v>1</v></c>'
        "</row>"
        '<row r="7"><c r="A7" t="e"><v>#N/A</v></c><c r="B7"><f>1/0</f></c></row>'
    )
    data = rewrite_zip(xlsx_bytes([]), {SHEET: sheet_xml(rows_xml)})
    _, rows = read(data)
    assert [row.line for row in rows] == [2, 7]
    values = rows[0].values
    assert values["reference"] == "R1"
    assert values["amount"] == "1234.56"
    assert values["currency"] == "EUR"
    assert values["beneficiary_name"] == "Line\rBreak & _x0041_"
    assert values["beneficiary_account"] == "TRUE"
    assert rows[1].values["reference"] == "#N/A"
    assert rows[1].values["amount"] == ""


def test_phonetic_runs_in_shared_strings_are_ignored():
    data = excel_style_xlsx([["R1", "1.00", "JPY", "card", "山田", "X"]])
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        strings = package.read("xl/sharedStrings.xml").decode()
    strings = strings.replace(
        '<t xml:space="preserve">山田</t>',
        "<r><t>山</t></r><r><t>田</t></r><rPh sb='0' eb='2'><t>ヤマダ</t></rPh>",
    )
    _, rows = read(rewrite_zip(data, {"xl/sharedStrings.xml": strings.encode()}))
    assert rows[0].values["beneficiary_name"] == "山田"


def test_blank_rows_are_skipped_and_row_numbers_kept():
    data = xlsx_bytes(
        [
            ["R1", "1", "EUR", "card", "A", "X"],
            [None, None, None, None, None, None],
            ["", " ", "", "", "", ""],
            ["R4", "1", "EUR", "card", "B", "Y"],
        ]
    )
    _, rows = read(data)
    assert [(row.line, row.values["reference"]) for row in rows] == [(2, "R1"), (5, "R4")]


def test_header_may_follow_blank_rows():
    rows_xml = inline_row(3, HEADER) + inline_row(4, ["R1", "1", "EUR", "card", "A", "X"])
    _, rows = read(rewrite_zip(xlsx_bytes([]), {SHEET: sheet_xml(rows_xml)}))
    assert rows[0].line == 4


def test_values_beyond_the_header_are_a_row_problem():
    data = xlsx_bytes([["R1", "1", "EUR", "card", "A", "X", None, "oops"]])
    _, rows = read(data)
    assert [problem.code for problem in rows[0].problems] == ["extra_values"]
    assert "column H" in rows[0].problems[0].message


def test_missing_and_unknown_columns_reject_the_workbook():
    with pytest.raises(FormatError) as error:
        read(xlsx_bytes([], header=["reference", "amount"]))
    assert error.value.code == "missing_columns"
    with pytest.raises(FormatError) as error:
        read(xlsx_bytes([], header=[*HEADER, "bic"]))
    assert error.value.code == "unknown_columns"


def test_empty_sheet_is_empty_file():
    data = rewrite_zip(xlsx_bytes([]), {SHEET: sheet_xml("")})
    with pytest.raises(FormatError) as error:
        read(data)
    assert error.value.code == "empty_file"


def test_only_the_first_sheet_is_read():
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.append(HEADER)
    first.append(["R1", "1", "EUR", "card", "A", "X"])
    other = workbook.create_sheet("Notes")
    other.append(["anything", "goes"])
    out = io.BytesIO()
    workbook.save(out)
    _, rows = read(out.getvalue())
    assert [row.values["reference"] for row in rows] == ["R1"]


def test_zip_bomb_member_with_extreme_compression_ratio_is_rejected():
    bomb = b"0" * (20 * 1024 * 1024)
    data = rewrite_zip(xlsx_bytes([]), {"xl/media/padding.bin": bomb})
    assert len(data) < 200_000
    with pytest.raises(FormatError) as error:
        XlsxReader(io.BytesIO(data))
    assert error.value.code == "zip_bomb"


def test_declared_total_size_over_the_limit_is_rejected_before_reading():
    data = xlsx_bytes([["R1", "1", "EUR", "card", "A", "X"]])
    with pytest.raises(FormatError) as error:
        XlsxReader(io.BytesIO(data), max_total_uncompressed=1000)
    assert error.value.code == "zip_bomb"


def test_billion_laughs_in_the_sheet_is_refused():
    body = sheet_xml(inline_row(1, HEADER) + inline_row(2, ["&lol9;", "1", "EUR", "card", "A", "X"]))
    bomb = BILLION_LAUGHS_DTD.encode() + body.split(b"\n", 1)[1]
    with pytest.raises(FormatError) as error:
        read(rewrite_zip(xlsx_bytes([]), {SHEET: bomb}))
    assert error.value.code == "dtd_forbidden"


def test_external_entity_in_shared_strings_is_refused():
    data = excel_style_xlsx([["R1", "1", "EUR", "card", "A", "X"]])
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        "<si><t>&xxe;</t></si></sst>"
    )
    with pytest.raises(FormatError) as error:
        read(rewrite_zip(data, {"xl/sharedStrings.xml": xxe.encode()}))
    assert error.value.code == "dtd_forbidden"


def test_dtd_in_workbook_part_is_refused():
    data = xlsx_bytes([])
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        workbook = package.read("xl/workbook.xml").decode()
    workbook = workbook.replace(
        "<workbook", '<!DOCTYPE workbook SYSTEM "http://evil.example/x.dtd"><workbook', 1
    )
    with pytest.raises(FormatError) as error:
        read(rewrite_zip(data, {"xl/workbook.xml": workbook.encode()}))
    assert error.value.code == "dtd_forbidden"


def test_bzip2_members_are_not_decompressed():
    data = rewrite_zip(xlsx_bytes([]), compression=zipfile.ZIP_BZIP2)
    with pytest.raises(FormatError) as error:
        XlsxReader(io.BytesIO(data))
    assert error.value.code == "invalid_xlsx"


def test_corrupt_package_is_invalid_xlsx():
    with pytest.raises(FormatError) as error:
        XlsxReader(io.BytesIO(b"PK\x03\x04 definitely not a zip"))
    assert error.value.code == "invalid_xlsx"


def test_malformed_sheet_xml_is_an_xml_error_with_line():
    broken = b'<?xml version="1.0"?>\n<worksheet>\n<sheetData>\n<row r="1"></sheetData>'
    with pytest.raises(FormatError) as error:
        read(rewrite_zip(xlsx_bytes([]), {SHEET: broken}))
    assert error.value.code == "xml_error"
    assert error.value.line == 4


def test_open_reader_detects_xlsx_and_spools_non_seekable_streams():
    data = xlsx_bytes([["R1", "1", "EUR", "card", "A", "X"]])

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer) -> int:
            chunk = self._inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    with open_reader(Pipe(), "upload.bin") as reader:
        assert reader.format == "xlsx"
        assert [row.values["reference"] for row in reader] == ["R1"]


def test_helpers():
    assert column_index("A1") == 1
    assert column_index("AB12") == 28
    assert column_index("xfd1") == 16384
    assert unescape("a_x005F_x000D_b") == "a_x000D_b"
    assert unescape("_xD800_") == "\ufffd"


def test_openpyxl_would_parse_with_defusedxml():
    # Anything in the project that reads workbooks with openpyxl gets
    # defusedxml's protection because defusedxml is installed.
    assert openpyxl.DEFUSEDXML is True
