"""PayPal Payouts as the payout rail of batch rows: one payout per chunk, item webhooks, unclaimed returns."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from payments.gateways import get_gateway
from payments.models import GatewayAttempt, Payment, PaymentBatch
from payments.services.batches.lifecycle import batch_approve
from tests.factories import PaymentFactory
from tests.gateways.conftest import PAYPAL_WEBHOOK_ID
from tests.gateways.vendors import paypal_transmission
from tests.payments.test_batch_support import csv_bytes, media, upload  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


@pytest.fixture(autouse=True)
def payout_route(settings):
    settings.PAYDESK_PAYOUT_ROUTES = {**settings.PAYDESK_PAYOUT_ROUTES, "paypal": "paypal"}
    settings.PAYDESK_BATCH_CHUNK_SIZE = 2


def item_event(event_type: str, key: str, value: str, status: str, item_id: str) -> bytes:
    resource = {
        "payout_item_id": item_id,
        "transaction_status": status,
        "payout_batch_id": "BATCH-1",
        "payout_item": {
            "recipient_type": "EMAIL",
            "amount": {"value": value, "currency": "USD"},
            "receiver": "x@example.com",
            "sender_item_id": key,
        },
    }
    body = {"id": f"WH-{event_type}-{item_id}", "event_type": event_type, "resource": resource}
    return json.dumps(body).encode()


def deliver(keys, body: bytes):
    headers = paypal_transmission(keys["paypal"], PAYPAL_WEBHOOK_ID, body)
    extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
    return Client().post("/callbacks/paypal/", data=body, content_type="application/json", **extra)


def test_a_batch_pays_one_payout_per_chunk_and_item_webhooks_settle_unclaimed_returns_reverse(
    merchant_a, alice, carol, paypal_account, fake_paypal, keys, django_capture_on_commit_callbacks
):
    fake_paypal.answers["payouts"] = lambda entry: (
        201,
        {"batch_header": {"payout_batch_id": f"PB-{len(fake_paypal.requests)}", "batch_status": "PENDING"}},
    )
    data = csv_bytes(
        [
            ("PP-1", "10.00", "USD", "paypal", "Ann", "ann@example.com"),
            ("PP-2", "20.00", "USD", "paypal", "Bo", "bo@example.com"),
            ("PP-3", "30.00", "USD", "paypal", "Cy", "cy@example.com"),
        ]
    )
    batch = upload(merchant_a, data, user=alice, capture=django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        batch_approve(batch=batch, user=carol)
    payouts = [r for r in fake_paypal.requests if r["name"] == "payouts"]
    assert [len(r["json"]["items"]) for r in payouts] == [2, 1]  # one payout per chunk of two
    assert not [r for r in fake_paypal.requests if r["name"] == "create_order"]
    keys_by_ref = {p.reference: p.attempts.get().idempotency_key for p in Payment.objects.filter(batch=batch)}
    assert set(Payment.objects.filter(batch=batch).values_list("status", flat=True)) == {"processing"}

    with django_capture_on_commit_callbacks(execute=True):
        deliver(
            keys, item_event("PAYMENT.PAYOUTS-ITEM.SUCCEEDED", keys_by_ref["PP-1"], "10.00", "SUCCESS", "I1")
        )
        deliver(keys, item_event("PAYMENT.PAYOUTS-ITEM.DENIED", keys_by_ref["PP-2"], "20.00", "DENIED", "I2"))
        deliver(
            keys,
            item_event("PAYMENT.PAYOUTS-ITEM.UNCLAIMED", keys_by_ref["PP-3"], "30.00", "UNCLAIMED", "I3"),
        )
    states = dict(Payment.objects.filter(batch=batch).values_list("reference", "status"))
    assert states == {"PP-1": "succeeded", "PP-2": "failed", "PP-3": "succeeded"}
    assert PaymentBatch.objects.get(pk=batch.pk).status == "completed"

    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(
            keys, item_event("PAYMENT.PAYOUTS-ITEM.RETURNED", keys_by_ref["PP-3"], "30.00", "RETURNED", "I3")
        )
    assert response.status_code == 200
    returned = Payment.objects.get(reference="PP-3")
    assert (returned.status, returned.failure_code) == ("reversed", "returned")
    assert returned.gateway_reference.startswith("PB-")  # the payout that carried it
    assert Payment.objects.get(reference="PP-2").failure_code == "denied"


def test_a_returned_item_never_seen_as_paid_has_failed(
    merchant_a, alice, carol, paypal_account, fake_paypal, keys, django_capture_on_commit_callbacks
):
    fake_paypal.answers["payouts"] = (
        201,
        {"batch_header": {"payout_batch_id": "PB-1", "batch_status": "PENDING"}},
    )
    batch = upload(
        merchant_a,
        csv_bytes([("PP-9", "5.00", "USD", "paypal", "Di", "di@example.com")]),
        user=alice,
        capture=django_capture_on_commit_callbacks,
    )
    with django_capture_on_commit_callbacks(execute=True):
        batch_approve(batch=batch, user=carol)
    key = Payment.objects.get(reference="PP-9").attempts.get().idempotency_key
    with django_capture_on_commit_callbacks(execute=True):
        deliver(keys, item_event("PAYMENT.PAYOUTS-ITEM.RETURNED", key, "5.00", "RETURNED", "I9"))
    payment = Payment.objects.get(reference="PP-9")
    assert (payment.status, payment.failure_code) == ("failed", "returned")


def test_a_batch_rows_retry_is_a_payout_of_one_not_an_order(merchant_a, paypal_account, fake_paypal, alice):
    batch = PaymentBatch.objects.create(merchant=merchant_a, status="processing")
    payment = PaymentFactory(
        merchant=merchant_a,
        batch=batch,
        method="paypal",
        gateway="paypal",
        beneficiary_account="ann@example.com",
    )
    attempt = GatewayAttempt.objects.create(
        payment=payment, gateway="paypal", idempotency_key="pay_x-2", number=2
    )
    fake_paypal.answers["payouts"] = (
        201,
        {"batch_header": {"payout_batch_id": "PB-7", "batch_status": "PENDING"}},
    )
    result = get_gateway("paypal").submit_payment(payment, attempt)
    assert (result.outcome, result.gateway_reference) == ("processing", "PB-7")
    assert [r["name"] for r in fake_paypal.requests] == ["payouts"]
    assert fake_paypal.requests[0]["json"]["items"][0]["sender_item_id"] == "pay_x-2"
