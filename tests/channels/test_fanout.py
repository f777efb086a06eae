"""Every Event fans out to Deliveries in its own transaction; batches fan out set-based."""

from __future__ import annotations

import pytest
from django.db import transaction

from merchants.models import NotificationPreference
from payments.models import Channel, Delivery, Event
from payments.services.lifecycle.events import event_record
from payments.services.notifications.endpoints import notification_preference_update, webhook_endpoint_create
from payments.services.notifications.fanout import deliveries_for_events
from tests.channels.conftest import deliveries, final_payment, record

pytestmark = pytest.mark.django_db


def test_deliveries_are_written_in_the_transaction_of_the_event(merchant_a, endpoint_a):
    payment = final_payment(merchant_a)
    with pytest.raises(RuntimeError), transaction.atomic():
        event_record(payment=payment, type="payment.succeeded")
        assert Delivery.objects.count() == 1
        raise RuntimeError("the change fails after the event was written")
    assert not Event.objects.exists()
    assert not Delivery.objects.exists()


def test_sending_is_enqueued_on_commit_only(
    merchant_a, endpoint_a, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record(final_payment(merchant_a))
    assert len(callbacks) == 1
    assert receiver.requests == []
    callbacks[0]()
    assert len(receiver.requests) == 1


def test_a_merchant_without_subscriptions_gets_no_deliveries(merchant_a):
    record(final_payment(merchant_a))
    assert not Delivery.objects.exists()


def test_events_fan_out_to_each_channel_and_recipient(merchant_a, alice, bob, endpoint_a):
    notification_preference_update(
        merchant=merchant_a, channel="email", enabled=True, events=["payment.failed"], recipients=[]
    )
    notification_preference_update(
        merchant=merchant_a,
        channel="sms",
        enabled=True,
        events=["payment.failed"],
        recipients=["+14155550100", "+4915112345678"],
    )
    notification_preference_update(
        merchant=merchant_a, channel="inapp", enabled=True, events=[], recipients=[]
    )
    payment = final_payment(merchant_a, status="failed")
    succeeded = record(payment, "payment.succeeded")
    failed = record(payment, "payment.failed")

    assert sorted((d.channel, d.recipient) for d in deliveries(event=succeeded)) == [
        ("inapp", ""),
        ("webhook", endpoint_a.url),
    ]
    assert sorted((d.channel, d.recipient) for d in deliveries(event=failed)) == [
        ("email", alice.email),  # empty email recipients mean the owners
        ("inapp", ""),
        ("sms", "+14155550100"),
        ("sms", "+4915112345678"),
        ("webhook", endpoint_a.url),
    ]
    assert {d.max_attempts for d in deliveries(channel="webhook")} == {10}


def test_a_disabled_preference_sends_nothing(merchant_a, alice):
    notification_preference_update(
        merchant=merchant_a, channel="email", enabled=False, events=[], recipients=[]
    )
    record(final_payment(merchant_a))
    assert not Delivery.objects.exists()


def test_other_merchants_subscriptions_are_not_used(merchant_a, merchant_b, receiver):
    webhook_endpoint_create(merchant=merchant_b, url=receiver.url)
    record(final_payment(merchant_a))
    assert not Delivery.objects.exists()


def test_deliveries_for_events_is_set_based(
    merchant_a, merchant_b, endpoint_a, receiver, django_assert_max_num_queries
):
    """The batch path: events written with bulk_create, their deliveries in a constant number of queries."""
    webhook_endpoint_create(merchant=merchant_b, url=receiver.url, events=["payment.succeeded"])
    NotificationPreference.objects.create(merchant=merchant_a, channel="inapp")
    payments = [final_payment(merchant_a) for _ in range(30)] + [final_payment(merchant_b) for _ in range(20)]
    with transaction.atomic():
        events = Event.objects.bulk_create(
            Event(
                merchant_id=p.merchant_id,
                type="payment.succeeded",
                payment=p,
                data={"object": {"id": p.public_id}},
            )
            for p in payments
        )
        with django_assert_max_num_queries(4):
            created = deliveries_for_events(events)
    assert len(created) == 30 * 2 + 20
    assert Delivery.objects.filter(channel=Channel.WEBHOOK, merchant=merchant_b).count() == 20
    assert Delivery.objects.filter(channel=Channel.INAPP, merchant=merchant_a).count() == 30


def test_deliveries_for_events_enqueues_chunks(merchant_a, endpoint_a, django_capture_on_commit_callbacks):
    payments = [final_payment(merchant_a) for _ in range(250)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        events = Event.objects.bulk_create(
            Event(merchant_id=p.merchant_id, type="payment.succeeded", payment=p) for p in payments
        )
        deliveries_for_events(events)
    assert len(callbacks) == 3  # chunks of 100, not 250 tasks


def test_deliveries_for_events_needs_saved_events(merchant_a):
    with pytest.raises(ValueError, match="saved events"):
        deliveries_for_events([Event(merchant=merchant_a, type="payment.succeeded")])
