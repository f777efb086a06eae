"""Alipay: precreate / refund requests as Alipay checks them, RSA2 notifications, forged ones."""

from __future__ import annotations

import pytest
from django.test import Client

from merchants.models import GatewayAccount
from payments.gateways import get_gateway
from payments.models import Event, GatewayAttempt, GatewayCallback, PaymentStatus
from payments.representations import payment_data
from payments.services.payments import payment_create
from payments.services.refunds import refund_create
from payments.validation import PaymentInvalid
from tests.factories import payment_input
from tests.gateways.conftest import ALIPAY_APP_ID
from tests.gateways.vendors import alipay_notify_body

# Callbacks are applied on commit, as in production: each test commits for real.
pytestmark = [pytest.mark.usefixtures("routes"), pytest.mark.django_db(transaction=True)]

QR = "https://qr.alipay.com/bax03431ljhokirwl38f00a7"


def precreate_ok(biz: dict) -> dict:
    return {"code": "10000", "msg": "Success", "out_trade_no": biz["out_trade_no"], "qr_code": QR}


def make_payment(merchant, fake, **overrides):
    fake.answers["alipay.trade.precreate"] = precreate_ok
    data = payment_input(method="alipay", currency="CNY", amount="88.88", **overrides)
    return payment_create(merchant=merchant, data=data)


def notify(client: Client, body: bytes):
    return client.post(
        "/callbacks/alipay/", data=body, content_type="application/x-www-form-urlencoded; charset=utf-8"
    )


def attempt_key(payment) -> str:
    return payment.attempts.get(kind="payment").idempotency_key


def test_precreate_is_signed_and_returns_the_qr_code(merchant_a, alipay_account, fake_alipay):
    payment = make_payment(merchant_a, fake_alipay, description="Coffee beans")

    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.next_action["type"] == "display_qr_code"
    assert payment.next_action["qr_code"] == QR
    # A QR code collects from a customer (DESIGN section 6), and stays a collection once stored.
    payment.refresh_from_db()
    assert payment_data(payment)["direction"] == "collection"
    [sent] = fake_alipay.requests
    assert sent["content_type"] == "application/x-www-form-urlencoded;charset=utf-8"
    assert {
        k: sent[k] for k in ("app_id", "method", "format", "charset", "sign_type", "version", "notify_url")
    } == {
        "app_id": ALIPAY_APP_ID,
        "method": "alipay.trade.precreate",
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "version": "1.0",
        "notify_url": "https://paydesk.example/callbacks/alipay/",
    }
    assert sent["biz"] == {
        "out_trade_no": attempt_key(payment),
        "total_amount": "88.88",
        "subject": "Coffee beans",
        "timeout_express": "15m",
    }


def test_a_repeated_submission_is_the_same_trade(merchant_a, alipay_account, fake_alipay):
    payment = make_payment(merchant_a, fake_alipay)
    attempt = payment.attempts.get()

    result = get_gateway("alipay").submit_payment(payment, attempt)

    assert result.next_action["qr_code"] == QR
    first, second = fake_alipay.requests
    assert first["biz"]["out_trade_no"] == second["biz"]["out_trade_no"] == attempt.idempotency_key


def test_an_answer_signed_with_another_key_is_not_trusted(merchant_a, alipay_account, fake_alipay, keys):
    fake_alipay.alipay_keys = keys["intruder"]

    payment = make_payment(merchant_a, fake_alipay)

    assert payment.status == PaymentStatus.PROCESSING
    attempt = payment.attempts.get()
    assert attempt.status == GatewayAttempt.Status.PENDING
    assert "signature invalid" in attempt.error


def test_a_business_refusal_fails_the_payment(merchant_a, alipay_account, fake_alipay):
    fake_alipay.answers["alipay.trade.precreate"] = {
        "code": "40004",
        "msg": "Business Failed",
        "sub_code": "ACQ.TOTAL_FEE_EXCEED",
        "sub_msg": "订单金额超过限额",
    }
    payment = payment_create(merchant=merchant_a, data=payment_input(method="alipay", currency="CNY"))

    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "total_fee_exceed"
    assert payment.failure_message == "订单金额超过限额"


