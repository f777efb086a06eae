"""Reconciliation: overdue payments are queried at their gateway, expired QR codes cancelled.

Time is moved with time-machine, never waited for.
"""

from __future__ import annotations

import pytest
from django.db import transaction

from payments.models import Event, GatewayAttempt, PaymentStatus
from payments.services.lifecycle.locks import lock_payment
from payments.services.lifecycle.transitions import transition_apply
from payments.services.payments import payment_create
from payments.services.reconcile import payment_reconcile, reconcile_due
from payments.tasks import reconcile_task
from tests.conftest import CLOCK_START
from tests.factories import PaymentFactory, payment_input
from tests.gateways.conftest import WECHAT_APPID, WECHAT_MCHID
from tests.gateways.test_alipay import precreate_ok
from tests.gateways.test_paypal import capture, order

pytestmark = [pytest.mark.usefixtures("routes"), pytest.mark.django_db(transaction=True)]

T0 = CLOCK_START


def alipay_payment(merchant, fake):
    fake.answers["alipay.trade.precreate"] = precreate_ok
    return payment_create(
        merchant=merchant, data=payment_input(method="alipay", currency="CNY", amount="88.88")
    )


def queries(fake, method="alipay.trade.query"):
    return [r for r in fake.requests if r["method"] == method]


def test_a_late_alipay_payment_is_queried_after_the_threshold_and_settled(
    merchant_a, alipay_account, fake_alipay, clock
):
    payment = alipay_payment(merchant_a, fake_alipay)
    key = payment.attempts.get().idempotency_key
    fake_alipay.answers["alipay.trade.query"] = lambda biz: {
        "code": "10000",
        "msg": "Success",
        "out_trade_no": biz["out_trade_no"],
        "trade_no": "2026010522001400000000000009",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "88.88",
    }

    clock(seconds=119)
    assert set(reconcile_task().values()) == {0}
    assert queries(fake_alipay) == []

    clock(seconds=121)
    assert reconcile_task()["alipay"] == 1

    assert [q["biz"] for q in queries(fake_alipay)] == [{"out_trade_no": key}]
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.gateway_reference == "2026010522001400000000000009"
    settled = Event.objects.get(payment=payment, type="payment.succeeded")
    assert settled.actor == "gateway:alipay"
    assert set(reconcile_due().values()) == {0}


def test_an_unscanned_qr_code_is_cancelled_after_its_expiry_and_not_before(
    merchant_a, alipay_account, fake_alipay, clock
):
    payment = alipay_payment(merchant_a, fake_alipay)
    fake_alipay.answers["alipay.trade.query"] = {
        "code": "40004",
        "msg": "Business Failed",
        "sub_code": "ACQ.TRADE_NOT_EXIST",
        "sub_msg": "交易不存在",
    }
    # Closing a precreated trade nobody scanned: Alipay does not know it (nothing to close).
    fake_alipay.answers["alipay.trade.close"] = {
        "code": "40004",
        "msg": "Business Failed",
        "sub_code": "ACQ.TRADE_NOT_EXIST",
        "sub_msg": "交易不存在",
    }

    clock(minutes=3)
    reconcile_task()
    clock(minutes=4)  # queried a minute ago: not due again yet
    reconcile_task()
    assert len(queries(fake_alipay)) == 1
    clock(minutes=16)  # past the 15-minute QR lifetime but within the grace period
    reconcile_task()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION

    clock(minutes=17, seconds=1)
    reconcile_task()

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELLED
    assert len(queries(fake_alipay)) == 3
    # The trade was closed at Alipay before the payment was cancelled here.
    assert [r["biz"] for r in queries(fake_alipay, "alipay.trade.close")] == [
        {"out_trade_no": payment.attempts.get().idempotency_key}
    ]
    assert Event.objects.filter(payment=payment, type="payment.cancelled").count() == 1


def test_a_query_that_finds_the_payment_paid_wins_over_the_expiry(
    merchant_a, wechat_account, fake_wechat, clock
):
    fake_wechat.answers["native"] = (200, {"code_url": "weixin://wxpay/bizpayurl?pr=abc"})
    payment = payment_create(
        merchant=merchant_a, data=payment_input(method="wechat_pay", currency="CNY", amount="88.88")
    )
    key = payment.attempts.get().idempotency_key
    fake_wechat.answers["query"] = (
        200,
        {
            "appid": WECHAT_APPID,
            "mchid": WECHAT_MCHID,
            "out_trade_no": key,
            "transaction_id": "4200000000202601050000000002",
            "trade_state": "SUCCESS",
            "amount": {"total": 8888, "currency": "CNY"},
        },
    )

    clock(hours=1)
    assert payment_reconcile(payment_id=payment.pk) == "applied payment.succeeded"

    [query] = [r for r in fake_wechat.requests if r["name"] == "query"]
    assert query["path"] == f"/v3/pay/transactions/out-trade-no/{key}?mchid={WECHAT_MCHID}"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


