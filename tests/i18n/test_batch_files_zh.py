"""Chinese batch files through the dashboard and the API; downloads in the reader's language."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from payments.formats import open_reader
from payments.models import PaymentBatch
from tests.api.conftest import Api
from tests.payments.test_batch_support import ACCOUNT, csv_bytes, media  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]
CHINESE_HEADER = ["参考号", "金额", "币种", "支付方式", "收款人姓名", "收款账号", "备注"]
ROWS = [
    ("工资-001", "8500.00", "美元", "银行转账", "张伟", ACCOUNT, "十一月工资"),
    ("工资-002", "9200.50", "USD", "bank_transfer", "李娜", ACCOUNT, ""),
    ("工资-003", "1.234", "USD", "银行转账", "王芳", ACCOUNT, ""),
]

RESULT_HEADER_ZH = (
    "\ufeff行号 参考号 金额 币种 支付方式 收款人姓名 收款账号 "  # the payment's columns
    "状态 付款ID 失败代码 失败原因"  # the outcome's
).split()


def client_for(user, language="zh-hans") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


@pytest.fixture
def chinese_batch(bob, django_capture_on_commit_callbacks):
    """bob uploads a GB18030 CSV with Chinese headers, method and currency names."""
    data = csv_bytes(ROWS, header=CHINESE_HEADER, encoding="gb18030")
    with django_capture_on_commit_callbacks(execute=True):
        upload = {"file": SimpleUploadedFile("工资.csv", data), "name": "十一月工资"}
        response = client_for(bob).post(reverse("dashboard:batch_new"), upload)
    assert response.status_code == 302, response.content.decode()
    return PaymentBatch.objects.latest("pk")


def test_a_gb18030_file_with_chinese_headers_is_read_like_an_english_one(chinese_batch):
    assert chinese_batch.status == "validated"
    assert (chinese_batch.valid_count, chinese_batch.error_count) == (2, 1)
    assert chinese_batch.encoding == "gb18030"
    payments = chinese_batch.payments.order_by("reference")
    assert [(p.reference, p.amount_minor, p.currency, p.method) for p in payments] == [
        ("工资-001", 850000, "USD", "bank_transfer"),
        ("工资-002", 920050, "USD", "bank_transfer"),
    ]
    assert payments[0].description == "十一月工资"
    error = chinese_batch.row_errors.get()
    assert (error.line, error.column, error.code) == (4, "amount", "too_many_decimals")


def test_dashboard_downloads_have_headers_in_the_readers_language(alice, chinese_batch):
    args = [chinese_batch.public_id]
    zh = client_for(alice)
    results = b"".join(zh.get(reverse("dashboard:batch_results_csv", args=args)).streaming_content).decode()
    errors = b"".join(zh.get(reverse("dashboard:batch_errors_csv", args=args)).streaming_content).decode()
    assert results.splitlines()[0].split(",") == RESULT_HEADER_ZH
    assert errors.splitlines()[0] == "\ufeff行号,列,错误代码,错误信息"
    # Stored in English with its parameters ("USD amounts allow at most 2 ..."): its code's sentence.
    assert errors.splitlines()[1] == "4,amount,too_many_decimals,金额的小数位数超过该币种允许的位数。"
    en = client_for(alice, "en")
    results = b"".join(en.get(reverse("dashboard:batch_results_csv", args=args)).streaming_content).decode()
    assert results.splitlines()[0].startswith("\ufeffline,reference,amount,currency,method,beneficiary_name")


def test_the_api_report_keeps_english_column_names_in_any_language(key_a, chinese_batch):
    api = Api(key_a)
    report = api.get(f"/api/v1/batches/{chinese_batch.public_id}/report", HTTP_ACCEPT_LANGUAGE="zh-Hans")
    text = b"".join(report.streaming_content).decode()
    assert text.splitlines()[0].startswith("\ufeffline,reference,amount,currency,method")


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_templates_in_both_languages_read_back_as_valid_rows(alice, language, fmt):
    response = client_for(alice).get(reverse("dashboard:batch_template", args=[language, fmt]))
    assert response.status_code == 200
    assert f"paydesk-batch-template-{language}.{fmt}" in response["Content-Disposition"]
    rows = list(open_reader(io.BytesIO(response.content), f"template.{fmt}"))
    assert len(rows) == 2
    assert {row.values["method"] for row in rows} <= {"bank_transfer", "alipay"}
    assert all(row.values["reference"] and row.values["amount"] for row in rows)
    assert all(row.problems == () for row in rows)


def test_the_upload_page_links_the_templates(alice):
    page = client_for(alice).get(reverse("dashboard:batch_new")).content.decode()
    for language in ("en", "zh-hans"):
        for fmt in ("csv", "xlsx"):
            assert reverse("dashboard:batch_template", args=[language, fmt]) in page
    assert client_for(alice).get("/batches/template/fr.csv").status_code == 404


def test_the_batch_page_shows_row_errors_in_the_readers_language(alice, chinese_batch):
    page = client_for(alice).get(reverse("dashboard:batch_detail", args=[chinese_batch.public_id]))
    assert "金额的小数位数超过该币种允许的位数。" in page.content.decode()
    english = client_for(alice, "en").get(reverse("dashboard:batch_detail", args=[chinese_batch.public_id]))
    stored = chinese_batch.row_errors.get().message
    assert stored.isascii() and escape(stored) in english.content.decode()
