"""Refund reconciliation: a refund left pending at WeChat Pay, PayPal or Alipay is queried and settled.

Each provider's refund query is checked as the provider receives it (pytest-httpserver
fakes in vendors.py), and each status it can answer is mapped. Time is moved with
time-machine, never waited for.
"""

from __future__ import annotations

import pytest
from django.test import Client

from payments.models import Event, GatewayCallback, PaymentStatus
from payments.services.reconcile import reconcile_due, refund_reconcile
from payments.services.refunds import refund_create
from payments.tasks import reconcile_task
from payments.validation import PaymentInvalid
from tests.gateways import test_alipay as ali
from tests.gateways import test_paypal as pp
from tests.gateways import test_wechat_pay as wx
from tests.gateways.conftest import ALIPAY_APP_ID, PAYPAL_WEBHOOK_ID, WECHAT_APIV3_KEY, WECHAT_MCHID
from tests.gateways.vendors import alipay_notify_body, paypal_transmission, wechat_notification

pytestmark = [pytest.mark.usefixtures("routes"), pytest.mark.django_db(transaction=True)]

WX_REFUND_ID = "50000000382019052709732678859"
PP_REFUND_ID = "1JU08902781691411"
# Every reconciled gateway (the transfer rails too) with nothing due.
NONE_DUE = {"alipay": 0, "wechat_pay": 0, "paypal": 0, "alipay_transfer": 0, "wechat_transfer": 0}


def events(refund, type_):
    return Event.objects.filter(refund=refund, type=type_)


# WeChat Pay ---------------------------------------------------------------------------------


def wechat_pending_refund(merchant, fake, keys, amount=None):
    """A paid WeChat Pay order and a refund WeChat Pay answered PROCESSING."""
    payment = wx.make_payment(merchant, fake)
    success = wechat_notification(WECHAT_APIV3_KEY, "TRANSACTION.SUCCESS", wx.transaction(payment))
    wx.deliver(success, wx.signed(keys, success))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    fake.answers["refund"] = (200, {"refund_id": WX_REFUND_ID, "status": "PROCESSING", "out_refund_no": "x"})
    refund = refund_create(payment=payment, amount=amount)
    assert refund.status == "pending"
    return payment, refund


def wechat_refund(refund, status: str, refunded: int | None = None) -> dict:
    """WeChat Pay's answer to a refund query (直连商户), with the given status."""
    attempt = refund.attempts.get()
    return {
        "refund_id": WX_REFUND_ID,
        "out_refund_no": attempt.idempotency_key,
        "transaction_id": "4200000000202601050000000001",
        "out_trade_no": refund.payment.attempts.get(kind="payment").idempotency_key,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "status": status,
        "create_time": "2026-01-05T10:01:00+08:00",
        "funds_account": "AVAILABLE",
        "amount": {
            "total": 8888,
            "refund": refund.amount_minor if refunded is None else refunded,
            "payer_total": 8888,
            "payer_refund": refund.amount_minor if refunded is None else refunded,
            "currency": "CNY",
        },
    }


def refund_queries(fake):
    return [r for r in fake.requests if r["name"] == "refund_query"]


def test_a_pending_wechat_refund_is_queried_after_the_threshold_and_succeeds(
    merchant_a, wechat_account, fake_wechat, keys, clock
):
    payment, refund = wechat_pending_refund(merchant_a, fake_wechat, keys)
    fake_wechat.answers["refund_query"] = (200, wechat_refund(refund, "SUCCESS"))
    key = refund.attempts.get().idempotency_key

    clock(seconds=119)
    assert reconcile_task() == NONE_DUE
    assert refund_queries(fake_wechat) == []

    clock(seconds=121)
    assert reconcile_task() == {**NONE_DUE, "wechat_pay": 1}

    [query] = refund_queries(fake_wechat)
    assert query["path"] == f"/v3/refund/domestic/refunds/{key}"
    assert query["json"] is None
    assert query["auth"]["mchid"] == WECHAT_MCHID
    refund.refresh_from_db()
    payment.refresh_from_db()
    assert refund.status == "succeeded"
    assert (payment.status, payment.refunded_minor) == (PaymentStatus.REFUNDED, 8888)
    [settled] = events(refund, "refund.succeeded")
    assert settled.actor == "gateway:wechat_pay"
    assert reconcile_due() == NONE_DUE
    assert refund_reconcile(refund_id=refund.pk) == "settled"


