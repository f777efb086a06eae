"""WeChat Pay merchant transfers (v3 transfer bills), checked with the wechatpayv3 SDK against a fake API."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.utils import rsa_decrypt

from merchants.gateway_forms import GatewayAccountForm
from merchants.models import GatewayAccount
from payments.gateways.wechat_transfer import attempt_key_of, out_bill_no
from payments.models import BatchRowError, GatewayCallback, Payment, PaymentBatch
from payments.services.batches.lifecycle import batch_approve
from payments.services.reconcile import payment_reconcile
from tests.gateways.conftest import (
    WECHAT_APIV3_KEY,
    WECHAT_APPID,
    WECHAT_MCHID,
    WECHAT_MERCHANT_SERIAL,
    WECHAT_PLATFORM_SERIAL,
)
from tests.gateways.vendors import wechat_encrypt, wechat_signed_headers
from tests.payments.test_batch_support import csv_bytes, media, upload  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]
SCENE_REPORT = [
    {"info_type": "岗位类型", "info_content": "外卖骑手"},
    {"info_type": "报酬说明", "info_content": "3月薪资"},
]


@pytest.fixture(autouse=True)
def transfer_route(settings):
    settings.PAYDESK_PAYOUT_ROUTES = {**settings.PAYDESK_PAYOUT_ROUTES, "wechat_pay": "wechat_transfer"}


@pytest.fixture
def transfer_account(merchant_a, keys):
    return GatewayAccount.objects.create(
        merchant=merchant_a,
        gateway="wechat_transfer",
        app_id=WECHAT_APPID,
        mch_id=WECHAT_MCHID,
        key_serial=WECHAT_MERCHANT_SERIAL,
        private_key=keys["wechat_merchant"].private_pem,
        secret=WECHAT_APIV3_KEY,
        public_keys={WECHAT_PLATFORM_SERIAL: keys["wechat_platform"].public_pem},
        transfer_scene_id="1005",
        transfer_scene_report_infos=SCENE_REPORT,
    )


def sdk_body(keys, **fields) -> dict:
    """The body wechatpayv3's own mch_transfer_bills sends for the same transfer (its request captured)."""
    sdk = WeChatPay(
        wechatpay_type=WeChatPayType.MINIPROG,
        mchid=WECHAT_MCHID,
        private_key=keys["wechat_merchant"].private_pem,
        cert_serial_no=WECHAT_MERCHANT_SERIAL,
        apiv3_key=WECHAT_APIV3_KEY,
        appid=WECHAT_APPID,
        notify_url="https://paydesk.example/callbacks/wechat_transfer/",
        public_key=keys["wechat_platform"].public_pem,
        public_key_id=WECHAT_PLATFORM_SERIAL,
    )
    captured = {}

    def request(path, method=None, data=None, cipher_data=False, **_):
        captured.update(path=path, data=data, cipher_data=cipher_data)
        return 200, "{}"

    sdk._core.request = request
    sdk.mch_transfer_bills(**fields)
    return captured


def bill_answer(entry) -> tuple[int, dict]:
    body = entry["json"]
    if body["transfer_amount"] == 999:
        return 403, {"code": "NOT_ENOUGH", "message": "资金不足"}
    state = "WAIT_USER_CONFIRM" if body["transfer_amount"] == 30000 else "SUCCESS"
    answer = {
        "out_bill_no": body["out_bill_no"],
        "transfer_bill_no": "1330000071100999991182020050700019480" + body["out_bill_no"][-3:],
        "create_time": "2026-01-05T10:00:00+08:00",
        "state": state,
    }
    if state == "WAIT_USER_CONFIRM":
        answer["package_info"] = "affffddafdfafddffda=="
    return 200, answer


def notify(keys, data: dict, event_id: str | None = None, signer=None):
    event = {
        "id": event_id or "EV-" + secrets.token_hex(8),
        "create_time": "2026-01-05T10:05:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "MCHTRANSFER.BILL.FINISHED",
        "summary": "商家转账单据终态通知",
        "resource": wechat_encrypt(WECHAT_APIV3_KEY, data, "mch_payment"),
    }
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    headers = wechat_signed_headers(signer or keys["wechat_platform"], WECHAT_PLATFORM_SERIAL, body)
    extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
    return Client().post("/callbacks/wechat_transfer/", data=body, content_type="application/json", **extra)


