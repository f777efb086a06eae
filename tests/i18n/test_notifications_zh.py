"""Notifications speak the language each member chose: in-app entries and e-mails."""

import pytest
from django.core import mail

from merchants.services import user_language_set
from payments.models import Notification
from payments.services.notifications.endpoints import notification_preference_update
from payments.services.notifications.sending import delivery_send
from tests.channels.conftest import deliveries, final_payment, record

pytestmark = pytest.mark.django_db


def test_each_member_reads_the_in_app_entry_in_their_language(merchant_a, alice, bob):
    user_language_set(user=alice, language="zh-hans")
    notification_preference_update(
        merchant=merchant_a, channel="inapp", enabled=True, events=[], recipients=[]
    )
    payment = final_payment(merchant_a)
    [delivery] = deliveries(event=record(payment))
    delivery_send(delivery_id=delivery.pk)
    assert Notification.objects.get(user=alice).title == f"付款 {payment.reference}：成功"
    assert Notification.objects.get(user=bob).title == f"Payment {payment.reference} succeeded"


def test_an_email_to_a_member_is_in_their_language(merchant_a, alice, django_capture_on_commit_callbacks):
    user_language_set(user=alice, language="zh-hans")
    notification_preference_update(
        merchant=merchant_a,
        channel="email",
        enabled=True,
        events=["payment.failed"],
        recipients=[alice.username, "ops@a.example"],
    )
    payment = final_payment(merchant_a, status="failed", failure_code="card_declined")
    with django_capture_on_commit_callbacks(execute=True):
        record(payment, "payment.failed")
    by_address = {message.to[0]: message for message in mail.outbox}
    chinese = by_address[alice.username]
    assert chinese.subject == f"[PayDesk] 付款 {payment.reference}：失败"
    assert "在 PayDesk 中打开" in chinese.alternatives[0][0]
    assert by_address["ops@a.example"].subject == f"[PayDesk] Payment {payment.reference} failed"
