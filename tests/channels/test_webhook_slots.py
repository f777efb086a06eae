"""Per-merchant webhook send slots: one merchant's slow endpoint cannot hold every worker.

A merchant's webhooks are sent only by a worker holding one of its slots; a
task that finds them held claims nothing and leaves its deliveries due for the
holder, which sends the merchant's other due webhooks before it lets go. An
endpoint that gives no answer is tried once per task.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from payments.models import Delivery, DeliveryStatus, WebhookSendSlot
from payments.services.notifications import sending
from payments.services.notifications.endpoints import webhook_endpoint_create
from payments.services.notifications.sending import deliveries_send, delivery_send, lease_seconds
from payments.services.notifications.slots import slot_free, slot_take
from tests.channels.conftest import deliveries, final_payment, record

pytestmark = pytest.mark.django_db

T0 = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)


def _closed_port_url() -> str:
    """A loopback URL where nothing listens: the connection is refused at once (no HTTP answer)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


def _events(merchant, n: int, type_: str = "payment.succeeded") -> list:
    payment = final_payment(merchant)
    return [record(payment, type_) for _ in range(n)]


def test_a_delivery_whose_merchant_has_every_slot_held_is_not_claimed_and_stays_due(
    merchant_a, endpoint_a, receiver
):
    [event] = _events(merchant_a, 1)
    [delivery] = deliveries(event=event)
    held = slot_take(merchant_a.pk, lease=60)

    assert delivery_send(delivery_id=delivery.pk) == ""

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0), "no attempt was counted"
    assert receiver.requests == []
    slot_free(held)
    assert delivery_send(delivery_id=delivery.pk) == DeliveryStatus.SUCCEEDED
    assert receiver.ids == [event.public_id]


def test_the_slot_holder_sends_the_merchants_other_due_webhooks_too(merchant_a, endpoint_a, receiver):
    events = _events(merchant_a, 3)
    first = deliveries(event=events[0])[0]

    assert delivery_send(delivery_id=first.pk) == DeliveryStatus.SUCCEEDED

    assert sorted(receiver.ids) == sorted(e.public_id for e in events)
    assert {d.status for d in deliveries(channel="webhook")} == {DeliveryStatus.SUCCEEDED}
    assert WebhookSendSlot.objects.get(merchant=merchant_a).holder == "", "the slot was let go"


def test_another_merchant_is_not_held_back_by_a_busy_one(merchant_a, merchant_b, endpoint_a, receiver):
    webhook_endpoint_create(merchant=merchant_b, url=receiver.url)
    slot_take(merchant_a.pk, lease=60)
    [theirs] = _events(merchant_b, 1)
    [mine] = _events(merchant_a, 1)

    sent = deliveries_send(delivery_ids=[d.pk for d in deliveries(channel="webhook")])

    assert receiver.ids == [theirs.public_id]
    assert sent == {"merchant_busy": 1, "skipped": 0, "left_for_sweeper": 0, DeliveryStatus.SUCCEEDED: 1}
    [waiting] = deliveries(event=mine)
    assert (waiting.status, waiting.attempts) == (DeliveryStatus.PENDING, 0)


def test_an_endpoint_that_gives_no_answer_is_tried_once_per_task(merchant_a, endpoint_a, receiver):
    down = webhook_endpoint_create(merchant=merchant_a, url=_closed_port_url())[0]
    events = _events(merchant_a, 4)
    to_down = deliveries(endpoint=down)
    assert len(to_down) == 4

    counts = deliveries_send(delivery_ids=[d.pk for d in deliveries(channel="webhook")])

    attempts = sorted(d.attempts for d in deliveries(endpoint=down))
    assert attempts == [0, 0, 0, 1], "one attempt; the others given back, still due"
    assert {d.status for d in deliveries(endpoint=down)} == {DeliveryStatus.PENDING}
    assert counts["left_for_sweeper"] == 3
    assert sorted(receiver.ids) == sorted(e.public_id for e in events), "the healthy endpoint got all"


def test_a_dead_workers_slot_is_free_again_after_its_lease(merchant_a, time_machine):
    time_machine.move_to(T0, tick=False)
    assert slot_take(merchant_a.pk, lease=lease_seconds()) is not None  # its worker dies holding it
    assert slot_take(merchant_a.pk, lease=lease_seconds()) is None
    time_machine.move_to(T0 + timedelta(seconds=lease_seconds()), tick=False)
    assert slot_take(merchant_a.pk, lease=lease_seconds()) is not None


def test_the_budget_is_a_setting(settings, merchant_a, merchant_b):
    settings.PAYDESK_WEBHOOK_SLOTS_PER_MERCHANT = 2
    taken = [slot_take(merchant_a.pk, lease=60) for _ in range(3)]
    assert [slot is not None for slot in taken] == [True, True, False]
    assert slot_take(merchant_b.pk, lease=60) is not None, "budgets are per merchant"


def test_one_merchants_backlog_does_not_crowd_the_others_out_of_a_sweep(
    merchant_a, merchant_b, endpoint_a, receiver, monkeypatch
):
    webhook_endpoint_create(merchant=merchant_b, url=receiver.url)
    _events(merchant_a, 5)
    [theirs] = _events(merchant_b, 1)
    now = timezone.now()
    for age, delivery in enumerate(deliveries(merchant=merchant_a)):
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now - timedelta(hours=1, minutes=age))
    [b_delivery] = deliveries(event=theirs)
    Delivery.objects.filter(pk=b_delivery.pk).update(next_attempt_at=now - timedelta(minutes=1))
    monkeypatch.setattr(sending, "SWEEP_LIMIT", 4)
    monkeypatch.setattr(sending, "SWEEP_PER_MERCHANT", 2)
    enqueued: list[int] = []
    monkeypatch.setattr(sending, "enqueue", lambda func, pk: enqueued.append(pk))

    counts = sending.deliveries_sweep(now=now)

    assert counts["deliveries"] == 3
    assert b_delivery.pk in enqueued, "merchant B's retry is swept despite A's older backlog"
    assert len(set(enqueued) & {d.pk for d in deliveries(merchant=merchant_a)}) == 2
