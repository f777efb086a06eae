"""Money never moves silently: cancels close the gateway's order first, late and superseded successes
are incidents (refunded when the merchant asks), a suspended merchant moves nothing."""

import json
import time
from unittest import mock

import pytest
from django.db import transaction
from django.test import Client

from merchants.models import Merchant
from payments.gateways import GatewayCallInTransaction, GatewayError, GatewayResult, Outcome, http_call
from payments.gateways import sandbox as sandbox_gateway
from payments.gateways.sandbox import SandboxGateway, deliver_notices
from payments.models import (
    Delivery,
    Event,
    GatewayAttempt,
    GatewayCallback,
    Incident,
    Payment,
    PaymentStatus,
    Refund,
    SandboxNotice,
    SandboxOperation,
)
from payments.services.lifecycle.attempts import gateway_call
from payments.services.payments import PaymentStateError, payment_cancel, payment_create, payment_retry
from tests.factories import payment_input

pytestmark = pytest.mark.django_db(transaction=True)


def create(merchant, account, **overrides):
    return payment_create(merchant=merchant, data=payment_input(beneficiary_account=account, **overrides))


def sandbox_callback(type: str, attempt_key: str, **data) -> int:
    """Send a correctly signed sandbox callback for `attempt_key`, as the sandbox would."""
    body = json.dumps(
        {
            "id": f"sbxevt_test_{attempt_key}_{type}",
            "type": type,
            "created": int(time.time()),
            "data": {"attempt_key": attempt_key, "gateway_reference": "sbx_late", **data},
        }
    ).encode()
    response = Client().post(
        "/callbacks/sandbox/",
        data=body,
        content_type="application/json",
        HTTP_X_SANDBOX_SIGNATURE=sandbox_gateway.sign(body, int(time.time())),
    )
    return response.status_code


# Cancel closes the order at the gateway first --------------------------------------------------


def test_cancel_while_requires_action_closes_the_order_so_it_can_never_be_paid(merchant_a, sandbox_wire):
    sandbox_wire.hold = True  # the customer has not authenticated yet: the success is still pending
    payment = create(merchant_a, "4000000000003155")
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    op = SandboxOperation.objects.get()
    assert op.notices.filter(sent_at=None).exists()

    payment = payment_cancel(payment=payment)

    assert payment.status == PaymentStatus.CANCELLED
    op.refresh_from_db()
    assert op.answer["closed"] is True
    assert not SandboxNotice.objects.filter(operation=op).exists()
    sandbox_wire.hold = False
    assert deliver_notices(op.pk) == 0  # nothing left that could pay it
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.CANCELLED
    assert not Incident.objects.exists()


