import codecs
import io

import pytest

from payments.formats import CsvReader, FormatError, open_reader
from tests.formats.builders import HEADER, csv_text

ROWS = [
    ["PAY-1", "1234.50", "CNY", "alipay", "张伟", "6222020200112233445"],
    ["PAY-2", "99.00", "CNY", "wechat_pay", "李娜", "6222020200112233446"],
]


def read(data: bytes, **kwargs) -> tuple[CsvReader, list]:
    reader = CsvReader(io.BytesIO(data), **kwargs)
    return reader, list(reader)


def test_utf8_without_bom_reads_rows_with_physical_lines():
    reader, rows = read(csv_text(ROWS).encode("utf-8"))
    assert reader.encoding == "utf-8"
    assert reader.delimiter == ","
    assert [row.line for row in rows] == [2, 3]
    assert rows[0].values == {
        "reference": "PAY-1",
        "amount": "1234.50",
        "currency": "CNY",
        "method": "alipay",
        "beneficiary_name": "张伟",
        "beneficiary_account": "6222020200112233445",
        "beneficiary_email": "",
        "beneficiary_phone": "",
        "description": "",
    }
    assert rows[0].problems == ()


def test_utf8_with_bom_is_reported_as_utf8_sig():
    reader, rows = read(csv_text(ROWS).encode("utf-8-sig"))
    assert reader.encoding == "utf-8-sig"
    assert rows[0].values["reference"] == "PAY-1"
    assert reader.columns[0] == "reference"


def test_gb18030_file_with_chinese_names_is_detected():
    reader, rows = read(csv_text(ROWS).encode("gb18030"))
    assert reader.encoding == "gb18030"
    assert [row.values["beneficiary_name"] for row in rows] == ["张伟", "李娜"]


def test_gbk_file_is_read_as_gb18030():
    reader, rows = read(csv_text(ROWS).encode("gbk"))
    assert reader.encoding == "gb18030"
    assert rows[1].values["beneficiary_name"] == "李娜"


def test_excel_unicode_text_utf16le_bom_tab_delimited():
    data = codecs.BOM_UTF16_LE + csv_text(ROWS, delimiter="\t").encode("utf-16-le")
    reader, rows = read(data)
    assert reader.encoding == "utf-16-le"
    assert reader.delimiter == "\t"
    assert [row.values["beneficiary_name"] for row in rows] == ["张伟", "李娜"]
    assert [row.line for row in rows] == [2, 3]


def test_utf16be_with_bom():
    data = codecs.BOM_UTF16_BE + csv_text(ROWS, delimiter=";").encode("utf-16-be")
    reader, rows = read(data)
    assert reader.encoding == "utf-16-be"
    assert reader.delimiter == ";"
    assert rows[0].values["amount"] == "1234.50"


def test_utf16le_without_bom_is_recognised_by_its_nul_bytes():
    reader, rows = read(csv_text(ROWS).encode("utf-16-le"))
    assert reader.encoding == "utf-16-le"
    assert rows[1].values["reference"] == "PAY-2"


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiter_is_sniffed(delimiter):
    reader, rows = read(csv_text(ROWS, delimiter=delimiter).encode())
    assert reader.delimiter == delimiter
    assert rows[0].values["beneficiary_account"] == "6222020200112233445"


def test_semicolon_file_with_decimal_commas_keeps_the_comma_in_the_value():
    data = "reference;amount;currency;method;beneficiary_name;beneficiary_account\nR1;12,50;EUR;card;A, B;X\n"
    reader, rows = read(data.encode())
    assert reader.delimiter == ";"
    assert rows[0].values["amount"] == "12,50"
    assert rows[0].values["beneficiary_name"] == "A, B"


def test_header_is_case_insensitive_and_stripped_with_optional_columns():
    header = [" Reference", "AMOUNT ", "Currency", "method", "Beneficiary_Name", "beneficiary_account"]
    header += ["beneficiary_email", "Beneficiary_Phone", "DESCRIPTION"]
    row = ["R1", " 10.00 ", "USD", "card", " Ann ", "4111", "ann@example.com", "+15550100", "=cmd"]
    reader, rows = read(csv_text([row], header=header).encode())
    assert reader.columns == (
        "reference",
        "amount",
        "currency",
        "method",
        "beneficiary_name",
        "beneficiary_account",
        "beneficiary_email",
        "beneficiary_phone",
        "description",
    )
    values = rows[0].values
    assert values["amount"] == "10.00"
    assert values["beneficiary_name"] == "Ann"
    assert values["beneficiary_phone"] == "+15550100"
    assert values["description"] == "=cmd"


def test_missing_required_columns_are_named():
    header = ["reference", "amount", "method", "beneficiary_name"]
    with pytest.raises(FormatError) as error:
        read(csv_text([], header=header).encode())
    assert error.value.code == "missing_columns"
    assert error.value.column == "currency, beneficiary_account"
    assert "currency" in error.value.message
    assert error.value.line == 1