def test_a_query_answer_with_the_wrong_amount_settles_nothing(merchant_a, wechat_account, fake_wechat, clock):
    fake_wechat.answers["native"] = (200, {"code_url": "weixin://wxpay/bizpayurl?pr=abc"})
    payment = payment_create(
        merchant=merchant_a, data=payment_input(method="wechat_pay", currency="CNY", amount="88.88")
    )
    fake_wechat.answers["query"] = (
        200,
        {
            "appid": WECHAT_APPID,
            "mchid": WECHAT_MCHID,
            "out_trade_no": payment.attempts.get().idempotency_key,
            "trade_state": "SUCCESS",
            "amount": {"total": 1, "currency": "CNY"},
        },
    )

    clock(minutes=5)
    assert payment_reconcile(payment_id=payment.pk) == "query failed"

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION


def test_a_processing_payment_is_never_cancelled_only_queried(merchant_a, wechat_account, fake_wechat, clock):
    payment = PaymentFactory(merchant=merchant_a, method="wechat_pay", gateway="wechat_pay", currency="CNY")
    with transaction.atomic():
        transition_apply(lock_payment(payment.pk), "submit", actor="test")
        GatewayAttempt.objects.create(
            payment=payment,
            gateway="wechat_pay",
            idempotency_key=f"{payment.public_id}-1",
            status=GatewayAttempt.Status.ANSWERED,
            last_call_at=T0,
        )
    fake_wechat.answers["query"] = (
        200,
        {
            "appid": WECHAT_APPID,
            "mchid": WECHAT_MCHID,
            "trade_state": "USERPAYING",
            "amount": {"total": 1000},
        },
    )

    clock(hours=2)
    assert payment_reconcile(payment_id=payment.pk) == "pending"

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PROCESSING


def test_a_closed_order_found_by_query_cancels_through_the_allow_list(
    merchant_a, wechat_account, fake_wechat, clock
):
    fake_wechat.answers["native"] = (200, {"code_url": "weixin://wxpay/bizpayurl?pr=abc"})
    payment = payment_create(
        merchant=merchant_a, data=payment_input(method="wechat_pay", currency="CNY", amount="88.88")
    )
    fake_wechat.answers["query"] = (
        200,
        {
            "appid": WECHAT_APPID,
            "mchid": WECHAT_MCHID,
            "out_trade_no": payment.attempts.get().idempotency_key,
            "trade_state": "CLOSED",
            "amount": {"total": 8888, "currency": "CNY"},
        },
    )

    clock(minutes=3)
    reconcile_task()

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELLED


def test_an_approved_paypal_order_is_captured_by_reconciliation(
    merchant_a, paypal_account, fake_paypal, clock
):
    fake_paypal.answers["create_order"] = (200, order("PAYER_ACTION_REQUIRED"))
    payment = payment_create(
        merchant=merchant_a, data=payment_input(method="paypal", currency="USD", amount="12.50")
    )
    fake_paypal.answers["get_order"] = (200, order("APPROVED"))
    fake_paypal.answers["capture"] = (201, order("COMPLETED", [capture()]))

    clock(minutes=4)
    assert reconcile_task()["paypal"] == 0
    clock(minutes=6)
    assert reconcile_task()["paypal"] == 1

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert [r["name"] for r in fake_paypal.requests] == ["create_order", "get_order", "capture"]


def test_two_reconcilers_at_once_query_once(merchant_a, alipay_account, fake_alipay, clock):
    payment = alipay_payment(merchant_a, fake_alipay)
    fake_alipay.answers["alipay.trade.query"] = {
        "code": "40004",
        "msg": "x",
        "sub_code": "ACQ.TRADE_NOT_EXIST",
    }
    clock(minutes=3)

    outcomes = [payment_reconcile(payment_id=payment.pk), payment_reconcile(payment_id=payment.pk)]

    assert outcomes == ["pending", "not due"]
    assert len(queries(fake_alipay)) == 1