def test_an_unsigned_error_response_fails_the_payment_with_its_code(merchant_a, alipay_account, fake_alipay):
    fake_alipay.answers["alipay.trade.precreate"] = lambda biz: None
    fake_alipay.response_body = lambda method, node: (
        '{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id",'
        '"sub_msg":"无效的AppID参数"}}'
    )

    payment = payment_create(merchant=merchant_a, data=payment_input(method="alipay", currency="CNY"))

    assert payment.status == PaymentStatus.FAILED
    assert (payment.failure_code, payment.failure_message) == ("invalid-app-id", "无效的AppID参数")


def test_a_system_error_leaves_the_attempt_for_the_sweeper(merchant_a, alipay_account, fake_alipay):
    fake_alipay.answers["alipay.trade.precreate"] = {
        "code": "20000",
        "msg": "Service Currently Unavailable",
        "sub_code": "isp.unknow-error",
    }
    payment = payment_create(merchant=merchant_a, data=payment_input(method="alipay", currency="CNY"))

    assert payment.status == PaymentStatus.PROCESSING
    assert payment.attempts.get().status == GatewayAttempt.Status.PENDING


def test_a_merchant_without_an_alipay_account_gets_a_clear_error(merchant_a, fake_alipay):
    with pytest.raises(PaymentInvalid) as exc:
        payment_create(merchant=merchant_a, data=payment_input(method="alipay", currency="CNY"))

    assert [(e.field, e.code) for e in exc.value.errors] == [("method", "gateway_not_configured")]
    assert fake_alipay.requests == []


def test_alipay_refuses_other_currencies_at_creation(merchant_a, alipay_account, fake_alipay):
    with pytest.raises(PaymentInvalid) as exc:
        payment_create(merchant=merchant_a, data=payment_input(method="alipay", currency="USD"))

    assert [(e.field, e.code) for e in exc.value.errors] == [("currency", "currency_not_supported")]


# Notifications ------------------------------------------------------------------------------


