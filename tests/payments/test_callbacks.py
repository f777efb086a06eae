"""The sandbox callback inbox: verified, stored, deduplicated, applied once through the allow-list."""

import json
import time

import pytest
from django.test import Client

from payments.gateways.sandbox import sign
from payments.models import Event, GatewayCallback, Payment
from payments.services.payments import payment_create
from tests.factories import payment_input

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def processing_payment(merchant_a, sandbox_wire):
    sandbox_wire.hold = True  # keep the sandbox's own callbacks back: the tests send them
    return payment_create(merchant=merchant_a, data=payment_input())


def body_for(payment, type_="payment.succeeded", event_id="sbxevt_test1", **data):
    return json.dumps(
        {
            "id": event_id,
            "type": type_,
            "created": int(time.time()),
            "data": {"attempt_key": f"{payment.public_id}-1", "gateway_reference": "sbx_x", **data},
        }
    ).encode()


def post(body, signature=None, timestamp=None, secret=None):
    ts = int(time.time()) if timestamp is None else timestamp
    header = signature if signature is not None else sign(body, ts, secret)
    return Client().post(
        "/callbacks/sandbox/", data=body, content_type="application/json", HTTP_X_SANDBOX_SIGNATURE=header
    )


def test_valid_callback_is_applied(processing_payment):
    response = post(body_for(processing_payment))
    assert response.status_code == 200
    processing_payment.refresh_from_db()
    assert processing_payment.status == "succeeded"


@pytest.mark.parametrize(
    "forge",
    ["wrong_secret", "tampered_body", "no_header", "garbage_header", "stale", "future"],
)
def test_forged_or_replayed_callback_changes_nothing_and_is_recorded_rejected(processing_payment, forge):
    body = body_for(processing_payment)
    now = int(time.time())
    if forge == "wrong_secret":
        response = post(body, secret="not-the-secret")
    elif forge == "tampered_body":
        good = sign(body, now)
        response = post(body.replace(b"succeeded", b"failed"), signature=good)
    elif forge == "no_header":
        response = post(body, signature="")
    elif forge == "garbage_header":
        response = post(body, signature="t=abc,v1=zz")
    elif forge == "stale":
        response = post(body, timestamp=now - 360)
    else:
        response = post(body, timestamp=now + 360)
    assert response.status_code == 400
    processing_payment.refresh_from_db()
    assert processing_payment.status == "processing"
    row = GatewayCallback.objects.get()
    assert row.status == "rejected" and row.reason


def test_duplicate_callback_changes_nothing(processing_payment):
    body = body_for(processing_payment)
    assert post(body).status_code == 200
    events = Event.objects.count()
    assert post(body).status_code == 200
    assert Event.objects.count() == events
    statuses = sorted(GatewayCallback.objects.values_list("status", flat=True))
    assert statuses == ["applied", "duplicate"]


def test_stale_failure_after_success_is_ignored_with_reason(processing_payment):
    post(body_for(processing_payment))
    post(body_for(processing_payment, "payment.failed", "sbxevt_late", failure_code="card_declined"))
    processing_payment.refresh_from_db()
    assert processing_payment.status == "succeeded"
    late = GatewayCallback.objects.get(event_id="sbxevt_late")
    assert late.status == "ignored"
    assert "not allowed while payment is succeeded" in late.reason


def test_callback_for_unknown_attempt_is_ignored(processing_payment):
    body = json.dumps(
        {"id": "sbxevt_x", "type": "payment.succeeded", "created": 1, "data": {"attempt_key": "pay_nope-1"}}
    ).encode()
    assert post(body).status_code == 200
    assert GatewayCallback.objects.get().status == "ignored"


def test_unknown_event_type_is_rejected(processing_payment):
    response = post(body_for(processing_payment, "payment.teleported"))
    assert response.status_code == 400
    assert GatewayCallback.objects.get().status == "rejected"


def test_unknown_gateway_is_404(db):
    assert (
        Client().post("/callbacks/nowhere/", data=b"{}", content_type="application/json").status_code == 404
    )


def test_multi_result_callback_applies_each_payment(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    first = payment_create(merchant=merchant_a, data=payment_input(reference="A1"))
    second = payment_create(merchant=merchant_a, data=payment_input(reference="A2"))
    body = json.dumps(
        {
            "id": "sbxevt_many",
            "type": "payment.succeeded",
            "created": int(time.time()),
            "data": {
                "results": [
                    {"type": "payment.succeeded", "attempt_key": f"{first.public_id}-1"},
                    {"type": "payment.failed", "attempt_key": f"{second.public_id}-1", "failure_code": "x"},
                ]
            },
        }
    ).encode()
    assert post(body).status_code == 200
    assert Payment.objects.get(pk=first.pk).status == "succeeded"
    assert Payment.objects.get(pk=second.pk).status == "failed"
