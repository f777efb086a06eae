"""A worker killed mid-send loses no delivery, and no attempt is ever sent twice."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from payments.models import Delivery, DeliveryStatus
from payments.services import sweeper
from payments.services.notifications import fanout
from payments.services.notifications import sending as notifications
from payments.services.notifications.sending import (
    deliveries_send,
    delivery_claim,
    delivery_send,
    lease_seconds,
)
from tests.channels.conftest import deliveries, final_payment, record

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing after it runs, no except clause catches it."""


def _attempts_seen(receiver) -> Counter:
    """How many requests arrived for each (webhook-id, attempt number)."""
    return Counter((r.headers["webhook-id"], r.headers["paydesk-attempt"]) for r in receiver.requests)


def _three_pending(merchant_a) -> tuple[list, list[Delivery]]:
    payment = final_payment(merchant_a)
    events = [record(payment, t) for t in ("payment.succeeded", "payment.refunded", "refund.succeeded")]
    rows = deliveries(channel="webhook")
    assert [d.attempts for d in rows] == [0, 0, 0]
    return events, rows


def _recovers_after_the_lease(receiver, events, time_machine) -> None:
    # Within the lease nobody touches the claimed attempts.
    sweeper.sweep()
    before = len(receiver.requests)
    assert {d.status for d in deliveries(channel="webhook")} == {DeliveryStatus.PENDING}
    # After it the sweeper sends every one again, as a new attempt, with the same webhook-id.
    time_machine.move_to(T0 + timedelta(seconds=lease_seconds()), tick=False)
    sweeper.sweep()
    assert len(receiver.requests) == before + 3
    for delivery in deliveries(channel="webhook"):
        assert delivery.status == DeliveryStatus.SUCCEEDED
        assert delivery.attempts == 2
    assert {r.headers["webhook-id"] for r in receiver.requests} == {e.public_id for e in events}
    assert set(_attempts_seen(receiver).values()) == {1}, "no attempt was ever sent twice"
    assert all(r.verified is not None for r in receiver.requests)


@pytest.mark.django_db
def test_a_worker_killed_after_sending_before_recording_loses_nothing(
    merchant_a, endpoint_a, receiver, time_machine, monkeypatch
):
    time_machine.move_to(T0, tick=False)
    events, rows = _three_pending(merchant_a)

    def killed(*args, **kwargs):
        raise WorkerKilled

    monkeypatch.setattr(notifications, "_record", killed)
    with pytest.raises(WorkerKilled):
        deliveries_send(delivery_ids=[d.pk for d in rows])
    monkeypatch.undo()
    assert len(receiver.requests) == 3
    for delivery in deliveries(channel="webhook"):
        assert delivery.status == DeliveryStatus.PENDING
        assert delivery.attempts == 1, "the attempt was counted before the send"
    _recovers_after_the_lease(receiver, events, time_machine)


@pytest.mark.django_db
def test_a_worker_killed_in_the_middle_of_a_batch_loses_nothing(
    merchant_a, endpoint_a, receiver, time_machine, monkeypatch
):
    time_machine.move_to(T0, tick=False)
    events, rows = _three_pending(merchant_a)
    transport = notifications.get_transport("webhook")
    real_send = transport.send
    calls = []

    def dies_on_second(delivery):
        calls.append(delivery.pk)
        if len(calls) == 2:
            raise WorkerKilled
        return real_send(delivery)

    monkeypatch.setattr(transport, "send", dies_on_second)
    with pytest.raises(WorkerKilled):
        deliveries_send(delivery_ids=[d.pk for d in rows])
    monkeypatch.undo()
    assert receiver.ids == [events[0].public_id]
    assert [d.attempts for d in deliveries(channel="webhook")] == [1, 1, 1]
    _recovers_after_the_lease(receiver, events, time_machine)