def test_unknown_column_rejects_the_file():
    with pytest.raises(FormatError) as error:
        read(csv_text([], header=[*HEADER, "iban"]).encode())
    assert error.value.code == "unknown_columns"
    assert error.value.column == "iban"


def test_duplicate_column_rejects_the_file():
    with pytest.raises(FormatError) as error:
        read(csv_text([], header=[*HEADER, "Amount"]).encode())
    assert error.value.code == "duplicate_columns"


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n  \n", codecs.BOM_UTF8])
def test_file_without_header_is_empty_file(data):
    with pytest.raises(FormatError) as error:
        read(data)
    assert error.value.code == "empty_file"


def test_latin1_file_is_rejected_with_the_failing_line_unless_its_encoding_is_named():
    text = csv_text([["R1", "1.00", "EUR", "card", "Ann", "X"], ["R2", "2.00", "EUR", "card", "José", "Y"]])
    with pytest.raises(FormatError) as error:
        read(text.encode("latin-1"))
    assert error.value.code == "encoding_error"
    assert error.value.line == 3


def test_bad_bytes_after_the_detection_window_fail_while_streaming_at_their_line():
    good = [[f"R{i}", "1.00", "EUR", "card", "Zoë", "X"] for i in range(5000)]
    data = csv_text(good).encode("utf-8") + b"R-bad,1.00,EUR,card,Jos\xe9,Y\r\n"
    assert len(data) > 100_000
    reader = CsvReader(io.BytesIO(data))
    seen = []
    with pytest.raises(FormatError) as error:
        for row in reader:
            seen.append(row.line)
    assert error.value.code == "encoding_error"
    assert error.value.line == 5002
    assert seen[-1] <= 5001


def test_utf8_chinese_file_with_one_stray_byte_is_not_taken_for_gb18030():
    # The damaged file happens to be valid GB18030 (as mojibake) as a whole.
    rows = [[f"R{i}", "1.00", "CNY", "alipay", "张伟", "X"] for i in range(20)]
    data = csv_text(rows).encode("utf-8").replace(b"R7,", b"R7\xb0A,")
    data.decode("gb18030")
    with pytest.raises(FormatError) as error:
        read(data)
    assert error.value.code == "encoding_error"
    assert error.value.line == 9


def test_chinese_after_a_long_ascii_prefix_switches_to_gb18030_exactly():
    ascii_rows = [[f"R{i}", "1.00", "CNY", "alipay", "Wang", "X"] for i in range(5000)]
    data = csv_text(ascii_rows + [["R-zh", "2.00", "CNY", "alipay", "王芳", "Y"]]).encode("gb18030")
    reader, rows = read(data)
    assert reader.encoding == "gb18030"
    assert rows[-1].values["beneficiary_name"] == "王芳"
    assert rows[-1].line == 5002


def test_truncated_utf16_is_an_encoding_error():
    data = codecs.BOM_UTF16_LE + csv_text(ROWS).encode("utf-16-le") + b"R"
    with pytest.raises(FormatError) as error:
        read(data)
    assert error.value.code == "encoding_error"
    assert error.value.line == 4


def test_blank_lines_are_skipped_and_lines_stay_physical():
    data = (
        "\r\n"
        "reference,amount,currency,method,beneficiary_name,beneficiary_account\r\n"
        "\r\n"
        'R1,1.00,EUR,card,"Multi\r\nLine Name",X\r\n'
        " , , ,,,\r\n"
        "R2,2.00,EUR,card,Bob,Y\r\n"
    )
    _, rows = read(data.encode())
    assert [(row.line, row.values["reference"]) for row in rows] == [(4, "R1"), (7, "R2")]
    assert rows[0].values["beneficiary_name"] == "Multi\r\nLine Name"


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64 * 1024])
def test_chunk_boundaries_do_not_change_rows_or_lines(newline, chunk_size):
    text = newline.join(
        [
            ",".join(HEADER),
            "R1,1.00,CNY,alipay,张伟,X",
            "",
            'R2,2.00,CNY,alipay,"李' + newline + '娜",Y',
            "R3,3.00,CNY,alipay,王芳,Z",
        ]
    )
    for encoding in ("utf-8", "gb18030"):
        data = text.encode(encoding)
        # A tiny first read: the stream hands out chunk_size bytes at a time.
        reader = CsvReader(_Trickle(data, chunk_size), chunk_size=chunk_size)
        rows = list(reader)
        assert [row.line for row in rows] == [2, 4, 6]
        assert rows[1].values["beneficiary_name"] == "李" + newline + "娜"
        assert rows[2].values["beneficiary_name"] == "王芳"
        assert reader.encoding == encoding


class _Trickle(io.RawIOBase):
    def __init__(self, data: bytes, size: int) -> None:
        self._data = data
        self._size = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        piece, self._data = self._data[: self._size], self._data[self._size :]
        return piece


