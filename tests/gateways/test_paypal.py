"""PayPal: OAuth2 token, orders with approval link, capture, refunds, payouts, verified webhooks."""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from django.test import Client
from werkzeug import Response

from payments.gateways import get_gateway
from payments.models import Event, GatewayAttempt, GatewayCallback, PaymentStatus
from payments.services.lifecycle.locks import lock_payment
from payments.services.lifecycle.outcomes import answer_apply
from payments.services.lifecycle.transitions import transition_apply
from payments.services.payments import payment_cancel, payment_create
from payments.services.reconcile import payment_reconcile
from payments.services.refunds import refund_create
from tests.factories import PaymentFactory, payment_input
from tests.gateways.conftest import PAYPAL_WEBHOOK_ID
from tests.gateways.vendors import paypal_transmission

pytestmark = [pytest.mark.usefixtures("routes"), pytest.mark.django_db(transaction=True)]

ORDER_ID = "5O190127TN364715T"
APPROVE = f"https://www.sandbox.paypal.com/checkoutnow?token={ORDER_ID}"


def order(status: str, captures: list[dict] | None = None, value: str = "12.50") -> dict:
    unit = {"reference_id": "x", "amount": {"currency_code": "USD", "value": value}}
    if captures is not None:
        unit["payments"] = {"captures": captures}
    return {
        "id": ORDER_ID,
        "status": status,
        "purchase_units": [unit],
        "links": [{"href": APPROVE, "rel": "payer-action", "method": "GET"}],
    }


def capture(status: str = "COMPLETED", value: str = "12.50") -> dict:
    return {"id": "3C679366HH908993F", "status": status, "amount": {"currency_code": "USD", "value": value}}


def make_payment(merchant, fake):
    fake.answers["create_order"] = (200, order("PAYER_ACTION_REQUIRED"))
    return payment_create(
        merchant=merchant, data=payment_input(method="paypal", currency="USD", amount="12.50")
    )


def event(event_type: str, resource: dict, event_id: str = "WH-58D329510W468432D-8HN650336L201105X") -> bytes:
    body = {
        "id": event_id,
        "event_version": "1.0",
        "create_time": "2026-01-05T10:00:00.000Z",
        "resource_type": "capture",
        "event_type": event_type,
        "summary": "Payment completed",
        "resource": resource,
    }
    return json.dumps(body, indent=1).encode()  # PayPal's bytes are not our canonical JSON


def capture_resource(key: str, status: str = "COMPLETED", value: str = "12.50") -> dict:
    return {**capture(status, value), "invoice_id": key, "custom_id": key}


def deliver(body: bytes, headers: dict[str, str]):
    extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
    return Client().post("/callbacks/paypal/", data=body, content_type="application/json", **extra)


def key_of(payment) -> str:
    return payment.attempts.get(kind="payment").idempotency_key


def test_order_is_created_with_the_attempt_key_and_redirects_to_approval(
    merchant_a, paypal_account, fake_paypal
):
    payment = make_payment(merchant_a, fake_paypal)

    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.next_action == {"type": "redirect_to_url", "url": APPROVE}
    assert payment.gateway_reference == ORDER_ID
    [sent] = fake_paypal.requests
    key = key_of(payment)
    assert sent["request_id"] == key
    assert sent["content_type"] == "application/json"
    assert sent["json"] == {
        "intent": "CAPTURE",
        "purchase_units": [
            {
                "reference_id": payment.public_id,
                "invoice_id": key,
                "custom_id": key,
                "description": "ORDER-1",
                "amount": {"currency_code": "USD", "value": "12.50"},
            }
        ],
        "payment_source": {
            "paypal": {
                "experience_context": {
                    "user_action": "PAY_NOW",
                    "return_url": "https://paydesk.example/",
                    "cancel_url": "https://paydesk.example/",
                }
            }
        },
    }