def run_batch(merchant, alice, carol, rows, capture) -> PaymentBatch:
    batch = upload(merchant, csv_bytes(rows), user=alice, capture=capture)
    with capture(execute=True):
        batch_approve(batch=batch, user=carol)
    return batch


def test_bill_numbers_are_the_attempt_keys_in_letters_and_digits():
    key = "pay_AbCdEfGhIjKlMnOpQrStUvWx-12"
    assert out_bill_no(key) == "payAbCdEfGhIjKlMnOpQrStUvWx12"
    assert out_bill_no(key).isalnum() and len(out_bill_no(key)) <= 32
    assert attempt_key_of(out_bill_no(key)) == key


def test_a_batch_transfers_to_wechat_balances_with_the_real_name_and_waits_for_confirmation(
    merchant_a, alice, carol, transfer_account, fake_wechat, keys, django_capture_on_commit_callbacks
):
    fake_wechat.answers["transfer"] = bill_answer
    rows = [
        ("WT-1", "100.00", "CNY", "wechat_pay", "张三", "o-MYE42l80oelYMDE34nYD456Xoy"),
        ("WT-2", "300.00", "CNY", "wechat_pay", "李四", "o-ABC42l80oelYMDE34nYD456Xoy"),
        ("WT-3", "9.99", "CNY", "wechat_pay", "王五", "o-XYZ42l80oelYMDE34nYD456Xoy"),
    ]
    batch = run_batch(merchant_a, alice, carol, rows, django_capture_on_commit_callbacks)

    sent = {r["json"]["transfer_remark"]: r for r in fake_wechat.requests if r["name"] == "transfer"}
    ours = sent["WT-1"]
    payment = Payment.objects.get(reference="WT-1")
    expected = sdk_body(
        keys,
        out_bill_no=out_bill_no(f"{payment.public_id}-1"),
        transfer_scene_id="1005",
        openid="o-MYE42l80oelYMDE34nYD456Xoy",
        transfer_amount=10000,
        transfer_remark="WT-1",
        user_name="张三",
        transfer_scene_report_infos=SCENE_REPORT,
    )
    assert expected["path"] == ours["path"] == "/v3/fund-app/mch-transfer/transfer-bills"
    assert expected["cipher_data"] and ours["serial"] == WECHAT_PLATFORM_SERIAL
    platform = keys["wechat_platform"].private
    assert rsa_decrypt(ours["json"].pop("user_name"), platform) == "张三"
    assert rsa_decrypt(expected["data"].pop("user_name"), platform) == "张三"
    assert ours["json"] == expected["data"]

    states = {p.reference: (p.status, p.failure_code) for p in Payment.objects.filter(batch=batch)}
    assert states == {
        "WT-1": ("succeeded", ""),
        "WT-2": ("requires_action", ""),
        "WT-3": ("failed", "not_enough"),
    }
    waiting = Payment.objects.get(reference="WT-2")
    assert waiting.next_action == {
        "type": "wechat_confirm_receipt",
        "mch_id": WECHAT_MCHID,
        "app_id": WECHAT_APPID,
        "package_info": "affffddafdfafddffda==",
    }

    bill = {
        "out_bill_no": out_bill_no(f"{waiting.public_id}-1"),
        "transfer_bill_no": "1330000071100999991182020050700019480999",
        "state": "SUCCESS",
        "mch_id": WECHAT_MCHID,
        "transfer_amount": 30000,
        "openid": "o-ABC42l80oelYMDE34nYD456Xoy",
        "create_time": "2026-01-05T10:00:00+08:00",
        "update_time": "2026-01-05T10:05:00+08:00",
    }
    assert notify(keys, {**bill, "transfer_amount": 1}).status_code == 400  # amount checked
    assert notify(keys, bill, signer=keys["intruder"]).status_code == 400
    assert GatewayCallback.objects.filter(gateway="wechat_transfer", status="rejected").count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert notify(keys, bill, event_id="EV-1").status_code == 204
        assert notify(keys, bill, event_id="EV-1").status_code == 204  # a duplicate changes nothing
    waiting.refresh_from_db()
    assert (waiting.status, waiting.next_action) == ("succeeded", None)
    assert PaymentBatch.objects.get(pk=batch.pk).status == "completed"


