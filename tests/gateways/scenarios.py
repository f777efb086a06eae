"""One success notification per gateway, for a payment awaiting it: shared by the inbox tests."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.test import Client

from payments.services.payments import payment_create
from tests.factories import payment_input
from tests.gateways.conftest import ALIPAY_APP_ID, PAYPAL_WEBHOOK_ID, WECHAT_APIV3_KEY, WECHAT_PLATFORM_SERIAL
from tests.gateways.vendors import (
    alipay_notify_body,
    paypal_transmission,
    wechat_notification,
    wechat_signed_headers,
)


@dataclass
class Delivery:
    gateway: str
    body: bytes
    content_type: str
    headers: dict[str, str]
    accepted_status: int

    def post(self, client: Client | None = None):
        extra = {
            "HTTP_" + k.upper().replace("-", "_"): v
            for k, v in self.headers.items()
            if k.lower() != "content-type"
        }
        return (client or Client()).post(
            f"/callbacks/{self.gateway}/", data=self.body, content_type=self.content_type, **extra
        )


def success_delivery(gateway: str, merchant, request) -> tuple:
    """Create a payment awaiting its outcome at `gateway`; return (payment, its success notification)."""
    keys = request.getfixturevalue("keys")
    if gateway == "sandbox":
        wire = request.getfixturevalue("sandbox_wire")
        wire.hold = True
        payment = payment_create(merchant=merchant, data=payment_input())
        _url, body, headers = wire.held[0]
        return payment, Delivery("sandbox", body, "application/json", headers, 200)
    if gateway == "alipay":
        request.getfixturevalue("alipay_account")
        fake = request.getfixturevalue("fake_alipay")
        fake.answers["alipay.trade.precreate"] = lambda biz: {
            "code": "10000",
            "qr_code": "https://qr.alipay.com/x",
        }
        payment = payment_create(
            merchant=merchant, data=payment_input(method="alipay", currency="CNY", amount="88.88")
        )
        body = alipay_notify_body(
            keys["alipay"],
            app_id=ALIPAY_APP_ID,
            out_trade_no=payment.attempts.get().idempotency_key,
            total_amount="88.88",
            trade_status="TRADE_SUCCESS",
        )
        return payment, Delivery("alipay", body, "application/x-www-form-urlencoded; charset=utf-8", {}, 200)
    if gateway == "wechat_pay":
        request.getfixturevalue("wechat_account")
        fake = request.getfixturevalue("fake_wechat")
        fake.answers["native"] = (200, {"code_url": "weixin://wxpay/bizpayurl?pr=x"})
        payment = payment_create(
            merchant=merchant, data=payment_input(method="wechat_pay", currency="CNY", amount="88.88")
        )
        data = {
            "mchid": "1230000109",
            "appid": "wxd678efh567hg6787",
            "out_trade_no": payment.attempts.get().idempotency_key,
            "transaction_id": "4200000000202601050000000001",
            "trade_state": "SUCCESS",
            "amount": {"total": 8888, "payer_total": 8888, "currency": "CNY", "payer_currency": "CNY"},
        }
        body = wechat_notification(WECHAT_APIV3_KEY, "TRANSACTION.SUCCESS", data)
        headers = wechat_signed_headers(keys["wechat_platform"], WECHAT_PLATFORM_SERIAL, body)
        return payment, Delivery("wechat_pay", body, "application/json", headers, 204)
    if gateway == "paypal":
        request.getfixturevalue("paypal_account")
        fake = request.getfixturevalue("fake_paypal")
        fake.answers["create_order"] = (
            201,
            {
                "id": "5O190127TN364715T",
                "status": "CREATED",
                "links": [{"rel": "approve", "href": "https://p/x"}],
            },
        )
        payment = payment_create(merchant=merchant, data=payment_input(method="paypal", currency="USD"))
        key = payment.attempts.get().idempotency_key
        resource = {
            "id": "3C679366HH908993F",
            "status": "COMPLETED",
            "amount": {"currency_code": "USD", "value": "12.50"},
            "invoice_id": key,
            "custom_id": key,
        }
        body = (
            b'{"id":"WH-2WR32451HC0233532-67976317FL4543714","event_type":"PAYMENT.CAPTURE.COMPLETED",'
            b'"resource":' + json.dumps(resource).encode() + b"}"
        )
        headers = paypal_transmission(keys["paypal"], PAYPAL_WEBHOOK_ID, body)
        return payment, Delivery("paypal", body, "application/json", headers, 200)
    raise ValueError(gateway)
