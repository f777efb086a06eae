"""Twenty concurrent deliveries of one success notification: one transition, one Event (PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from payments.models import Event, GatewayCallback, PaymentStatus
from tests.gateways.scenarios import success_delivery

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.usefixtures("routes"),
    pytest.mark.django_db(transaction=True),
]

THREADS = 20


def deliver_together(delivery) -> list:
    """POST the same notification from THREADS real threads released at one instant."""
    barrier = threading.Barrier(THREADS)
    results: list = [None] * THREADS

    def target(i: int) -> None:
        client = Client()
        try:
            barrier.wait()
            results[i] = delivery.post(client).status_code
        except Exception as exc:  # asserted on below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


@pytest.mark.parametrize("gateway", ["sandbox", "alipay", "wechat_pay"])
def test_twenty_concurrent_deliveries_of_one_success_make_one_transition(gateway, merchant_a, request):
    payment, delivery = success_delivery(gateway, merchant_a, request)
    events_before = Event.objects.filter(payment=payment).count()

    results = deliver_together(delivery)

    assert results == [delivery.accepted_status] * THREADS
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert Event.objects.filter(payment=payment, type="payment.succeeded").count() == 1
    assert Event.objects.filter(payment=payment).count() == events_before + 1
    statuses = list(GatewayCallback.objects.filter(gateway=gateway).values_list("status", flat=True))
    assert sorted(statuses) == ["applied"] + ["duplicate"] * (THREADS - 1)
