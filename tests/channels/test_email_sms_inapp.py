"""Email, SMS and in-app channels, and beneficiary notices sent in bulk over one connection."""

from __future__ import annotations

import io
import json
from unittest import mock

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemEmailBackend
from django.utils import timezone
from werkzeug import Response

from payments.channels import sms
from payments.channels.sms import ConsoleBackend, SmsError, SmsMessage, TwilioBackend
from payments.models import DeliveryStatus, Notification
from payments.notification_selectors import notification_feed, notification_unread_count
from payments.services.notifications.endpoints import (
    NotificationsInvalid,
    notification_preference_update,
    notifications_mark_read,
)
from payments.services.notifications.fanout import beneficiary_notices
from payments.services.notifications.sending import delivery_send
from tests.channels.conftest import deliveries, final_payment, record

pytestmark = pytest.mark.django_db


def test_email_has_text_and_html_parts_with_the_payment(
    merchant_a, alice, django_capture_on_commit_callbacks
):
    notification_preference_update(
        merchant=merchant_a,
        channel="email",
        enabled=True,
        events=["payment.failed"],
        recipients=["ops@a.example"],
    )
    payment = final_payment(
        merchant_a, status="failed", failure_code="card_declined", failure_message="The card was declined."
    )
    with django_capture_on_commit_callbacks(execute=True):
        record(payment, "payment.failed")
    [message] = mail.outbox
    assert message.to == ["ops@a.example"]
    assert message.subject == f"[PayDesk] Payment {payment.reference} failed"
    assert f"10.00 USD to Ada Lovelace ({payment.public_id})" in message.body
    assert "card_declined" in message.body
    assert f"http://127.0.0.1:8000/payments/{payment.public_id}/" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert "Open in PayDesk" in html and payment.reference in html
    [delivery] = deliveries(channel="email")
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_an_smtp_failure_is_retried_and_a_refused_recipient_is_not(merchant_a):
    import smtplib

    notification_preference_update(
        merchant=merchant_a, channel="email", enabled=True, events=[], recipients=["ops@a.example"]
    )
    event = record(final_payment(merchant_a))
    [delivery] = deliveries(event=event)
    with mock.patch.object(LocmemEmailBackend, "send_messages", autospec=True, side_effect=OSError("down")):
        assert delivery_send(delivery_id=delivery.pk) == DeliveryStatus.PENDING
    event2 = record(final_payment(merchant_a))
    [delivery2] = deliveries(event=event2)
    refused = smtplib.SMTPRecipientsRefused({"ops@a.example": (550, b"no such user")})
    with mock.patch.object(LocmemEmailBackend, "send_messages", autospec=True, side_effect=refused):
        assert delivery_send(delivery_id=delivery2.pk) == DeliveryStatus.FAILED


def test_sms_goes_through_the_configured_backend(merchant_a, django_capture_on_commit_callbacks):
    notification_preference_update(
        merchant=merchant_a, channel="sms", enabled=True, events=[], recipients=["+14155550100"]
    )
    payment = final_payment(merchant_a)
    with django_capture_on_commit_callbacks(execute=True):
        record(payment)
    [message] = sms.outbox
    assert message.to == "+14155550100"
    assert message.body.startswith(f"PayDesk: Payment {payment.reference} succeeded.")
    assert len(message.body) <= sms.MAX_BODY


def test_sms_preferences_need_e164_numbers(merchant_a):
    with pytest.raises(NotificationsInvalid) as caught:
        notification_preference_update(
            merchant=merchant_a, channel="sms", enabled=True, events=[], recipients=["0415 555 0100"]
        )
    assert caught.value.errors[0].code == "invalid_phone"


def test_console_sms_backend_writes_the_message():
    stream = io.StringIO()
    assert ConsoleBackend(stream=stream).send_messages([SmsMessage("+14155550100", "hello")]) == 1
    assert stream.getvalue() == "SMS from PayDesk to +14155550100: hello\n"