def test_a_signed_success_notification_settles_the_payment_once(
    merchant_a, alipay_account, fake_alipay, keys
):
    payment = make_payment(merchant_a, fake_alipay)
    body = alipay_notify_body(
        keys["alipay"],
        app_id=ALIPAY_APP_ID,
        out_trade_no=attempt_key(payment),
        total_amount="88.88",
        trade_status="TRADE_SUCCESS",
    )
    client = Client()

    first = notify(client, body)
    again = notify(client, body)

    assert first.status_code == 200 and first.content == b"success"
    assert first["Content-Type"].startswith("text/plain")
    assert again.content == b"success"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.gateway_reference == "2026010522001400000000000001"
    assert Event.objects.filter(payment=payment, type="payment.succeeded").count() == 1
    statuses = list(GatewayCallback.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["applied", "duplicate"]


def _forged_cases(keys, key):
    good = {
        "app_id": ALIPAY_APP_ID,
        "out_trade_no": key,
        "total_amount": "88.88",
        "trade_status": "TRADE_SUCCESS",
    }
    signed_by_intruder = alipay_notify_body(keys["intruder"], **good)
    tampered = alipay_notify_body(keys["alipay"], **good).replace(
        b"buyer_id=2088102177846880", b"buyer_id=2088000000000000"
    )
    wrong_amount = alipay_notify_body(keys["alipay"], **{**good, "total_amount": "0.01"})
    wrong_app = alipay_notify_body(keys["alipay"], **{**good, "app_id": "2021009999999999"})
    unknown_trade = alipay_notify_body(keys["alipay"], **{**good, "out_trade_no": "pay_unknown-1"})
    unsigned = b"&".join(p for p in good_body_parts(keys, good) if not p.startswith(b"sign="))
    return {
        "wrong key": (signed_by_intruder, "signature mismatch"),
        "tampered field": (tampered, "signature mismatch"),
        "wrong amount": (wrong_amount, "does not match"),
        "wrong app_id": (wrong_app, "app_id"),
        "unknown trade": (unknown_trade, "unknown out_trade_no"),
        "unsigned": (unsigned, "missing sign"),
        "garbage": (b"%%%=&&", "malformed"),
    }


def good_body_parts(keys, good):
    return alipay_notify_body(keys["alipay"], **good).split(b"&")


def test_forged_notifications_change_nothing_and_are_recorded_rejected(
    merchant_a, alipay_account, fake_alipay, keys
):
    payment = make_payment(merchant_a, fake_alipay)
    events_before = Event.objects.filter(payment=payment).count()
    client = Client()

    for name, (body, reason) in _forged_cases(keys, attempt_key(payment)).items():
        response = notify(client, body)
        assert response.content == b"failure", name
        row = GatewayCallback.objects.latest("pk")
        assert row.status == GatewayCallback.Status.REJECTED, name
        assert reason in row.reason, (name, row.reason)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert Event.objects.filter(payment=payment).count() == events_before


def test_a_closed_trade_after_success_is_ignored_with_the_reason(
    merchant_a, alipay_account, fake_alipay, keys
):
    payment = make_payment(merchant_a, fake_alipay)
    common = {"app_id": ALIPAY_APP_ID, "out_trade_no": attempt_key(payment), "total_amount": "88.88"}
    client = Client()
    notify(client, alipay_notify_body(keys["alipay"], trade_status="TRADE_SUCCESS", **common))

    response = notify(client, alipay_notify_body(keys["alipay"], trade_status="TRADE_CLOSED", **common))

    assert response.content == b"success"
    row = GatewayCallback.objects.latest("pk")
    assert row.status == GatewayCallback.Status.IGNORED
    assert "payment.closed not allowed while payment is succeeded" in row.reason
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


def test_a_closed_unpaid_trade_cancels_the_payment(merchant_a, alipay_account, fake_alipay, keys):
    payment = make_payment(merchant_a, fake_alipay)
    body = alipay_notify_body(
        keys["alipay"],
        app_id=ALIPAY_APP_ID,
        out_trade_no=attempt_key(payment),
        total_amount="88.88",
        trade_status="TRADE_CLOSED",
    )

    notify(Client(), body)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELLED


def test_refund_is_requested_with_the_refund_attempt_key(merchant_a, alipay_account, fake_alipay, keys):
    payment = make_payment(merchant_a, fake_alipay)
    trade_key = attempt_key(payment)
    notify(
        Client(),
        alipay_notify_body(
            keys["alipay"],
            app_id=ALIPAY_APP_ID,
            out_trade_no=trade_key,
            total_amount="88.88",
            trade_status="TRADE_SUCCESS",
        ),
    )
    fake_alipay.answers["alipay.trade.refund"] = lambda biz: {
        "code": "10000",
        "msg": "Success",
        "trade_no": "2026010522001400000000000001",
        "out_trade_no": biz["out_trade_no"],
        "refund_fee": biz["refund_amount"],
        "fund_change": "Y",
    }
    payment.refresh_from_db()

    refund = refund_create(payment=payment, amount="8.88", reason="damaged")

    refund_key = refund.attempts.get().idempotency_key
    assert fake_alipay.requests[-1]["biz"] == {
        "out_trade_no": trade_key,
        "refund_amount": "8.88",
        "out_request_no": refund_key,
        "refund_reason": "damaged",
    }
    assert refund.status == "succeeded"
    assert refund.payment.status == PaymentStatus.PARTIALLY_REFUNDED
    # Alipay's own refund notice arrives later: recorded, changes nothing more.
    response = notify(
        Client(),
        alipay_notify_body(
            keys["alipay"],
            app_id=ALIPAY_APP_ID,
            out_trade_no=trade_key,
            out_biz_no=refund_key,
            refund_fee="8.88",
            total_amount="88.88",
            trade_status="TRADE_SUCCESS",
        ),
    )
    assert response.content == b"success"
    row = GatewayCallback.objects.latest("pk")
    assert row.status == GatewayCallback.Status.IGNORED
    assert "refund already succeeded" in row.reason
    assert Event.objects.filter(payment=payment, type="refund.succeeded").count() == 1


def test_a_refund_answered_without_fund_change_is_confirmed_by_query(
    merchant_a, alipay_account, fake_alipay, keys
):
    payment = make_payment(merchant_a, fake_alipay)
    key = attempt_key(payment)
    notify(
        Client(),
        alipay_notify_body(
            keys["alipay"],
            app_id=ALIPAY_APP_ID,
            out_trade_no=key,
            total_amount="88.88",
            trade_status="TRADE_SUCCESS",
        ),
    )
    fake_alipay.answers["alipay.trade.refund"] = {"code": "10000", "msg": "Success", "fund_change": "N"}
    fake_alipay.answers["alipay.trade.fastpay.refund.query"] = {
        "code": "10000",
        "msg": "Success",
        "refund_status": "REFUND_SUCCESS",
        "refund_amount": "88.88",
    }
    payment.refresh_from_db()

    refund = refund_create(payment=payment)

    assert [r["method"] for r in fake_alipay.requests[-2:]] == [
        "alipay.trade.refund",
        "alipay.trade.fastpay.refund.query",
    ]
    assert refund.status == "succeeded"
    assert refund.payment.status == PaymentStatus.REFUNDED


def _paid_with_pending_refund(merchant, fake_alipay, keys, reference="ORDER-1"):
    """A paid Alipay trade with a refund Alipay has accepted but not yet confirmed."""
    payment = make_payment(merchant, fake_alipay, reference=reference)
    notify(
        Client(),
        alipay_notify_body(
            keys["alipay"],
            app_id=ALIPAY_APP_ID,
            out_trade_no=attempt_key(payment),
            total_amount="88.88",
            trade_status="TRADE_SUCCESS",
        ),
    )
    fake_alipay.answers["alipay.trade.refund"] = {"code": "10000", "msg": "Success", "fund_change": "N"}
    fake_alipay.answers["alipay.trade.fastpay.refund.query"] = {"code": "10000", "msg": "Success"}
    payment.refresh_from_db()
    refund = refund_create(payment=payment, amount="8.88")
    assert refund.status == "pending"
    return payment, refund


def test_a_signed_refund_notice_of_another_trade_cannot_settle_a_refund(
    merchant_a, merchant_b, alipay_account, fake_alipay, keys
):
    _payment, refund = _paid_with_pending_refund(merchant_a, fake_alipay, keys)
    # Merchant B has its own Alipay account and a paid trade of its own...
    GatewayAccount.objects.create(
        merchant=merchant_b,
        gateway="alipay",
        app_id=ALIPAY_APP_ID,
        private_key=keys["alipay_app"].private_pkcs1_b64,
        public_keys={"alipay": keys["alipay"].public_b64},
    )
    other = make_payment(merchant_b, fake_alipay, reference="B-1")
    # ...and a validly signed notice for B's trade names A's refund.
    body = alipay_notify_body(
        keys["alipay"],
        app_id=ALIPAY_APP_ID,
        out_trade_no=attempt_key(other),
        out_biz_no=refund.attempts.get().idempotency_key,
        refund_fee="8.88",
        total_amount="88.88",
        trade_status="TRADE_SUCCESS",
    )

    response = notify(Client(), body)

    assert response.status_code == 400
    row = GatewayCallback.objects.latest("pk")
    assert row.status == GatewayCallback.Status.REJECTED
    assert "another trade" in row.reason
    refund.refresh_from_db()
    assert refund.status == "pending"


def test_a_refund_notice_with_another_amount_is_rejected(merchant_a, alipay_account, fake_alipay, keys):
    payment, refund = _paid_with_pending_refund(merchant_a, fake_alipay, keys)
    body = alipay_notify_body(
        keys["alipay"],
        app_id=ALIPAY_APP_ID,
        out_trade_no=attempt_key(payment),
        out_biz_no=refund.attempts.get().idempotency_key,
        refund_fee="80.00",
        total_amount="88.88",
        trade_status="TRADE_SUCCESS",
    )
    assert notify(Client(), body).status_code == 400
    assert "does not match the refund" in GatewayCallback.objects.latest("pk").reason
    refund.refresh_from_db()
    assert refund.status == "pending"

    good = alipay_notify_body(
        keys["alipay"],
        app_id=ALIPAY_APP_ID,
        out_trade_no=attempt_key(payment),
        out_biz_no=refund.attempts.get().idempotency_key,
        refund_fee="8.88",
        total_amount="88.88",
        trade_status="TRADE_SUCCESS",
    )
    assert notify(Client(), good).content == b"success"
    refund.refresh_from_db()
    assert refund.status == "succeeded"
