"""A suspended merchant moves no money, from any entry point (one check in the lifecycle core)."""

import pytest
from django.test import Client
from django.urls import reverse

from merchants.models import Merchant
from payments.models import GatewayAttempt, Payment, PaymentBatch, PaymentStatus, Refund
from payments.services.batches.lifecycle import BatchForbidden, batch_approve
from payments.services.lifecycle.guards import MerchantSuspended
from payments.services.payments import payment_create, payment_hold
from payments.services.refunds import refund_create
from tests.api.conftest import assert_problem
from tests.factories import payment_input
from tests.payments.test_batch_support import csv_bytes, media, rows, upload  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def suspend(merchant):
    Merchant.objects.filter(pk=merchant.pk).update(status=Merchant.Status.SUSPENDED)
    merchant.refresh_from_db()


def api(key):
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


def test_api_payment_is_refused_and_nothing_is_stored(merchant_a, key_a, sandbox_wire):
    suspend(merchant_a)
    response = api(key_a).post("/api/v1/payments", payment_input(), content_type="application/json")
    assert_problem(response, 401, "merchant_suspended")  # the API key no longer authenticates
    with pytest.raises(MerchantSuspended):  # and the core refuses whoever calls
        payment_create(merchant=merchant_a, data=payment_input())
    assert not Payment.objects.exists() and not GatewayAttempt.objects.exists()


def test_dashboard_payment_form_is_refused_and_nothing_is_stored(client, bob, merchant_a, sandbox_wire):
    client.force_login(bob)
    suspend(merchant_a)
    data = {k: v for k, v in payment_input().items() if k != "metadata"}
    response = client.post(reverse("dashboard:payment_new"), data)
    assert response.status_code == 200
    assert "suspended" in response.content.decode()
    assert not Payment.objects.exists()


def test_retry_is_refused(merchant_a, alice, sandbox_wire):
    payment = payment_create(merchant=merchant_a, data=payment_input(beneficiary_account="4000000000000119"))
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.FAILED
    suspend(merchant_a)
    client = Client()
    client.force_login(merchant_a.memberships.get(role="owner").user)
    response = client.post(reverse("dashboard:payment_retry", args=[payment.public_id]), follow=True)
    assert "suspended" in response.content.decode()
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.FAILED
    assert GatewayAttempt.objects.filter(payment=payment).count() == 1


def test_refund_is_refused(merchant_a, key_a, sandbox_wire):
    payment = payment_create(merchant=merchant_a, data=payment_input())
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    suspend(merchant_a)
    response = api(key_a).post(
        f"/api/v1/payments/{payment.public_id}/refunds", {"amount": "1.00"}, content_type="application/json"
    )
    assert_problem(response, 401, "merchant_suspended")
    with pytest.raises(MerchantSuspended):
        refund_create(payment=Payment.objects.get(pk=payment.pk), amount="1.00")
    assert not Refund.objects.exists()


def test_admin_release_is_refused(admin_client, merchant_a, sandbox_wire):
    held = payment_create(merchant=merchant_a, data=payment_input(), submit=False)
    payment_hold(payment=held)
    suspend(merchant_a)
    response = admin_client.post(
        reverse("admin:payments_payment_changelist"),
        {"action": "release_selected", "_selected_action": [held.pk], "reason": "reviewed"},
        follow=True,
    )
    assert "suspended" in response.content.decode()
    assert Payment.objects.get(pk=held.pk).status == PaymentStatus.ON_HOLD


@pytest.mark.usefixtures("media")
def test_batch_approval_is_refused(merchant_a, alice, carol, key_a, django_capture_on_commit_callbacks):
    batch = upload(merchant_a, csv_bytes(rows(2)), user=alice, capture=django_capture_on_commit_callbacks)
    assert batch.status == "validated"
    suspend(merchant_a)
    assert_problem(api(key_a).post(f"/api/v1/batches/{batch.public_id}/approve"), 401, "merchant_suspended")
    with pytest.raises(BatchForbidden) as refused:
        batch_approve(batch=batch, user=carol)
    assert refused.value.code == "merchant_suspended"
    client = Client()
    client.force_login(carol)
    client.post(reverse("dashboard:batch_approve", args=[batch.public_id]))
    assert PaymentBatch.objects.get(pk=batch.pk).status == "validated"
    assert not GatewayAttempt.objects.exists()