@pytest.mark.parametrize(
    ("status", "outcome", "refund_status", "code"),
    [
        ("SUCCESS", "applied refund.succeeded", "succeeded", ""),
        ("CLOSED", "applied refund.failed", "failed", "refund_closed"),
        ("ABNORMAL", "applied refund.failed", "failed", "refund_abnormal"),
        ("PROCESSING", "pending", "pending", ""),
    ],
)
def test_each_wechat_refund_status_is_mapped(
    merchant_a, wechat_account, fake_wechat, keys, clock, status, outcome, refund_status, code
):
    _, refund = wechat_pending_refund(merchant_a, fake_wechat, keys)
    fake_wechat.answers["refund_query"] = (200, wechat_refund(refund, status))

    clock(minutes=3)
    assert refund_reconcile(refund_id=refund.pk) == outcome

    refund.refresh_from_db()
    assert (refund.status, refund.failure_code) == (refund_status, code)


def test_a_failed_refund_releases_the_amount_it_held(merchant_a, wechat_account, fake_wechat, keys, clock):
    payment, refund = wechat_pending_refund(merchant_a, fake_wechat, keys, amount="50.00")
    with pytest.raises(PaymentInvalid):
        refund_create(payment=payment, amount="40.00")  # 50.00 of 88.88 is held by the pending refund
    fake_wechat.answers["refund_query"] = (200, wechat_refund(refund, "CLOSED"))

    clock(minutes=3)
    reconcile_task()

    refund.refresh_from_db()
    payment.refresh_from_db()
    assert (refund.status, refund.failure_code) == ("failed", "refund_closed")
    assert (payment.status, payment.refunded_minor) == (PaymentStatus.SUCCEEDED, 0)
    [failed] = events(refund, "refund.failed")
    assert failed.actor == "gateway:wechat_pay"
    assert not events(refund, "refund.succeeded").exists()
    fake_wechat.answers["refund"] = (200, {"refund_id": "50000000382019052709732678860", "status": "SUCCESS"})
    again = refund_create(payment=payment)  # the whole amount is refundable again
    assert (again.amount_minor, again.status) == (8888, "succeeded")


def test_a_gateway_error_leaves_the_refund_pending_for_the_next_run(
    merchant_a, wechat_account, fake_wechat, keys, clock
):
    payment, refund = wechat_pending_refund(merchant_a, fake_wechat, keys)
    fake_wechat.answers["refund_query"] = (500, {"code": "SYSTEM_ERROR", "message": "系统错误"})

    clock(minutes=3)
    assert refund_reconcile(refund_id=refund.pk) == "query failed"

    refund.refresh_from_db()
    payment.refresh_from_db()
    assert refund.status == "pending"
    assert (payment.status, payment.refunded_minor) == (PaymentStatus.SUCCEEDED, 0)
    assert not Event.objects.filter(refund=refund).exclude(type="refund.created").exists()
    clock(minutes=4)  # asked a minute ago: not due yet
    assert reconcile_task() == NONE_DUE
    fake_wechat.answers["refund_query"] = (200, wechat_refund(refund, "SUCCESS"))
    clock(minutes=5, seconds=1)
    assert reconcile_task() == {**NONE_DUE, "wechat_pay": 1}
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert len(refund_queries(fake_wechat)) == 2


def test_a_second_run_does_nothing(merchant_a, wechat_account, fake_wechat, keys, clock):
    _, refund = wechat_pending_refund(merchant_a, fake_wechat, keys)
    fake_wechat.answers["refund_query"] = (200, wechat_refund(refund, "PROCESSING"))
    clock(minutes=3)

    outcomes = [refund_reconcile(refund_id=refund.pk), refund_reconcile(refund_id=refund.pk)]

    assert outcomes == ["pending", "not due"]
    assert len(refund_queries(fake_wechat)) == 1


