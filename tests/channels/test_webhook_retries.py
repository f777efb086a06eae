"""Retries on the documented schedule; a 410 or a day of failing disables the endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from merchants.models import WebhookEndpoint
from payments.channels.webhook import SCHEDULE
from payments.models import DeliveryStatus, Notification
from payments.services import sweeper
from tests.channels.conftest import deliveries, final_payment, record

pytestmark = pytest.mark.django_db

T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)


def test_schedule_is_the_documented_one():
    assert SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)


def test_a_receiver_down_then_back_gets_each_event_once_per_attempt_with_the_same_id(
    merchant_a, endpoint_a, receiver, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(T0, tick=False)
    receiver.status = 503
    payment = final_payment(merchant_a)
    with django_capture_on_commit_callbacks(execute=True):
        events = [record(payment, "payment.succeeded"), record(payment, "payment.refunded")]
    assert len(receiver.requests) == 2  # attempt 1 of each, at once

    back_after = 5  # the receiver comes back before the sixth attempt (5 h)
    for attempt, offset in enumerate(SCHEDULE[1:back_after], start=2):
        time_machine.move_to(T0 + timedelta(seconds=offset - 1), tick=False)
        sweeper.sweep()
        assert len(receiver.requests) == 2 * (attempt - 1), "nothing is sent before it is due"
        time_machine.move_to(T0 + timedelta(seconds=offset), tick=False)
        sweeper.sweep()
        assert len(receiver.requests) == 2 * attempt
        sweeper.sweep()
        assert len(receiver.requests) == 2 * attempt, "a second sweep sends nothing more"

    receiver.status = 200
    time_machine.move_to(T0 + timedelta(seconds=SCHEDULE[back_after]), tick=False)
    sweeper.sweep()
    attempts = back_after + 1
    assert len(receiver.requests) == 2 * attempts
    for event in events:
        sent = [r for r in receiver.requests if r.headers["webhook-id"] == event.public_id]
        assert len(sent) == attempts
        for request in sent:
            assert request.verified is not None, request.rejection
            assert request.verified["type"] == event.type
        assert len({r.body for r in sent}) == 1, "every attempt carries the same body"
    assert {d.status for d in deliveries(channel="webhook")} == {DeliveryStatus.SUCCEEDED}
    assert {d.attempts for d in deliveries(channel="webhook")} == {attempts}

    time_machine.move_to(T0 + timedelta(days=3), tick=False)
    sweeper.sweep()
    assert len(receiver.requests) == 2 * attempts
    endpoint_a.refresh_from_db()
    assert endpoint_a.status == "enabled" and endpoint_a.first_failure_at is None


def test_410_disables_the_endpoint_at_once_and_nothing_more_is_sent(
    merchant_a, endpoint_a, receiver, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(T0, tick=False)
    receiver.status = 410
    payment = final_payment(merchant_a)
    with django_capture_on_commit_callbacks(execute=True):
        record(payment, "payment.succeeded")
    assert len(receiver.requests) == 1
    endpoint_a.refresh_from_db()
    assert endpoint_a.status == WebhookEndpoint.Status.DISABLED
    assert "410" in endpoint_a.disabled_reason
    [delivery] = deliveries(channel="webhook")
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_response_code == 410

    with django_capture_on_commit_callbacks(execute=True):
        record(payment, "payment.refunded")
    for hours in (1, 6, 30):
        time_machine.move_to(T0 + timedelta(hours=hours), tick=False)
        sweeper.sweep()
    assert len(receiver.requests) == 1
    assert deliveries(channel="webhook") == [delivery]


def test_a_410_stops_the_other_pending_deliveries_of_the_endpoint(
    merchant_a, endpoint_a, receiver, time_machine
):
    time_machine.move_to(T0, tick=False)
    receiver.status = 410
    payment = final_payment(merchant_a)
    record(payment, "payment.succeeded")
    record(payment, "payment.refunded")
    first, second = deliveries(channel="webhook")
    sweeper.sweep()
    assert len(receiver.requests) == 1
    second.refresh_from_db()
    assert second.status == DeliveryStatus.FAILED
    assert second.attempts == 0


def test_an_endpoint_failing_for_a_day_is_disabled_and_the_merchant_told(
    merchant_a, alice, bob, endpoint_a, receiver, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(T0, tick=False)
    receiver.status = 500
    with django_capture_on_commit_callbacks(execute=True):
        event = record(final_payment(merchant_a))
    for offset in SCHEDULE[1:]:
        time_machine.move_to(T0 + timedelta(seconds=offset), tick=False)
        with django_capture_on_commit_callbacks(execute=True):
            sweeper.sweep()
    assert len(receiver.requests) == len(SCHEDULE) == 10
    assert set(receiver.ids) == {event.public_id}
    [delivery] = deliveries(channel="webhook")
    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.attempts == 10
    endpoint_a.refresh_from_db()
    assert endpoint_a.status == WebhookEndpoint.Status.DISABLED
    assert "failed since" in endpoint_a.disabled_reason

    # The owner is emailed; every member sees it in the feed.
    assert [m.to for m in mail.outbox] == [[alice.email]]
    assert "Webhook endpoint disabled" in mail.outbox[0].subject
    assert endpoint_a.url in mail.outbox[0].body
    feed = Notification.objects.filter(merchant=merchant_a)
    assert {n.user for n in feed} == {alice, bob}
    assert {n.title for n in feed} == {"Webhook endpoint disabled"}

    time_machine.move_to(T0 + timedelta(days=2), tick=False)
    record(final_payment(merchant_a))
    sweeper.sweep()
    assert len(receiver.requests) == 10


def test_a_success_clears_the_run_of_failures(merchant_a, endpoint_a, receiver, time_machine):
    time_machine.move_to(T0, tick=False)
    receiver.status = 500
    record(final_payment(merchant_a))
    sweeper.sweep()
    endpoint_a.refresh_from_db()
    assert endpoint_a.first_failure_at == T0
    receiver.status = 200
    time_machine.move_to(T0 + timedelta(seconds=5), tick=False)
    sweeper.sweep()
    endpoint_a.refresh_from_db()
    assert endpoint_a.first_failure_at is None