def test_values_outside_the_header_are_a_row_problem_but_trailing_empties_are_not():
    data = (
        "reference,amount,currency,method,beneficiary_name,beneficiary_account,,\n"
        "R1,1.00,EUR,card,Ann,X,,\n"
        "R2,1.00,EUR,card,Ann,X,,surprise\n"
        "R3,1.00,EUR,card\n"
    )
    _, rows = read(data.encode())
    assert rows[0].problems == ()
    assert [problem.code for problem in rows[1].problems] == ["extra_values"]
    assert "8" in rows[1].problems[0].message
    assert rows[2].values["beneficiary_name"] == ""
    assert rows[2].problems == ()


def test_an_overlong_line_is_rejected():
    data = csv_text([["R1", "1", "EUR", "card", "A" * 5000, "X"]]).encode()
    with pytest.raises(FormatError) as error:
        list(CsvReader(io.BytesIO(data), max_line_chars=1000, chunk_size=512))
    assert error.value.code == "line_too_long"
    assert error.value.line == 2


def test_an_unterminated_quote_is_bounded_by_the_csv_field_limit():
    data = csv_text([]).encode() + b'R1,1,EUR,card,"never closed,' + b"x" * 200_000 + b"\n"
    with pytest.raises(FormatError) as error:
        list(CsvReader(io.BytesIO(data)))
    assert error.value.code == "malformed_csv"


def test_reader_is_single_pass():
    reader = CsvReader(io.BytesIO(csv_text(ROWS).encode()))
    list(reader)
    with pytest.raises(RuntimeError):
        iter(reader)


def test_open_reader_returns_csv_reader_for_text():
    with open_reader(io.BytesIO(csv_text(ROWS).encode("gb18030")), "payroll.csv") as reader:
        assert reader.format == "csv"
        assert reader.encoding == "gb18030"
        assert len(list(reader)) == 2


# Encodings: GB18030 only with evidence, or named by the uploader ---------------------------------

WESTERN = [
    ["R1", "1.00", "EUR", "bank_transfer", "Müller GmbH", "GB29NWBK60161331926819"],
    ["R2", "2.00", "EUR", "bank_transfer", "Señora Núñez", "GB29NWBK60161331926819"],
]


def test_a_windows_1252_file_is_not_taken_for_gb18030():
    data = csv_text(WESTERN).encode("cp1252")
    data.decode("gb18030")  # it decodes as GB18030, to mojibake: that is no evidence
    with pytest.raises(FormatError) as error:
        read(data)
    assert error.value.code == "encoding_error"
    assert error.value.line == 2
    assert "naming its encoding" in error.value.message


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_a_named_western_encoding_reads_the_names_exactly(encoding):
    reader, rows = read(csv_text(WESTERN).encode("cp1252"), encoding=encoding)
    assert reader.encoding == encoding
    assert [row.values["beneficiary_name"] for row in rows] == ["Müller GmbH", "Señora Núñez"]


@pytest.mark.parametrize(
    ("encoding", "codec"),
    [
        ("utf-8", "utf-8"),
        ("utf-8", "utf-8-sig"),
        ("gb18030", "gb18030"),
        ("utf-16", "utf-16"),
        ("utf-16", "utf-16-le"),
    ],
)
def test_every_named_encoding_reads_chinese_and_accents(encoding, codec):
    rows_in = [
        ["R1", "1.00", "CNY", "alipay", "张伟", "X1234"],
        ["R2", "1.00", "EUR", "card", "Zoë", "X1234"],
    ]
    reader, rows = read(csv_text(rows_in).encode(codec), encoding=encoding)
    assert reader.encoding == encoding
    assert [row.values["beneficiary_name"] for row in rows] == ["张伟", "Zoë"]


def test_a_named_encoding_that_is_wrong_fails_at_its_line():
    data = csv_text(ROWS).encode("gb18030")
    with pytest.raises(FormatError) as error:
        read(data, encoding="utf-8")
    assert error.value.code == "encoding_error"
    assert error.value.line == 2


def test_a_wrongly_named_gb18030_leaves_private_use_characters_for_the_row_check():
    # Named by the uploader, GB18030 is used as told; the names then carry private-use code points,
    # which the payment specification refuses row by row (payments.validation, invalid_characters).
    reader, rows = read(csv_text(WESTERN).encode("cp1252"), encoding="gb18030")
    assert reader.encoding == "gb18030"
    assert any("\ue000" <= c <= "\uf8ff" for c in rows[1].values["beneficiary_name"])


def test_gbk_outside_gb2312_is_still_chinese_when_most_of_the_text_is():
    names = [
        "张伟",
        "李娜",
        "王芳",
        "刘洋",
        "陈静",
        "杨磊",
        "赵敏",
        "黄勇",
        "周杰",
        "吴昊",
        "堃",
    ]  # 堃: GBK only
    rows_in = [[f"R{i}", "1.00", "CNY", "alipay", name, "X1234"] for i, name in enumerate(names)]
    reader, rows = read(csv_text(rows_in).encode("gb18030"))
    assert reader.encoding == "gb18030"
    assert rows[-1].values["beneficiary_name"] == "堃"