@pytest.mark.django_db
def test_a_worker_killed_before_sending_is_recovered_too(
    merchant_a, endpoint_a, receiver, time_machine, monkeypatch
):
    time_machine.move_to(T0, tick=False)
    event = record(final_payment(merchant_a))
    [delivery] = deliveries(event=event, channel="webhook")
    transport = notifications.get_transport("webhook")

    def dies(_delivery):
        raise WorkerKilled

    monkeypatch.setattr(transport, "send", dies)
    with pytest.raises(WorkerKilled):
        delivery_send(delivery_id=delivery.pk)
    monkeypatch.undo()
    assert receiver.requests == []
    time_machine.move_to(T0 + timedelta(seconds=lease_seconds()), tick=False)
    sweeper.sweep()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempts == 2
    assert receiver.ids == [event.public_id]


@pytest.mark.django_db
def test_an_attempt_can_be_claimed_once(merchant_a, endpoint_a, time_machine):
    time_machine.move_to(T0, tick=False)
    event = record(final_payment(merchant_a))
    [delivery] = deliveries(event=event)
    assert delivery_claim(delivery.pk) is not None
    assert delivery_claim(delivery.pk) is None
    assert delivery_send(delivery_id=delivery.pk) == ""
    delivery.refresh_from_db()
    assert delivery.attempts == 1


@pytest.mark.django_db
def test_an_outcome_arriving_after_the_lease_changes_nothing(merchant_a, endpoint_a, receiver, time_machine):
    time_machine.move_to(T0, tick=False)
    event = record(final_payment(merchant_a))
    [delivery] = deliveries(event=event)
    slow = delivery_claim(delivery.pk)
    time_machine.move_to(T0 + timedelta(seconds=lease_seconds()), tick=False)
    assert delivery_send(delivery_id=delivery.pk) == DeliveryStatus.SUCCEEDED  # attempt 2, by another worker
    transport = notifications.get_transport("webhook")
    assert notifications.delivery_attempt(slow, transport) == "superseded"
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.status == DeliveryStatus.SUCCEEDED


@pytest.mark.django_db
def test_the_sweeper_dead_letters_a_last_attempt_that_never_reported(merchant_a, endpoint_a, time_machine):
    time_machine.move_to(T0, tick=False)
    event = record(final_payment(merchant_a))
    [delivery] = deliveries(event=event)
    Delivery.objects.filter(pk=delivery.pk).update(attempts=delivery.max_attempts - 1)
    assert delivery_claim(delivery.pk) is not None  # the last attempt; its worker dies
    time_machine.move_to(T0 + timedelta(seconds=lease_seconds()), tick=False)
    counts = sweeper.sweep()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD
    assert counts["deliveries_dead"] == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_send_one_attempt_once(merchant_a, endpoint_a, receiver, monkeypatch):
    # Real commits here: keep the on-commit hook from sending before the workers race for it.
    monkeypatch.setattr(fanout, "enqueue_on_commit", lambda *args: None)
    event = record(final_payment(merchant_a))
    [delivery] = deliveries(event=event)
    barrier = threading.Barrier(8)
    results: list[str] = []

    def worker():
        try:
            barrier.wait()
            results.append(delivery_send(delivery_id=delivery.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [""] * 7 + [DeliveryStatus.SUCCEEDED]
    assert receiver.ids == [event.public_id]
    delivery.refresh_from_db()
    assert delivery.attempts == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_chunk_workers_send_each_attempt_once(merchant_a, endpoint_a, receiver, monkeypatch):
    monkeypatch.setattr(fanout, "enqueue_on_commit", lambda *args: None)
    payment = final_payment(merchant_a)
    events = [record(payment, f"payment.{s}") for s in ("succeeded", "refunded", "reversed", "failed")]
    ids = [d.pk for d in deliveries(channel="webhook")]
    barrier = threading.Barrier(4)
    results: list[dict] = []

    def worker():
        try:
            barrier.wait()
            results.append(deliveries_send(delivery_ids=ids))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.get(DeliveryStatus.SUCCEEDED, 0) for r in results) == len(events)
    assert sorted(receiver.ids) == sorted(e.public_id for e in events)
    assert {d.attempts for d in deliveries(channel="webhook")} == {1}