def test_twilio_backend_posts_the_rest_api_form(httpserver):
    seen = []

    def handler(request):
        seen.append((request.path, dict(request.form), request.authorization))
        return Response(json.dumps({"sid": "SM123", "status": "queued"}), status=201)

    httpserver.expect_request("/2010-04-01/Accounts/AC1/Messages.json", method="POST").respond_with_handler(
        handler
    )
    backend = TwilioBackend(
        account_sid="AC1", auth_token="tok", api_base=httpserver.url_for(""), from_="+15005550006"
    )
    with backend:
        assert (
            backend.send_messages([SmsMessage("+14155550100", "one"), SmsMessage("+14155550101", "two")]) == 2
        )
    assert [(path, form) for path, form, _auth in seen] == [
        (
            "/2010-04-01/Accounts/AC1/Messages.json",
            {"To": "+14155550100", "From": "+15005550006", "Body": "one"},
        ),
        (
            "/2010-04-01/Accounts/AC1/Messages.json",
            {"To": "+14155550101", "From": "+15005550006", "Body": "two"},
        ),
    ]
    assert (seen[0][2].username, seen[0][2].password) == ("AC1", "tok")


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (429, False), (503, False)])
def test_twilio_errors_say_whether_retrying_helps(httpserver, status, permanent):
    httpserver.expect_request("/2010-04-01/Accounts/AC1/Messages.json").respond_with_json(
        {"code": 21211, "message": "Invalid 'To' Phone Number"}, status=status
    )
    backend = TwilioBackend(account_sid="AC1", auth_token="tok", api_base=httpserver.url_for(""))
    with pytest.raises(SmsError) as caught:
        backend.send_messages([SmsMessage("+14155550100", "x")])
    assert caught.value.permanent is permanent
    assert caught.value.status == status


def test_inapp_notifies_every_member_once_even_if_resent(merchant_a, alice, bob, carol, mallory):
    notification_preference_update(
        merchant=merchant_a, channel="inapp", enabled=True, events=[], recipients=[]
    )
    payment = final_payment(merchant_a)
    event = record(payment)
    [delivery] = deliveries(event=event)
    assert delivery_send(delivery_id=delivery.pk) == DeliveryStatus.SUCCEEDED
    from payments.channels import get_transport

    get_transport("inapp").send(delivery)  # a resend after a crash adds nothing
    rows = Notification.objects.filter(merchant=merchant_a)
    assert sorted(n.user.username for n in rows) == sorted([alice.username, bob.username, carol.username])
    note = rows.get(user=alice)
    assert note.title == f"Payment {payment.reference} succeeded"
    assert note.link == f"/payments/{payment.public_id}/"
    assert note.level == "success"
    assert notification_unread_count(merchant=merchant_a, user=alice) == 1
    assert not Notification.objects.filter(user=mallory).exists()


def test_marking_read_is_per_user(merchant_a, alice, bob):
    notification_preference_update(
        merchant=merchant_a, channel="inapp", enabled=True, events=[], recipients=[]
    )
    event = record(final_payment(merchant_a))
    delivery_send(delivery_id=deliveries(event=event)[0].pk)
    assert notifications_mark_read(merchant=merchant_a, user=alice) == 1
    assert notification_unread_count(merchant=merchant_a, user=alice) == 0
    assert notification_unread_count(merchant=merchant_a, user=bob) == 1
    assert notification_feed(merchant=merchant_a, user=alice).count() == 1


def test_beneficiary_notices_go_in_bulk_over_one_connection_per_channel(
    merchant_a, django_capture_on_commit_callbacks
):
    paid = [
        final_payment(
            merchant_a, beneficiary_email=f"b{i}@example.com", beneficiary_phone=f"+1 415 555 01{i:02d}"
        )
        for i in range(30)
    ]
    unpaid = final_payment(merchant_a, status="failed", beneficiary_email="x@example.com")
    no_contact = final_payment(merchant_a)
    opened = []
    real_open = LocmemEmailBackend.open

    def counting_open(self):
        opened.append(self)
        return real_open(self)

    with (
        mock.patch.object(LocmemEmailBackend, "open", autospec=True, side_effect=counting_open),
        mock.patch.object(sms.LocmemBackend, "open", autospec=True) as sms_open,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        created = beneficiary_notices([*paid, unpaid, no_contact])
    assert len(created) == 60
    assert len(callbacks) == 1
    assert len(opened) == 1 and sms_open.call_count == 1
    assert sorted(m.to[0] for m in mail.outbox) == sorted(p.beneficiary_email for p in paid)
    first = next(m for m in mail.outbox if m.to == ["b0@example.com"])
    assert first.subject == "[PayDesk] You have been paid"
    assert f"Merchant A sent you 10.00 USD (reference {paid[0].reference})" in first.body
    assert sorted(m.to for m in sms.outbox) == sorted(f"+1415555{i + 100:04d}" for i in range(30))
    assert {d.status for d in deliveries(type="beneficiary.paid")} == {DeliveryStatus.SUCCEEDED}


def test_the_bell_stops_counting_at_99_plus(merchant_a, alice, client):
    notes = Notification.objects.bulk_create(
        Notification(merchant=merchant_a, user=alice, title=f"Note {i}") for i in range(101)
    )
    assert notification_unread_count(merchant=merchant_a, user=alice) == 101
    assert notification_unread_count(merchant=merchant_a, user=alice, cap=99) == 100
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert ">99+</span>" in page and "More than 99 unread notifications" in page
    Notification.objects.filter(pk__in=[n.pk for n in notes[:2]]).update(read_at=timezone.now())
    page = client.get("/").content.decode()
    assert ">99</span>" in page and "99 unread notifications" in page
