"""WeChat Pay API v3: signed Native orders and refunds, signed + encrypted notifications, forgeries."""

from __future__ import annotations

import base64
import json
import time

import pytest
from django.test import Client

from payments.models import Event, GatewayAttempt, GatewayCallback, PaymentStatus
from payments.services.payments import PaymentStateError, payment_cancel, payment_create
from payments.services.refunds import refund_create
from tests.factories import payment_input
from tests.gateways.conftest import WECHAT_APIV3_KEY, WECHAT_APPID, WECHAT_MCHID, WECHAT_PLATFORM_SERIAL
from tests.gateways.vendors import wechat_notification, wechat_signed_headers

pytestmark = [pytest.mark.usefixtures("routes"), pytest.mark.django_db(transaction=True)]

CODE_URL = "weixin://wxpay/bizpayurl?pr=p4lpSuKzz"


def make_payment(merchant, fake, **overrides):
    fake.answers["native"] = (200, {"code_url": CODE_URL})
    data = payment_input(method="wechat_pay", currency="CNY", amount="88.88", **overrides)
    return payment_create(merchant=merchant, data=data)


def transaction(payment, **overrides) -> dict:
    data = {
        "mchid": WECHAT_MCHID,
        "appid": WECHAT_APPID,
        "out_trade_no": payment.attempts.get(kind="payment").idempotency_key,
        "transaction_id": "4200000000202601050000000001",
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "success_time": "2026-01-05T10:00:00+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 8888, "payer_total": 8888, "currency": "CNY", "payer_currency": "CNY"},
    }
    data.update(overrides)
    return data


def deliver(body: bytes, headers: dict[str, str]):
    extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
    return Client().post("/callbacks/wechat_pay/", data=body, content_type="application/json", **extra)


def signed(keys, body: bytes, **kwargs) -> dict[str, str]:
    return wechat_signed_headers(keys["wechat_platform"], WECHAT_PLATFORM_SERIAL, body, **kwargs)


def test_native_order_is_signed_by_the_merchant_and_returns_the_code_url(
    merchant_a, wechat_account, fake_wechat
):
    payment = make_payment(merchant_a, fake_wechat, description="Coffee beans")

    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.next_action["type"] == "display_qr_code"
    assert payment.next_action["qr_code"] == CODE_URL
    [sent] = fake_wechat.requests
    attempt = payment.attempts.get()
    assert sent["path"] == "/v3/pay/transactions/native"
    assert sent["content_type"] == "application/json"
    assert sent["auth"]["serial_no"] == "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
    body = sent["json"]
    assert body.pop("time_expire").endswith("+08:00")
    assert body == {
        "appid": WECHAT_APPID,
        "mchid": WECHAT_MCHID,
        "description": "Coffee beans",
        "out_trade_no": attempt.idempotency_key,
        "notify_url": "https://paydesk.example/callbacks/wechat_pay/",
        "amount": {"total": 8888, "currency": "CNY"},
    }


def test_an_answer_signed_with_another_platform_key_is_not_trusted(
    merchant_a, wechat_account, fake_wechat, keys
):
    fake_wechat.platform_keys = keys["intruder"]

    payment = make_payment(merchant_a, fake_wechat)

    assert payment.status == PaymentStatus.PROCESSING
    attempt = payment.attempts.get()
    assert attempt.status == GatewayAttempt.Status.PENDING
    assert "signature mismatch" in attempt.error


def test_a_parameter_error_fails_the_payment(merchant_a, wechat_account, fake_wechat):
    fake_wechat.answers["native"] = (400, {"code": "PARAM_ERROR", "message": "description too long"})
    payment = payment_create(merchant=merchant_a, data=payment_input(method="wechat_pay", currency="CNY"))

    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "param_error"


