"""Downloadable batch-file templates: a header row and two example rows, in English or Chinese.

A Chinese template uses the Chinese column names the readers accept (``base.HEADER_ALIASES``)
and Chinese method and currency names (``base.METHOD_ALIASES``), so that a file filled in from
it reads exactly like an English one.
"""

from __future__ import annotations

import csv
import io

import openpyxl

from .base import ALL_COLUMNS

TEMPLATE_LANGUAGES = ("en", "zh-hans")
_HEADERS = {
    "en": ALL_COLUMNS,
    "zh-hans": ("参考号", "金额", "币种", "支付方式", "收款人姓名", "收款账号", "邮箱", "手机号", "备注"),
}
_ROWS = {
    "en": (
        (
            "PAYROLL-2026-11-001",
            "2500.00",
            "EUR",
            "bank_transfer",
            "Ada Lovelace",
            "DE89370400440532013000",
            "ada@example.com",
            "",
            "November salary",
        ),
        (
            "SUPPLIER-0042",
            "1234.50",
            "CNY",
            "alipay",
            "Zhang Wei",
            "zhangwei@example.cn",
            "",
            "+8613800138000",
            "Invoice 42",
        ),
    ),
    "zh-hans": (
        (
            "工资-2026-11-001",
            "8500.00",
            "人民币",
            "银行转账",
            "张伟",
            "6222020200112233445",
            "zhangwei@example.cn",
            "",
            "十一月工资",
        ),
        (
            "供应商-0042",
            "1234.50",
            "CNY",
            "支付宝",
            "李娜",
            "lina@example.cn",
            "",
            "+8613800138000",
            "发票 42",
        ),
    ),
}


def template_csv(language: str) -> bytes:
    """Return the CSV template in UTF-8 with a BOM (so Excel opens Chinese text right)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_HEADERS[language])
    writer.writerows(_ROWS[language])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def template_xlsx(language: str) -> bytes:
    """Return the XLSX template: one sheet, every cell text (so references keep leading zeros)."""
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Payments" if language == "en" else "付款")
    sheet.append(list(_HEADERS[language]))
    for row in _ROWS[language]:
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