def test_a_refund_answer_with_the_wrong_amount_settles_nothing(
    merchant_a, wechat_account, fake_wechat, keys, clock
):
    _, refund = wechat_pending_refund(merchant_a, fake_wechat, keys, amount="10.00")
    fake_wechat.answers["refund_query"] = (200, wechat_refund(refund, "SUCCESS", refunded=8888))

    clock(minutes=3)
    assert refund_reconcile(refund_id=refund.pk) == "query failed"

    refund.refresh_from_db()
    assert refund.status == "pending"


def test_the_late_notification_after_reconciliation_changes_nothing(
    merchant_a, wechat_account, fake_wechat, keys, clock
):
    payment, refund = wechat_pending_refund(merchant_a, fake_wechat, keys)
    answer = wechat_refund(refund, "SUCCESS")
    fake_wechat.answers["refund_query"] = (200, answer)
    clock(minutes=3)
    reconcile_task()

    data = {**answer, "mchid": WECHAT_MCHID, "refund_status": "SUCCESS"}
    body = wechat_notification(WECHAT_APIV3_KEY, "REFUND.SUCCESS", data)
    assert wx.deliver(body, wx.signed(keys, body)).status_code == 204

    row = GatewayCallback.objects.latest("pk")
    assert row.status == GatewayCallback.Status.IGNORED
    assert "refund already succeeded" in row.reason
    payment.refresh_from_db()
    assert payment.refunded_minor == 8888
    assert events(refund, "refund.succeeded").count() == 1


# PayPal -------------------------------------------------------------------------------------


def paypal_pending_refund(merchant, fake, keys):
    """A captured PayPal order and a 2.50 refund PayPal answered PENDING."""
    payment = pp.make_payment(merchant, fake)
    completed = pp.event("PAYMENT.CAPTURE.COMPLETED", pp.capture_resource(pp.key_of(payment)))
    pp.deliver(completed, paypal_transmission(keys["paypal"], PAYPAL_WEBHOOK_ID, completed))
    fake.answers["get_order"] = (200, pp.order("COMPLETED", [pp.capture()]))
    fake.answers["refund"] = (201, {"id": PP_REFUND_ID, "status": "PENDING"})
    payment.refresh_from_db()
    refund = refund_create(payment=payment, amount="2.50")
    assert refund.status == "pending"
    return payment, refund


def paypal_refund(refund, status: str, value: str = "2.50") -> dict:
    answer = {
        "id": PP_REFUND_ID,
        "amount": {"currency_code": "USD", "value": value},
        "custom_id": refund.attempts.get().idempotency_key,
        "status": status,
        "create_time": "2026-01-05T10:01:00Z",
        "update_time": "2026-01-05T10:05:00Z",
    }
    if status in ("PENDING", "FAILED"):
        answer["status_details"] = {"reason": "ECHECK"}
    return answer


@pytest.mark.parametrize(
    ("status", "outcome", "refund_status", "code", "refunded"),
    [
        ("COMPLETED", "applied refund.succeeded", "succeeded", "", 250),
        ("FAILED", "applied refund.failed", "failed", "refund_failed", 0),
        ("CANCELLED", "applied refund.failed", "failed", "refund_cancelled", 0),
        ("PENDING", "pending", "pending", "", 0),
    ],
)
def test_each_paypal_refund_status_is_mapped(
    merchant_a, paypal_account, fake_paypal, keys, clock, status, outcome, refund_status, code, refunded
):
    payment, refund = paypal_pending_refund(merchant_a, fake_paypal, keys)
    fake_paypal.answers["get_refund"] = (200, paypal_refund(refund, status))

    clock(minutes=4)
    assert reconcile_task() == NONE_DUE
    clock(minutes=5, seconds=1)
    assert refund_reconcile(refund_id=refund.pk) == outcome

    [query] = [r for r in fake_paypal.requests if r["name"] == "get_refund"]
    assert query["path"] == f"/v2/payments/refunds/{PP_REFUND_ID}"
    assert query["raw"] == b""
    refund.refresh_from_db()
    payment.refresh_from_db()
    assert (refund.status, refund.failure_code) == (refund_status, code)
    assert payment.refunded_minor == refunded
    assert payment.status == (PaymentStatus.PARTIALLY_REFUNDED if refunded else PaymentStatus.SUCCEEDED)


