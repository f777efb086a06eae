"""The inbox for every gateway: each acknowledged in its own format; admins re-apply stored callbacks."""

from __future__ import annotations

import pytest
from django.test import Client

from payments import tasks
from payments.models import Event, GatewayCallback, PaymentStatus
from tests.factories import UserFactory
from tests.gateways.scenarios import success_delivery

pytestmark = [pytest.mark.usefixtures("routes"), pytest.mark.django_db(transaction=True)]

GATEWAYS = ["sandbox", "alipay", "wechat_pay", "paypal"]


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_a_repeated_notification_is_stored_once_and_acknowledged_in_the_gateways_format(
    gateway, merchant_a, request
):
    payment, delivery = success_delivery(gateway, merchant_a, request)

    responses = [delivery.post().status_code for _ in range(3)]

    assert responses == [delivery.accepted_status] * 3
    rows = GatewayCallback.objects.filter(gateway=gateway).order_by("pk")
    assert [r.status for r in rows] == ["applied", "duplicate", "duplicate"]
    assert rows[0].payment_id == payment.pk
    assert Event.objects.filter(payment=payment, type="payment.succeeded").count() == 1


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_admins_can_reapply_a_dead_lettered_callback_of_any_gateway(
    gateway, merchant_a, request, monkeypatch
):
    payment, delivery = success_delivery(gateway, merchant_a, request)
    with monkeypatch.context() as patch:
        patch.setattr(tasks, "callback_apply_task", lambda callback_id: None)  # the worker never got to it
        assert delivery.post().status_code == delivery.accepted_status
    row = GatewayCallback.objects.get(gateway=gateway)
    GatewayCallback.objects.filter(pk=row.pk).update(status=GatewayCallback.Status.DEAD, reason="worker died")
    admin = UserFactory(username="ops@paydesk.example", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)

    response = client.post(
        "/admin/payments/gatewaycallback/",
        {"action": "reapply", "_selected_action": [row.pk], "reason": "worker died"},
    )

    assert response.status_code == 302
    row.refresh_from_db()
    payment.refresh_from_db()
    assert row.status == GatewayCallback.Status.APPLIED
    assert payment.status == PaymentStatus.SUCCEEDED
    assert Event.objects.filter(payment=payment, type="payment.succeeded").count() == 1
