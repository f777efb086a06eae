"""Batch files with Chinese column headers read like the English ones, in every encoding and in XLSX."""

import codecs
import io

import pytest

from payments.formats import FormatError, open_reader
from tests.formats.builders import HEADER, csv_text, excel_style_xlsx, xlsx_bytes

CHINESE = ["参考号", "金额", "币种", "支付方式", "收款人姓名", "收款账号", "邮箱", "手机号", "备注"]
OTHER_NAMES = ["业务参考号", "金额", "币种", "支付方式", "收款人", "收款人账号", "邮箱", "手机号", "用途"]
ROWS = [
    [
        "工资-2026-11-01",
        "8500.00",
        "CNY",
        "bank_transfer",
        "张伟",
        "6222020200112233445",
        "",
        "",
        "十一月工资",
    ],
    [
        "工资-2026-11-02",
        "9200.50",
        "人民币",
        "银行转账",
        "李娜",
        "6222020200112233446",
        "",
        "+8613800138000",
        "",
    ],
    ["报销-0003", "120.00", "CNY", "支付宝", "王芳", "wangfang@example.cn", "wangfang@example.cn", "", ""],
    ["报销-0004", "66.60", "CNY", "微信支付", "刘洋", "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "", "", ""],
]
EXPECTED = [
    {
        "reference": "工资-2026-11-01",
        "amount": "8500.00",
        "currency": "CNY",
        "method": "bank_transfer",
        "beneficiary_name": "张伟",
        "beneficiary_account": "6222020200112233445",
        "beneficiary_email": "",
        "beneficiary_phone": "",
        "description": "十一月工资",
    },
    {
        "reference": "工资-2026-11-02",
        "amount": "9200.50",
        "currency": "CNY",
        "method": "bank_transfer",
        "beneficiary_name": "李娜",
        "beneficiary_account": "6222020200112233446",
        "beneficiary_email": "",
        "beneficiary_phone": "+8613800138000",
        "description": "",
    },
]


def csv_file(header, encoding, delimiter=","):
    text = csv_text(ROWS, header=header, delimiter=delimiter)
    if encoding == "utf-16-le":
        return codecs.BOM_UTF16_LE + text.encode(encoding)
    return text.encode(encoding)


@pytest.mark.parametrize("header", [CHINESE, OTHER_NAMES], ids=["design-names", "other-names"])
@pytest.mark.parametrize(
    ("encoding", "delimiter", "detected"),
    [
        ("utf-8", ",", "utf-8"),
        ("utf-8-sig", ",", "utf-8-sig"),
        ("gb18030", ",", "gb18030"),
        ("gbk", ",", "gb18030"),
        ("utf-16-le", "\t", "utf-16-le"),
    ],
)
def test_csv_with_chinese_headers_reads_like_english(header, encoding, delimiter, detected):
    reader = open_reader(io.BytesIO(csv_file(header, encoding, delimiter)), "工资.csv")
    rows = list(reader)
    assert reader.encoding == detected
    assert reader.columns == tuple(HEADER) + ("beneficiary_email", "beneficiary_phone", "description")
    assert [row.values for row in rows[:2]] == EXPECTED
    assert [row.values["method"] for row in rows] == [
        "bank_transfer",
        "bank_transfer",
        "alipay",
        "wechat_pay",
    ]
    assert all(row.problems == () for row in rows)


@pytest.mark.parametrize("build", [xlsx_bytes, excel_style_xlsx], ids=["openpyxl", "excel-style"])
def test_xlsx_with_chinese_headers_reads_like_english(build):
    reader = open_reader(io.BytesIO(build(ROWS, header=CHINESE)), "工资.xlsx")
    rows = list(reader)
    assert [row.values for row in rows[:2]] == EXPECTED
    assert rows[3].values["method"] == "wechat_pay"


def test_english_and_chinese_names_of_one_column_are_a_duplicate():
    header = HEADER + ["参考号"]
    with pytest.raises(FormatError) as caught:
        list(open_reader(io.BytesIO(csv_text([], header=header).encode()), "x.csv"))
    assert caught.value.code == "duplicate_columns"
    assert caught.value.column == "reference"


def test_a_missing_chinese_column_is_named_by_its_code():
    header = [name for name in CHINESE if name != "金额"]
    with pytest.raises(FormatError) as caught:
        list(open_reader(io.BytesIO(csv_text([], header=header).encode("gb18030")), "x.csv"))
    assert caught.value.code == "missing_columns"
    assert caught.value.column == "amount"
