"""The minimal dashboard: login, list, create, detail with timeline, actions; scoped per merchant."""

import pytest
from django.urls import reverse

from payments.models import Payment
from payments.services.payments import payment_create
from tests.conftest import confirmed_post
from tests.factories import payment_input

pytestmark = pytest.mark.django_db(transaction=True)

FORM = {
    "reference": "WEB-1",
    "amount": "25.00",
    "currency": "USD",
    "method": "card",
    "beneficiary_name": "Grace Hopper",
    "beneficiary_account": "4000000000001234",
}


def test_pages_need_login(client):
    response = client.get(reverse("dashboard:payment_list"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_login_page_and_login(client, bob):
    # An operator needs no second factor unless the merchant asks it of everyone (test_two_factor.py).
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": bob.username, "password": "pw-for-tests-1"})
    assert response.status_code == 302
    assert client.get(reverse("dashboard:payment_list")).status_code == 200


def test_operator_creates_a_payment_and_sees_it_succeed(client, bob, sandbox_wire):
    client.force_login(bob)
    response = confirmed_post(client, reverse("dashboard:payment_new"), FORM)
    payment = Payment.objects.get(reference="WEB-1")
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:payment_detail", args=[payment.public_id])
    assert payment.created_by == bob and payment.status == "succeeded"
    page = client.get(response["Location"]).content.decode()
    assert "payment.succeeded" in page and "25.00" in page


def test_form_shows_money_errors_and_stores_nothing(client, bob):
    client.force_login(bob)
    response = client.post(reverse("dashboard:payment_new"), {**FORM, "currency": "JPY", "amount": "10.5"})
    assert response.status_code == 200
    assert "JPY amounts allow at most 0 decimal places." in response.content.decode()
    assert not Payment.objects.exists()


def test_approver_cannot_create_payments(client, carol):
    client.force_login(carol)
    assert client.get(reverse("dashboard:payment_new")).status_code == 403
    assert client.post(reverse("dashboard:payment_new"), FORM).status_code == 403
    assert not Payment.objects.exists()


def test_list_shows_only_the_current_merchants_payments(
    client, alice, mallory, merchant_a, merchant_b, sandbox_wire
):
    payment_create(merchant=merchant_a, data=payment_input(reference="A-ONLY"))
    payment_create(merchant=merchant_b, data=payment_input(reference="B-ONLY"))
    client.force_login(mallory)
    page = client.get(reverse("dashboard:payment_list")).content.decode()
    assert "B-ONLY" in page and "A-ONLY" not in page


def test_other_merchants_payment_is_404(client, alice, mallory, merchant_a, sandbox_wire):
    payment = payment_create(merchant=merchant_a, data=payment_input())
    client.force_login(mallory)
    for name in ("payment_detail", "payment_status"):
        assert client.get(reverse(f"dashboard:{name}", args=[payment.public_id])).status_code == 404
    for name in ("payment_cancel", "payment_retry", "payment_refund"):
        assert client.post(reverse(f"dashboard:{name}", args=[payment.public_id])).status_code == 404


def test_status_json_and_live_partial(client, alice, merchant_a, sandbox_wire):
    payment = payment_create(merchant=merchant_a, data=payment_input())
    client.force_login(alice)
    data = client.get(reverse("dashboard:payment_status", args=[payment.public_id])).json()
    assert data["status"] == "succeeded" and data["is_final"] is True
    partial = client.get(
        reverse("dashboard:payment_detail", args=[payment.public_id]), HTTP_X_PARTIAL="timeline"
    ).content.decode()
    assert "<html" not in partial and "payment.succeeded" in partial


def test_refund_and_cancel_buttons(client, alice, merchant_a, sandbox_wire):
    client.force_login(alice)
    paid = payment_create(merchant=merchant_a, data=payment_input(amount="50.00"))
    confirmed_post(client, reverse("dashboard:payment_refund", args=[paid.public_id]), {"amount": "20.00"})
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == ("partially_refunded", "20.00")
    waiting = payment_create(merchant=merchant_a, data=payment_input(reference="LATER"), submit=False)
    confirmed_post(client, reverse("dashboard:payment_cancel", args=[waiting.public_id]))
    waiting.refresh_from_db()
    assert waiting.status == "cancelled"


def test_invalid_state_action_shows_an_error(client, alice, merchant_a, sandbox_wire):
    client.force_login(alice)
    paid = payment_create(merchant=merchant_a, data=payment_input())
    url = reverse("dashboard:payment_cancel", args=[paid.public_id])
    assert "can no longer be cancelled" in client.get(url, follow=True).content.decode()
    token = "t" * 32  # a confirmation opened before the payment succeeded
    response = client.post(url, {"confirm_token": token}, follow=True)
    assert "cannot be cancelled" in response.content.decode()
    paid.refresh_from_db()
    assert paid.status == "succeeded"


def test_user_without_merchant_sees_a_clear_page(client, django_user_model):
    user = django_user_model.objects.create_user("lonely", password="x-pw-12345")
    client.force_login(user)
    response = client.get(reverse("dashboard:payment_list"))
    assert response.status_code == 403 and "does not belong to any merchant" in response.content.decode()


def test_admin_shows_statuses_read_only_and_actions_use_services(admin_client, merchant_a, sandbox_wire):
    held = payment_create(merchant=merchant_a, data=payment_input(), submit=False)
    from payments.services.payments import payment_hold

    payment_hold(payment=held)
    url = reverse("admin:payments_payment_change", args=[held.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="status"' not in page
    admin_client.post(
        reverse("admin:payments_payment_changelist"),
        {"action": "release_selected", "_selected_action": [held.pk], "reason": "reviewed"},
    )
    held.refresh_from_db()
    assert held.status == "succeeded"
    assert list(held.events.values_list("type", flat=True)) == [
        "payment.created",
        "payment.on_hold",
        "payment.released",
        "payment.processing",
        "payment.succeeded",
    ]


def test_qr_code_next_action_is_drawn(client, alice, merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    payment = payment_create(merchant=merchant_a, data=payment_input(beneficiary_account="4000000000003155"))
    Payment.objects.filter(pk=payment.pk).update(
        next_action={
            "type": "display_qr_code",
            "qr_code": "https://qr.alipay.com/bax0123",
            "expires_at": "soon",
        }
    )
    client.force_login(alice)
    page = client.get(reverse("dashboard:payment_detail", args=[payment.public_id])).content.decode()
    assert '<svg width="' in page and "scan this code" in page


def test_page_links_keep_the_filters(client, alice, merchant_a):
    from tests.factories import PaymentFactory

    PaymentFactory.create_batch(30, merchant=merchant_a)
    client.force_login(alice)
    page = client.get(
        reverse("dashboard:payment_list"), {"status": "created", "currency": "USD"}
    ).content.decode()
    assert 'href="?status=created&amp;currency=USD&amp;page=2"' in page