def test_the_access_token_is_reused_and_renewed_when_refused(merchant_a, paypal_account, fake_paypal):
    payment = make_payment(merchant_a, fake_paypal)
    gateway = get_gateway("paypal")
    gateway.submit_payment(payment, payment.attempts.get())
    assert fake_paypal.tokens_issued == 1

    fake_paypal.valid_tokens.clear()  # PayPal revoked it early
    gateway.submit_payment(payment, payment.attempts.get())

    assert fake_paypal.tokens_issued == 2
    assert [r["request_id"] for r in fake_paypal.requests] == [key_of(payment)] * 3


def test_an_approved_order_is_captured_once_and_settles_the_payment(
    merchant_a, paypal_account, fake_paypal, keys
):
    payment = make_payment(merchant_a, fake_paypal)
    fake_paypal.answers["get_order"] = (200, order("APPROVED"))
    fake_paypal.answers["capture"] = (201, order("COMPLETED", [capture()]))
    resource = order("APPROVED")
    resource["purchase_units"][0].update(invoice_id=key_of(payment), custom_id=key_of(payment))
    body = event("CHECKOUT.ORDER.APPROVED", resource)

    response = deliver(body, paypal_transmission(keys["paypal"], PAYPAL_WEBHOOK_ID, body))

    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    captures = [r for r in fake_paypal.requests if r["name"] == "capture"]
    assert [(c["path"], c["request_id"]) for c in captures] == [
        (f"/v2/checkout/orders/{ORDER_ID}/capture", f"{key_of(payment)}-capture")
    ]
    verify = next(r for r in fake_paypal.requests if r["name"] == "verify")
    assert verify["raw"].endswith(b',"webhook_event":' + body + b"}")
    assert json.loads(verify["raw"])["webhook_id"] == PAYPAL_WEBHOOK_ID
    assert GatewayCallback.objects.get().status == GatewayCallback.Status.APPLIED


def test_a_capture_completed_webhook_settles_the_payment_once(merchant_a, paypal_account, fake_paypal, keys):
    payment = make_payment(merchant_a, fake_paypal)
    body = event("PAYMENT.CAPTURE.COMPLETED", capture_resource(key_of(payment)))
    headers = paypal_transmission(keys["paypal"], PAYPAL_WEBHOOK_ID, body)

    assert deliver(body, headers).status_code == 200
    assert deliver(body, headers).status_code == 200

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert Event.objects.filter(payment=payment, type="payment.succeeded").count() == 1
    assert list(GatewayCallback.objects.order_by("pk").values_list("status", flat=True)) == [
        "applied",
        "duplicate",
    ]


def test_forged_webhooks_change_nothing_and_are_recorded_rejected(
    merchant_a, paypal_account, fake_paypal, keys
):
    payment = make_payment(merchant_a, fake_paypal)
    key = key_of(payment)
    good = event("PAYMENT.CAPTURE.COMPLETED", capture_resource(key))
    wrong_amount = event("PAYMENT.CAPTURE.COMPLETED", capture_resource(key, value="1.00"))
    unknown = event("PAYMENT.CAPTURE.COMPLETED", capture_resource("pay_nope-1"))
    cases = {
        "wrong key": (good, paypal_transmission(keys["intruder"], PAYPAL_WEBHOOK_ID, good), "FAILURE"),
        "other webhook": (
            good,
            paypal_transmission(keys["paypal"], "8PT597110X687430LKGECATA", good),
            "FAILURE",
        ),
        "tampered body": (
            good.replace(b"Payment completed", b"Payment complete!"),
            paypal_transmission(keys["paypal"], PAYPAL_WEBHOOK_ID, good),
            "FAILURE",
        ),
        "wrong amount": (
            wrong_amount,
            paypal_transmission(keys["paypal"], PAYPAL_WEBHOOK_ID, wrong_amount),
            "does not match",
        ),
        "unknown invoice": (
            unknown,
            paypal_transmission(keys["paypal"], PAYPAL_WEBHOOK_ID, unknown),
            "unknown",
        ),
        "no headers": (good, {}, "missing PayPal transmission headers"),
        "not json": (b"{nope", {}, "malformed"),
    }
    events_before = Event.objects.filter(payment=payment).count()

    for name, (body, headers, reason) in cases.items():
        response = deliver(body, headers)
        assert response.status_code == 400, name
        row = GatewayCallback.objects.latest("pk")
        assert row.status == GatewayCallback.Status.REJECTED, name
        assert reason in row.reason, (name, row.reason)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert Event.objects.filter(payment=payment).count() == events_before