def test_cancel_after_the_customer_paid_follows_the_paid_path(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    payment = create(merchant_a, "4000000000003155")
    # The sandbox delivered its success, but our side never heard of it (the callback was lost).
    SandboxNotice.objects.update(sent_at="2026-01-01T00:00:00Z")

    with pytest.raises(PaymentStateError) as refused:
        payment_cancel(payment=payment)

    assert refused.value.code == "already_paid"
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED


def test_cancel_changes_nothing_when_the_gateway_cannot_close(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    payment = create(merchant_a, "4000000000003155")
    with mock.patch.object(SandboxGateway, "close", autospec=True, side_effect=GatewayError("timeout")):
        with pytest.raises(PaymentStateError) as refused:
            payment_cancel(payment=payment)
    assert refused.value.code == "gateway_unavailable"
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.REQUIRES_ACTION


def test_cancel_api_answers_409_already_paid(merchant_a, key_a, sandbox_wire):
    sandbox_wire.hold = True
    payment = create(merchant_a, "4000000000003155")
    SandboxNotice.objects.update(sent_at="2026-01-01T00:00:00Z")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key_a}")
    response = client.post(f"/api/v1/payments/{payment.public_id}/cancel")
    assert response.status_code == 409
    assert response.json()["code"] == "already_paid"


# Late and superseded successes -----------------------------------------------------------------


def _cancelled_while_still_payable(merchant):
    """A payment cancelled although the gateway's order stayed payable (e.g. an unscanned Alipay QR code)."""
    payment = create(merchant, "4000000000003155")
    closed = GatewayResult(outcome=Outcome.CLOSED)
    with mock.patch.object(SandboxGateway, "close", autospec=True, return_value=closed):
        payment = payment_cancel(payment=payment)
    assert payment.status == PaymentStatus.CANCELLED
    return payment


def test_a_success_after_cancel_is_an_incident_refunded_automatically(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    payment = _cancelled_while_still_payable(merchant_a)
    sandbox_wire.hold = False

    deliver_notices(SandboxOperation.objects.get(kind="payment").pk)  # the customer paid after all

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELLED  # our state stays: the money goes back
    callback = GatewayCallback.objects.filter(event_type="payment.succeeded").get()
    assert callback.status == GatewayCallback.Status.IGNORED
    assert "not allowed while payment is cancelled" in callback.reason
    incident = Incident.objects.get()
    assert (incident.kind, incident.payment_id, incident.amount_minor) == (
        "late_success",
        payment.pk,
        payment.amount_minor,
    )
    assert Event.objects.filter(payment=payment, type="payment.late_success").count() == 1
    assert Delivery.objects.filter(type="incident.late_success", channel="inapp").exists()
    refund = Refund.objects.get()
    assert refund.kind == Refund.Kind.LATE_SUCCESS and refund.status == "succeeded"
    assert refund.source_attempt_id == incident.attempt_id
    assert refund.amount_minor == payment.amount_minor
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED and incident.refund_id == refund.pk
    assert payment.refunded_minor == 0  # a requested refund's total is untouched


def test_the_same_late_success_reported_twice_is_one_incident(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    payment = _cancelled_while_still_payable(merchant_a)
    key = GatewayAttempt.objects.get(payment=payment, kind="payment").idempotency_key
    assert sandbox_callback("payment.succeeded", key) == 200
    assert sandbox_callback("payment.succeeded", key, note="again") == 200
    assert Incident.objects.count() == 1
    assert Refund.objects.filter(kind="late_success").count() == 1


def test_a_success_after_failure_is_an_incident_refunded_only_when_the_merchant_asks(
    merchant_a, sandbox_wire
):
    payment = create(merchant_a, "4000000000000051")  # insufficient funds: failed
    key = GatewayAttempt.objects.get(payment=payment).idempotency_key
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.FAILED

    sandbox_callback("payment.succeeded", key)
    assert Incident.objects.get().status == Incident.Status.OPEN
    assert not Refund.objects.exists()

    other = create(merchant_a, "4000000000000051", reference="R-2")
    Merchant.objects.filter(pk=merchant_a.pk).update(late_success_refund="cancelled_and_failed")
    sandbox_callback("payment.succeeded", GatewayAttempt.objects.get(payment=other).idempotency_key)
    assert Refund.objects.get().payment_id == other.pk


def test_an_outcome_for_a_superseded_attempt_moves_nothing_and_a_success_is_an_incident(
    merchant_a, sandbox_wire
):
    payment = create(merchant_a, "4000000000000119")  # fails its first attempt, retryable
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.FAILED
    sandbox_wire.hold = True
    payment = payment_retry(payment=payment)
    assert payment.status == PaymentStatus.PROCESSING
    first = GatewayAttempt.objects.get(payment=payment, number=1)

    sandbox_callback("payment.succeeded", first.idempotency_key)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PROCESSING
    callback = GatewayCallback.objects.filter(event_type="payment.succeeded").latest("pk")
    assert callback.status == GatewayCallback.Status.IGNORED
    assert "attempt 1 superseded by attempt 2" in callback.reason
    incident = Incident.objects.get()
    assert incident.attempt_id == first.pk and incident.status == Incident.Status.OPEN

    sandbox_callback("payment.failed", first.idempotency_key, failure_code="card_declined")
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PROCESSING


# Calls to a gateway never happen inside a transaction ---------------------------------------------


def test_gateway_call_refuses_to_run_inside_a_transaction():
    calls = []
    with transaction.atomic():
        with pytest.raises(GatewayCallInTransaction):
            gateway_call(lambda: calls.append("called"))
        with pytest.raises(GatewayCallInTransaction):
            http_call("GET", "http://127.0.0.1:9/never")
    assert calls == []
    assert gateway_call(lambda: "answered") == "answered"
