"""Races settled by the database (PostgreSQL, real threads)."""

import json
import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client

from payments.gateways.sandbox import sign
from payments.models import Event, GatewayAttempt, GatewayCallback, Payment, Refund, SandboxOperation
from payments.services.payments import payment_create, payment_submit
from payments.services.refunds import refund_create
from payments.validation import PaymentInvalid
from tests.factories import PaymentFactory, payment_input

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(n: int, fn: Callable[[int], object]) -> list:
    """Run fn(i) in n threads released at the same instant; return results or exceptions."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def target(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:  # collected and asserted on by the caller
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_twenty_threads_submitting_one_payment_make_one_attempt(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    payment = PaymentFactory(merchant=merchant_a)
    results = run_together(20, lambda i: payment_submit(payment_id=payment.pk))
    assert not [r for r in results if isinstance(r, Exception)]
    assert GatewayAttempt.objects.filter(payment=payment).count() == 1
    assert SandboxOperation.objects.filter(payment_reference=payment.public_id).count() == 1
    assert Event.objects.filter(payment=payment, type="payment.processing").count() == 1


def test_twenty_concurrent_deliveries_of_one_callback_make_one_transition(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    payment = payment_create(merchant=merchant_a, data=payment_input())
    body = json.dumps(
        {
            "id": "sbxevt_race",
            "type": "payment.succeeded",
            "created": int(time.time()),
            "data": {"attempt_key": f"{payment.public_id}-1", "gateway_reference": "sbx_r"},
        }
    ).encode()
    header = sign(body, int(time.time()))

    def deliver(i):
        return (
            Client()
            .post(
                "/callbacks/sandbox/",
                data=body,
                content_type="application/json",
                HTTP_X_SANDBOX_SIGNATURE=header,
            )
            .status_code
        )

    results = run_together(20, deliver)
    assert results == [200] * 20
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    assert Event.objects.filter(payment=payment, type="payment.succeeded").count() == 1
    assert GatewayCallback.objects.filter(status="applied").count() == 1
    assert GatewayCallback.objects.filter(status="duplicate").count() == 19


def test_refund_race_cannot_refund_more_than_captured(merchant_a, sandbox_wire):
    payment = payment_create(merchant=merchant_a, data=payment_input(amount="100.00"))
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    results = run_together(20, lambda i: refund_create(payment=payment, amount="15.00"))
    ok = [r for r in results if isinstance(r, Refund)]
    refused = [r for r in results if isinstance(r, PaymentInvalid)]
    assert len(ok) == 6 and len(refused) == 14, results
    payment.refresh_from_db()
    assert payment.refunded_minor == 9000
    assert payment.status == "partially_refunded"
    assert sum(Refund.objects.filter(payment=payment).values_list("amount_minor", flat=True)) <= 10000


def test_concurrent_creation_with_one_reference_stores_one_payment(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    results = run_together(10, lambda i: payment_create(merchant=merchant_a, data=payment_input()))
    assert sum(isinstance(r, Payment) for r in results) == 1
    assert all(isinstance(r, (Payment, PaymentInvalid)) for r in results), results
    assert Payment.objects.count() == 1