def test_verification_unavailable_rejects_so_paypal_redelivers(merchant_a, paypal_account, fake_paypal, keys):
    payment = make_payment(merchant_a, fake_paypal)
    fake_paypal.verify = lambda raw: Response("PayPal is down", status=503)
    body = event("PAYMENT.CAPTURE.COMPLETED", capture_resource(key_of(payment)))

    response = deliver(body, paypal_transmission(keys["paypal"], PAYPAL_WEBHOOK_ID, body))

    assert response.status_code == 400
    row = GatewayCallback.objects.get()
    assert row.status == GatewayCallback.Status.REJECTED
    assert "verification unavailable" in row.reason


def test_a_stale_denial_after_completion_is_ignored(merchant_a, paypal_account, fake_paypal, keys):
    payment = make_payment(merchant_a, fake_paypal)
    completed = event("PAYMENT.CAPTURE.COMPLETED", capture_resource(key_of(payment)), event_id="WH-1")
    denied = event(
        "PAYMENT.CAPTURE.DENIED", capture_resource(key_of(payment), status="DECLINED"), event_id="WH-2"
    )
    deliver(completed, paypal_transmission(keys["paypal"], PAYPAL_WEBHOOK_ID, completed))

    response = deliver(denied, paypal_transmission(keys["paypal"], PAYPAL_WEBHOOK_ID, denied))

    assert response.status_code == 200
    row = GatewayCallback.objects.latest("pk")
    assert row.status == GatewayCallback.Status.IGNORED
    assert "payment.failed not allowed while payment is succeeded" in row.reason
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


def test_refund_goes_to_the_orders_capture_with_the_refund_key(merchant_a, paypal_account, fake_paypal, keys):
    payment = make_payment(merchant_a, fake_paypal)
    completed = event("PAYMENT.CAPTURE.COMPLETED", capture_resource(key_of(payment)))
    deliver(completed, paypal_transmission(keys["paypal"], PAYPAL_WEBHOOK_ID, completed))
    fake_paypal.answers["get_order"] = (200, order("COMPLETED", [capture()]))
    fake_paypal.answers["refund"] = (201, {"id": "1JU08902781691411", "status": "COMPLETED"})
    payment.refresh_from_db()

    refund = refund_create(payment=payment, amount="2.50", reason="late delivery")

    sent = fake_paypal.requests[-1]
    refund_key = refund.attempts.get().idempotency_key
    assert sent["path"] == "/v2/payments/captures/3C679366HH908993F/refund"
    assert sent["request_id"] == refund_key
    assert sent["json"] == {
        "amount": {"value": "2.50", "currency_code": "USD"},
        "custom_id": refund_key,
        "note_to_payer": "late delivery",
    }
    assert refund.status == "succeeded"
    assert refund.payment.status == PaymentStatus.PARTIALLY_REFUNDED


def _processing_payout(merchant, number: int, **fields):
    payment = PaymentFactory(
        merchant=merchant, method="paypal", gateway="paypal", reference=f"PAYROLL-{number}", **fields
    )
    with transaction.atomic():
        transition_apply(lock_payment(payment.pk), "submit", actor="test")
        attempt = GatewayAttempt.objects.create(
            payment=payment, gateway="paypal", idempotency_key=f"{payment.public_id}-1", calls=1
        )
    return payment, attempt