def test_a_success_notification_settles_the_payment_once(merchant_a, wechat_account, fake_wechat, keys):
    payment = make_payment(merchant_a, fake_wechat)
    body = wechat_notification(WECHAT_APIV3_KEY, "TRANSACTION.SUCCESS", transaction(payment))
    headers = signed(keys, body)

    first = deliver(body, headers)
    again = deliver(body, headers)

    assert first.status_code == 204 and first.content == b""
    assert again.status_code == 204
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.gateway_reference == "4200000000202601050000000001"
    assert Event.objects.filter(payment=payment, type="payment.succeeded").count() == 1
    first_row, second_row = GatewayCallback.objects.order_by("pk")
    assert (first_row.status, second_row.status) == ("applied", "duplicate")
    assert first_row.payload["resource"]["trade_state"] == "SUCCESS"
    assert first_row.headers["Wechatpay-Serial"] == WECHAT_PLATFORM_SERIAL


def _flip_tag(body: bytes) -> bytes:
    event = json.loads(body)
    raw = bytearray(base64.b64decode(event["resource"]["ciphertext"]))
    raw[-1] ^= 0x01  # the last 16 bytes are the GCM tag
    event["resource"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(event, separators=(",", ":")).encode()


def _forgeries(keys, payment):
    good = wechat_notification(WECHAT_APIV3_KEY, "TRANSACTION.SUCCESS", transaction(payment))
    now = int(time.time())
    bad_tag = _flip_tag(good)
    other_key = wechat_notification("0" * 32, "TRANSACTION.SUCCESS", transaction(payment))
    wrong_amount = wechat_notification(
        WECHAT_APIV3_KEY, "TRANSACTION.SUCCESS", transaction(payment, amount={"total": 1, "currency": "CNY"})
    )
    wrong_mch = wechat_notification(
        WECHAT_APIV3_KEY, "TRANSACTION.SUCCESS", transaction(payment, mchid="1900000001")
    )
    unknown_serial = {**signed(keys, good), "Wechatpay-Serial": "PUB_KEY_ID_UNKNOWN"}
    return {
        "wrong key": (
            good,
            wechat_signed_headers(keys["intruder"], WECHAT_PLATFORM_SERIAL, good),
            "signature mismatch",
        ),
        "tampered body": (
            good.replace("支付成功".encode(), b"paid"),
            signed(keys, good),
            "signature mismatch",
        ),
        "stale timestamp": (good, signed(keys, good, timestamp=now - 301), "5 minutes"),
        "future timestamp": (good, signed(keys, good, timestamp=now + 301), "5 minutes"),
        "bad GCM tag": (bad_tag, signed(keys, bad_tag), "does not decrypt"),
        "other APIv3 key": (other_key, signed(keys, other_key), "does not decrypt"),
        "wrong amount": (wrong_amount, signed(keys, wrong_amount), "does not match the payment"),
        "wrong mchid": (wrong_mch, signed(keys, wrong_mch), "mchid/appid"),
        "unknown serial": (good, unknown_serial, "unknown platform key serial"),
        "no headers": (good, {}, "unknown platform key serial"),
    }


def test_forged_notifications_change_nothing_and_are_recorded_rejected(
    merchant_a, wechat_account, fake_wechat, keys, time_machine
):
    time_machine.move_to(time.time(), tick=False)  # the 5-minute boundary is exact, however slow the run
    payment = make_payment(merchant_a, fake_wechat)
    events_before = Event.objects.filter(payment=payment).count()

    for name, (body, headers, reason) in _forgeries(keys, payment).items():
        response = deliver(body, headers)
        assert response.status_code == 400, name
        assert response.json()["code"] == "FAIL", name
        row = GatewayCallback.objects.latest("pk")
        assert row.status == GatewayCallback.Status.REJECTED, name
        assert reason in row.reason, (name, row.reason)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert Event.objects.filter(payment=payment).count() == events_before


def test_a_stale_failure_after_success_is_ignored_with_the_reason(
    merchant_a, wechat_account, fake_wechat, keys
):
    payment = make_payment(merchant_a, fake_wechat)
    success = wechat_notification(WECHAT_APIV3_KEY, "TRANSACTION.SUCCESS", transaction(payment))
    failure = wechat_notification(
        WECHAT_APIV3_KEY,
        "TRANSACTION.SUCCESS",
        transaction(payment, trade_state="PAYERROR", trade_state_desc="银行卡余额不足"),
    )
    deliver(success, signed(keys, success))

    response = deliver(failure, signed(keys, failure))

    assert response.status_code == 204
    row = GatewayCallback.objects.latest("pk")
    assert row.status == GatewayCallback.Status.IGNORED
    assert "payment.failed not allowed while payment is succeeded" in row.reason
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert not Event.objects.filter(payment=payment, type="payment.failed").exists()


def test_refund_is_requested_then_settled_by_its_notification(merchant_a, wechat_account, fake_wechat, keys):
    payment = make_payment(merchant_a, fake_wechat)
    success = wechat_notification(WECHAT_APIV3_KEY, "TRANSACTION.SUCCESS", transaction(payment))
    deliver(success, signed(keys, success))
    payment.refresh_from_db()
    fake_wechat.answers["refund"] = (
        200,
        {"refund_id": "50000000382019052709732678859", "status": "PROCESSING", "out_refund_no": "x"},
    )

    refund = refund_create(payment=payment, reason="damaged")

    refund_key = refund.attempts.get().idempotency_key
    sent = fake_wechat.requests[-1]
    assert sent["path"] == "/v3/refund/domestic/refunds"
    assert sent["json"] == {
        "out_trade_no": payment.attempts.get(kind="payment").idempotency_key,
        "out_refund_no": refund_key,
        "notify_url": "https://paydesk.example/callbacks/wechat_pay/",
        "amount": {"refund": 8888, "total": 8888, "currency": "CNY"},
        "reason": "damaged",
    }
    assert refund.status == "pending"

    data = {
        "mchid": WECHAT_MCHID,
        "out_trade_no": sent["json"]["out_trade_no"],
        "transaction_id": "4200000000202601050000000001",
        "out_refund_no": refund_key,
        "refund_id": "50000000382019052709732678859",
        "refund_status": "SUCCESS",
        "success_time": "2026-01-05T11:00:00+08:00",
        "amount": {"total": 8888, "refund": 8888, "payer_total": 8888, "payer_refund": 8888},
    }
    body = wechat_notification(WECHAT_APIV3_KEY, "REFUND.SUCCESS", data)
    assert deliver(body, signed(keys, body)).status_code == 204

    refund.refresh_from_db()
    payment.refresh_from_db()
    assert refund.status == "succeeded"
    assert payment.status == PaymentStatus.REFUNDED


def test_cancel_closes_the_unpaid_order_first(merchant_a, wechat_account, fake_wechat):
    payment = make_payment(merchant_a, fake_wechat)
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    key = payment.attempts.get().idempotency_key
    fake_wechat.answers["query"] = (200, transaction(payment, trade_state="NOTPAY", transaction_id=""))
    fake_wechat.answers["close"] = (204, None)

    payment = payment_cancel(payment=payment)

    assert payment.status == PaymentStatus.CANCELLED
    close = [r for r in fake_wechat.requests if r["name"] == "close"]
    assert [(r["path"], r["json"]) for r in close] == [
        (f"/v3/pay/transactions/out-trade-no/{key}/close", {"mchid": WECHAT_MCHID})
    ]
    assert not fake_wechat.errors


def test_cancel_of_an_order_the_customer_paid_settles_it_instead(merchant_a, wechat_account, fake_wechat):
    payment = make_payment(merchant_a, fake_wechat)
    fake_wechat.answers["query"] = (200, transaction(payment))

    with pytest.raises(PaymentStateError) as refused:
        payment_cancel(payment=payment)

    assert refused.value.code == "already_paid"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert not [r for r in fake_wechat.requests if r["name"] == "close"]