def test_an_unconfirmed_transfer_is_found_failed_by_query_or_cancelled_after_its_lifetime(
    merchant_a,
    alice,
    carol,
    transfer_account,
    fake_wechat,
    keys,
    django_capture_on_commit_callbacks,
    time_machine,
):
    fake_wechat.answers["transfer"] = bill_answer
    rows = [
        ("WQ-1", "300.00", "CNY", "wechat_pay", "李四", "o-ABC42l80oelYMDE34nYD456Xoy"),
        ("WQ-2", "300.00", "CNY", "wechat_pay", "赵六", "o-DEF42l80oelYMDE34nYD456Xoy"),
    ]
    run_batch(merchant_a, alice, carol, rows, django_capture_on_commit_callbacks)
    first, second = Payment.objects.get(reference="WQ-1"), Payment.objects.get(reference="WQ-2")

    def query(entry):
        bill_no = entry["path"].rsplit("/", 1)[-1]
        state = "FAIL" if bill_no == out_bill_no(f"{first.public_id}-1") else "WAIT_USER_CONFIRM"
        return 200, {
            "mch_id": WECHAT_MCHID,
            "out_bill_no": bill_no,
            "transfer_bill_no": "B-" + bill_no[-4:],
            "appid": WECHAT_APPID,
            "state": state,
            "transfer_amount": 30000,
            "fail_reason": "PAYEE_ACCOUNT_ABNORMAL" if state == "FAIL" else "",
        }

    fake_wechat.answers["transfer_query"] = query
    with django_capture_on_commit_callbacks(execute=True):
        assert payment_reconcile(payment_id=first.pk, force=True) == "applied payment.failed"
    first.refresh_from_db()
    assert (first.status, first.failure_code) == ("failed", "payee_account_abnormal")

    fake_wechat.answers["transfer_cancel"] = lambda entry: (
        200,
        {"out_bill_no": entry["path"].split("/")[-2], "transfer_bill_no": "B-1", "state": "CANCELING"},
    )
    time_machine.move_to(timezone.now() + timedelta(hours=26), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        payment_reconcile(payment_id=second.pk)
    second.refresh_from_db()
    assert second.status == "cancelled"
    assert [r["name"] for r in fake_wechat.requests][-1] == "transfer_cancel"


def test_rows_without_an_openid_or_in_another_currency_are_row_errors(
    merchant_a, alice, transfer_account, django_capture_on_commit_callbacks
):
    rows = [
        ("WR-1", "1.00", "USD", "wechat_pay", "Ann", "o-MYE42l80oelYMDE34nYD456Xoy"),
        ("WR-2", "1.00", "CNY", "wechat_pay", "Bo", "bo@example.com"),
    ]
    batch = upload(merchant_a, csv_bytes(rows), user=alice, capture=django_capture_on_commit_callbacks)
    codes = list(BatchRowError.objects.filter(batch=batch).order_by("line").values_list("line", "code"))
    assert codes == [(2, "currency_not_supported"), (3, "invalid_openid")]


def test_the_admin_form_takes_a_transfer_scene_report_as_a_list_of_info_objects(transfer_account):
    data = {
        "merchant": transfer_account.merchant_id,
        "gateway": "wechat_transfer",
        "environment": "live",
        "enabled": "on",
        "app_id": WECHAT_APPID,
        "mch_id": WECHAT_MCHID,
        "key_serial": WECHAT_MERCHANT_SERIAL,
        "transfer_scene_id": "1005",
    }
    bad = GatewayAccountForm(
        data={**data, "transfer_scene_report_infos": '{"岗位类型": "骑手"}'}, instance=transfer_account
    )
    assert "transfer_scene_report_infos" in bad.errors
    good = GatewayAccountForm(
        data={**data, "transfer_scene_report_infos": json.dumps(SCENE_REPORT, ensure_ascii=False)},
        instance=transfer_account,
    )
    assert good.is_valid(), good.errors
    assert good.save().transfer_scene_report_infos == SCENE_REPORT