def test_a_paypal_refund_answer_in_another_amount_settles_nothing(
    merchant_a, paypal_account, fake_paypal, keys, clock
):
    _, refund = paypal_pending_refund(merchant_a, fake_paypal, keys)
    fake_paypal.answers["get_refund"] = (200, paypal_refund(refund, "COMPLETED", value="12.50"))

    clock(minutes=6)
    assert refund_reconcile(refund_id=refund.pk) == "query failed"

    refund.refresh_from_db()
    assert refund.status == "pending"


# Alipay -------------------------------------------------------------------------------------


def alipay_pending_refund(merchant, fake, keys):
    """A paid Alipay trade and a refund whose answer and first query did not confirm it."""
    payment = ali.make_payment(merchant, fake)
    ali.notify(
        Client(),
        alipay_notify_body(
            keys["alipay"],
            app_id=ALIPAY_APP_ID,
            out_trade_no=ali.attempt_key(payment),
            total_amount="88.88",
            trade_status="TRADE_SUCCESS",
        ),
    )
    fake.answers["alipay.trade.refund"] = {"code": "10000", "msg": "Success", "fund_change": "N"}
    fake.answers["alipay.trade.fastpay.refund.query"] = {"code": "10000", "msg": "Success"}
    payment.refresh_from_db()
    refund = refund_create(payment=payment, amount="8.88")
    assert refund.status == "pending"
    return payment, refund


@pytest.mark.parametrize(
    ("answer", "outcome", "refund_status", "refunded"),
    [
        (
            {"refund_status": "REFUND_SUCCESS", "refund_amount": "8.88", "total_amount": "88.88"},
            "applied refund.succeeded",
            "succeeded",
            888,
        ),
        ({}, "pending", "pending", 0),  # no refund_status: not (yet) refunded
    ],
)
def test_an_alipay_refund_is_queried_by_trade_and_request_number(
    merchant_a, alipay_account, fake_alipay, keys, clock, answer, outcome, refund_status, refunded
):
    payment, refund = alipay_pending_refund(merchant_a, fake_alipay, keys)
    trade_key = ali.attempt_key(payment)
    refund_key = refund.attempts.get().idempotency_key
    fake_alipay.answers["alipay.trade.fastpay.refund.query"] = lambda biz: {
        "code": "10000",
        "msg": "Success",
        "trade_no": "2026010522001400000000000001",
        "out_trade_no": biz["out_trade_no"],
        "out_request_no": biz["out_request_no"],
        **answer,
    }
    before = len(fake_alipay.requests)

    clock(minutes=3)
    assert reconcile_task()["alipay"] == 1

    [query] = fake_alipay.requests[before:]
    assert query["method"] == "alipay.trade.fastpay.refund.query"
    assert query["biz"] == {"out_trade_no": trade_key, "out_request_no": refund_key}
    refund.refresh_from_db()
    payment.refresh_from_db()
    assert refund.status == refund_status
    assert payment.refunded_minor == refunded
    assert events(refund, "refund.succeeded").count() == (1 if refunded else 0)
    assert refund_reconcile(refund_id=refund.pk) in ("settled", "not due")


def test_an_alipay_refund_query_refusal_leaves_the_refund_pending(
    merchant_a, alipay_account, fake_alipay, keys, clock
):
    _, refund = alipay_pending_refund(merchant_a, fake_alipay, keys)
    fake_alipay.answers["alipay.trade.fastpay.refund.query"] = {
        "code": "20000",
        "msg": "Service Currently Unavailable",
        "sub_code": "isp.unknow-error",
    }

    clock(minutes=3)
    assert refund_reconcile(refund_id=refund.pk) == "query failed"

    refund.refresh_from_db()
    assert refund.status == "pending"