def test_payouts_send_a_batch_and_items_settle_by_query_or_webhook(
    merchant_a, paypal_account, fake_paypal, keys
):
    ada, ada_attempt = _processing_payout(
        merchant_a, 1, beneficiary_account="ada@example.com", amount_minor=150000
    )
    bob, bob_attempt = _processing_payout(
        merchant_a, 2, beneficiary_account="PAYPALID42", beneficiary_email="", amount_minor=99
    )
    fake_paypal.answers["payouts"] = (
        201,
        {"batch_header": {"payout_batch_id": "5UXD2E8A7EBQJ", "batch_status": "PENDING"}},
    )

    results = get_gateway("paypal").submit_batch([(ada, ada_attempt), (bob, bob_attempt)])

    assert [(r.outcome, r.gateway_reference) for r in results] == [("processing", "5UXD2E8A7EBQJ")] * 2
    sent = fake_paypal.requests[-1]
    sender_batch_id = sent["json"]["sender_batch_header"]["sender_batch_id"]
    assert sender_batch_id.startswith("paydesk-") and sent["request_id"] == sender_batch_id
    assert sent["json"] == {
        "sender_batch_header": {"sender_batch_id": sender_batch_id, "email_subject": "You have a payout"},
        "items": [
            {
                "recipient_type": "EMAIL",
                "receiver": "ada@example.com",
                "amount": {"value": "1500.00", "currency": "USD"},
                "sender_item_id": ada_attempt.idempotency_key,
                "note": "PAYROLL-1",
            },
            {
                "recipient_type": "PAYPAL_ID",
                "receiver": "PAYPALID42",
                "amount": {"value": "0.99", "currency": "USD"},
                "sender_item_id": bob_attempt.idempotency_key,
                "note": "PAYROLL-2",
            },
        ],
    }
    # A repeat of the same chunk is the same payout batch at PayPal.
    get_gateway("paypal").submit_batch([(bob, bob_attempt), (ada, ada_attempt)])
    assert fake_paypal.requests[-1]["request_id"] == sender_batch_id
    for attempt, result in zip((ada_attempt, bob_attempt), results, strict=True):
        answer_apply(attempt=attempt, result=result)

    # Ada's item by webhook.
    item = {
        "payout_item_id": "8AELMXH8UB2P8",
        "transaction_status": "SUCCESS",
        "payout_batch_id": "5UXD2E8A7EBQJ",
        "payout_item": {
            "recipient_type": "EMAIL",
            "amount": {"value": "1500.00", "currency": "USD"},
            "receiver": "ada@example.com",
            "sender_item_id": ada_attempt.idempotency_key,
        },
    }
    body = event("PAYMENT.PAYOUTS-ITEM.SUCCEEDED", item)
    assert deliver(body, paypal_transmission(keys["paypal"], PAYPAL_WEBHOOK_ID, body)).status_code == 200
    ada.refresh_from_db()
    assert ada.status == PaymentStatus.SUCCEEDED

    # Bob's item by reconciliation: the payout batch says it failed.
    fake_paypal.answers["get_payouts"] = (
        200,
        {
            "batch_header": {"payout_batch_id": "5UXD2E8A7EBQJ", "batch_status": "SUCCESS"},
            "items": [
                {**item, "transaction_status": "SUCCESS"},
                {
                    "payout_item_id": "9BELMXH8UB2P9",
                    "transaction_status": "FAILED",
                    "errors": {"name": "RECEIVER_UNREGISTERED"},
                    "payout_item": {"sender_item_id": bob_attempt.idempotency_key},
                },
            ],
        },
    )
    assert payment_reconcile(payment_id=bob.pk, force=True) == "applied payment.failed"
    bob.refresh_from_db()
    assert (bob.status, bob.failure_code) == (PaymentStatus.FAILED, "receiver_unregistered")


def test_cancel_of_an_approved_order_never_captures_it(merchant_a, paypal_account, fake_paypal, keys):
    payment = make_payment(merchant_a, fake_paypal)
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    fake_paypal.answers["get_order"] = (200, order("APPROVED"))

    payment = payment_cancel(payment=payment)

    assert payment.status == PaymentStatus.CANCELLED
    # The buyer's approval arrives afterwards: nothing is captured.
    resource = order("APPROVED")
    resource["purchase_units"][0].update(invoice_id=key_of(payment), custom_id=key_of(payment))
    body = event("CHECKOUT.ORDER.APPROVED", resource)
    assert deliver(body, paypal_transmission(keys["paypal"], PAYPAL_WEBHOOK_ID, body)).status_code == 200
    assert not [r for r in fake_paypal.requests if r["name"] == "capture"]
    assert "needs no action while payment is cancelled" in GatewayCallback.objects.get().reason
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELLED
