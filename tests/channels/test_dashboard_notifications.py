"""Dashboard: endpoints, delivery log and redeliver, test event, preferences, the bell and the feed."""

from __future__ import annotations

import pytest
from django.test import Client

from merchants.models import NotificationPreference, WebhookEndpoint
from payments.models import Delivery, DeliveryStatus, Notification
from payments.services.notifications.endpoints import notification_preference_update, webhook_endpoint_create
from payments.services.notifications.sending import delivery_send
from tests.channels.conftest import deliveries, final_payment, record

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_owner_adds_an_endpoint_and_sees_the_secret_once(alice, merchant_a, receiver):
    client = login(alice)
    response = client.post(
        "/webhooks/",
        {"url": receiver.url, "description": "ERP", "events": ["payment.succeeded", "payment.failed"]},
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.get(merchant=merchant_a)
    [secret] = endpoint.signing_secrets()
    assert secret in response.content.decode()
    assert endpoint.events == ["payment.succeeded", "payment.failed"]
    detail = client.get(f"/webhooks/{endpoint.public_id}/")
    assert detail.status_code == 200
    assert secret not in detail.content.decode()
    assert secret not in client.get("/webhooks/").content.decode()


def test_an_invalid_url_is_shown_on_the_form_and_nothing_is_saved(alice, settings):
    settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE = False
    response = login(alice).post("/webhooks/", {"url": "http://127.0.0.1:9000/hook"})
    assert response.status_code == 200
    assert "private, loopback or link-local" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("persona", ["bob", "carol"])
def test_only_owners_configure_endpoints(persona, request, merchant_a, receiver):
    user = request.getfixturevalue(persona)
    client = login(user)
    assert client.get("/webhooks/").status_code == 200
    assert client.post("/webhooks/", {"url": receiver.url}).status_code == 403
    endpoint, _secret = webhook_endpoint_create(merchant=merchant_a, url=receiver.url)
    assert client.post(f"/webhooks/{endpoint.public_id}/rotate/").status_code == 403
    assert client.post(f"/webhooks/{endpoint.public_id}/delete/").status_code == 403
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_rotating_shows_the_new_secret_and_both_sign(alice, endpoint_a):
    response = login(alice).post(f"/webhooks/{endpoint_a.public_id}/rotate/")
    endpoint_a.refresh_from_db()
    new, old = endpoint_a.signing_secrets()
    assert old == endpoint_a.secret
    assert new in response.content.decode()
    assert old not in response.content.decode()


def test_send_test_event_delivers_a_signed_webhook_test(
    bob, endpoint_a, receiver, django_capture_on_commit_callbacks
):
    client = login(bob)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/webhooks/{endpoint_a.public_id}/test/")
    assert response.status_code == 302
    [sent] = receiver.requests
    assert sent.verified["type"] == "webhook.test"
    assert sent.verified["data"]["object"] == "payment"
    assert sent.headers["webhook-id"].startswith("evt_test_")
    log = client.get(f"/webhooks/{endpoint_a.public_id}/").content.decode()
    assert "webhook.test" in log and "Succeeded" in log


def test_the_log_shows_code_duration_and_excerpt_and_redeliver_keeps_the_id(
    alice, merchant_a, endpoint_a, receiver, django_capture_on_commit_callbacks
):
    receiver.status = 500
    receiver.answer = "database is on fire"
    event = record(final_payment(merchant_a))
    [delivery] = deliveries(event=event)
    delivery_send(delivery_id=delivery.pk)
    client = login(alice)
    page = client.get(f"/webhooks/{endpoint_a.public_id}/").content.decode()
    assert "database is on fire" in page and ">500<" in page and " ms" in page
    # A pending delivery is still being retried: no manual redeliver yet.
    assert client.post(f"/deliveries/{delivery.public_id}/redeliver/").status_code == 302
    assert Delivery.objects.count() == 1

    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD)
    receiver.status = 200
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/deliveries/{delivery.public_id}/redeliver/")
    copy = Delivery.objects.exclude(pk=delivery.pk).get()
    assert copy.redelivery_of_id == delivery.pk
    assert copy.status == DeliveryStatus.SUCCEEDED
    assert receiver.ids == [event.public_id, event.public_id]


def test_another_merchants_endpoint_and_deliveries_are_404(mallory, merchant_a, endpoint_a):
    event = record(final_payment(merchant_a))
    [delivery] = deliveries(event=event)
    client = login(mallory)
    for path in (
        f"/webhooks/{endpoint_a.public_id}/",
        f"/webhooks/{endpoint_a.public_id}/rotate/",
        f"/webhooks/{endpoint_a.public_id}/toggle/",
        f"/webhooks/{endpoint_a.public_id}/test/",
        f"/webhooks/{endpoint_a.public_id}/delete/",
        f"/deliveries/{delivery.public_id}/redeliver/",
    ):
        method = client.get if path.endswith(f"{endpoint_a.public_id}/") else client.post
        assert method(path).status_code == 404, path
    assert endpoint_a.url not in client.get("/webhooks/").content.decode()
    endpoint_a.refresh_from_db()
    assert endpoint_a.is_enabled


def test_disable_and_enable(alice, endpoint_a):
    client = login(alice)
    client.post(f"/webhooks/{endpoint_a.public_id}/toggle/", {"enabled": "0"})
    endpoint_a.refresh_from_db()
    assert endpoint_a.status == "disabled"
    client.post(f"/webhooks/{endpoint_a.public_id}/toggle/", {"enabled": "1"})
    endpoint_a.refresh_from_db()
    assert endpoint_a.status == "enabled"


def test_preferences_are_saved_all_or_nothing(alice, merchant_a):
    client = login(alice)
    data = {
        "email-enabled": "on",
        "email-recipients": "ops@a.example\nnot-an-address",
        "email-events": ["payment.failed"],
        "sms-enabled": "on",
        "sms-recipients": "+14155550100",
        "inapp-enabled": "on",
    }
    response = client.post("/notifications/preferences/", data)
    assert response.status_code == 200
    assert "not-an-address is not an email address." in response.content.decode()
    assert not NotificationPreference.objects.exists()

    data["email-recipients"] = "ops@a.example"
    assert client.post("/notifications/preferences/", data).status_code == 302
    prefs = {p.channel: p for p in NotificationPreference.objects.filter(merchant=merchant_a)}
    assert prefs["email"].recipients == ["ops@a.example"] and prefs["email"].events == ["payment.failed"]
    assert prefs["sms"].recipients == ["+14155550100"] and prefs["sms"].enabled
    assert prefs["inapp"].enabled and prefs["inapp"].events == []


def test_only_owners_change_preferences(bob):
    assert login(bob).post("/notifications/preferences/", {"inapp-enabled": "on"}).status_code == 403
    assert not NotificationPreference.objects.exists()


def test_the_bell_counts_unread_and_the_feed_marks_read(alice, bob, merchant_a):
    notification_preference_update(
        merchant=merchant_a, channel="inapp", enabled=True, events=[], recipients=[]
    )
    payment = final_payment(merchant_a)
    for event in (record(payment), record(payment, "payment.refunded")):
        delivery_send(delivery_id=deliveries(event=event)[0].pk)
    client = login(alice)
    page = client.get("/").content.decode()
    assert 'id="notification-bell"' in page and "2 unread notifications" in page
    feed = client.get("/notifications/").content.decode()
    assert f"Payment {payment.reference} succeeded" in feed
    first = Notification.objects.filter(user=alice).order_by("pk").first()
    response = client.post("/notifications/read/", {"id": first.public_id, "next": first.link})
    assert response.status_code == 302 and response["Location"] == first.link
    assert "1 unread notification" in client.get("/").content.decode()
    response = client.post("/notifications/read/", {"next": "https://evil.example/"})
    assert response["Location"] == "/notifications/"
    assert "0 unread notifications" in client.get("/").content.decode()
    assert "2 unread notifications" in login(bob).get("/").content.decode()
