"""Confirm before money moves (issue 11): a review step, and one effect for two clicks."""

import pytest
from django.urls import reverse

from payments.models import Event, Payment, PaymentBatch, Refund
from payments.services.payments import payment_create
from tests.conftest import confirm_token_of, confirmed_post
from tests.factories import payment_input
from tests.payments.conftest import login
from tests.payments.test_batch_support import csv_bytes, media, rows  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media")]

FORM = {
    "reference": "WEB-1",
    "amount": "1234.50",
    "currency": "USD",
    "method": "card",
    "beneficiary_name": "Grace Hopper",
    "beneficiary_account": "4000000000001234",
}


def test_create_and_send_shows_a_review_before_anything_is_sent(client, bob, sandbox_wire):
    client.force_login(bob)
    review = client.post(reverse("dashboard:payment_new"), FORM)
    page = review.content.decode()
    assert review.status_code == 200 and not Payment.objects.exists()
    for shown in ("1234.50", "USD", "Grace Hopper", "Card", "Send 1234.50 USD"):
        assert shown in page
    assert "Create and send payment" not in client.get(reverse("dashboard:payment_new")).content.decode()


def test_the_review_can_go_back_to_edit_without_sending(client, bob):
    client.force_login(bob)
    response = client.post(reverse("dashboard:payment_new"), {**FORM, "edit": "1"})
    assert response.status_code == 200 and 'value="Grace Hopper"' in response.content.decode()
    assert not Payment.objects.exists()


def test_two_clicks_on_send_create_one_payment(client, bob, sandbox_wire):
    client.force_login(bob)
    url = reverse("dashboard:payment_new")
    token = confirm_token_of(client.post(url, FORM))
    first = client.post(url, {**FORM, "confirm": "1", "confirm_token": token})
    second = client.post(url, {**FORM, "confirm": "1", "confirm_token": token})
    payment = Payment.objects.get()
    detail = reverse("dashboard:payment_detail", args=[payment.public_id])
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == detail
    assert Event.objects.filter(payment=payment, type="payment.created").count() == 1


def test_a_confirmation_without_its_token_does_nothing(client, bob, alice, merchant_a, sandbox_wire):
    client.force_login(bob)
    response = client.post(reverse("dashboard:payment_new"), {**FORM, "confirm": "1"})
    assert response.status_code == 400 and not Payment.objects.exists()
    waiting = payment_create(merchant=merchant_a, data=payment_input(reference="W"), submit=False)
    assert client.post(reverse("dashboard:payment_cancel", args=[waiting.public_id])).status_code == 400
    assert Payment.objects.get(pk=waiting.pk).status == "created"


def test_an_empty_refund_amount_is_stated_as_a_full_refund_first(client, alice, merchant_a, sandbox_wire):
    client.force_login(alice)
    paid = payment_create(merchant=merchant_a, data=payment_input(amount="50.00"))
    url = reverse("dashboard:payment_refund", args=[paid.public_id])
    review = client.post(url, {"amount": "", "reason": "returned"})
    page = review.content.decode()
    assert review.status_code == 200 and not Refund.objects.exists()
    assert "full refund of everything still refundable, 50.00 USD" in page
    assert 'id="refund-remaining">0.00 USD' in page
    confirmed_post(client, url, {"amount": "", "reason": "returned"})
    assert Payment.objects.get(pk=paid.pk).status == "refunded"


def test_a_partial_refund_shows_what_remains_and_two_clicks_refund_once(
    client, alice, merchant_a, sandbox_wire
):
    client.force_login(alice)
    paid = payment_create(merchant=merchant_a, data=payment_input(amount="50.00"))
    url = reverse("dashboard:payment_refund", args=[paid.public_id])
    review = client.post(url, {"amount": "20.00"})
    assert 'id="refund-remaining">30.00 USD' in review.content.decode()
    token = confirm_token_of(review)
    for _ in range(2):
        client.post(url, {"amount": "20.00", "confirm": "1", "confirm_token": token})
    assert Refund.objects.filter(payment=paid).count() == 1
    assert Payment.objects.get(pk=paid.pk).refunded_amount == "20.00"


def test_cancel_asks_first(client, alice, merchant_a):
    client.force_login(alice)
    waiting = payment_create(merchant=merchant_a, data=payment_input(reference="W"), submit=False)
    page = client.get(reverse("dashboard:payment_cancel", args=[waiting.public_id])).content.decode()
    assert "Cancel this payment?" in page and "Yes, cancel the payment" in page
    assert Payment.objects.get(pk=waiting.pk).status == "created"
    confirmed_post(client, reverse("dashboard:payment_cancel", args=[waiting.public_id]))
    assert Payment.objects.get(pk=waiting.pk).status == "cancelled"


def test_batch_approval_shows_count_totals_and_errors_before_the_final_click(
    carol,
    uploaded,
    sandbox_wire,
    django_capture_on_commit_callbacks,
):
    batch = uploaded()
    client = login(carol)
    url = reverse("dashboard:batch_approve", args=[batch.public_id])
    detail = client.get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    assert f'method="post" action="{url}"' not in detail  # the page links to the review, no one-click form
    review = client.get(url)
    page = review.content.decode()
    assert "3 payments will be sent." in page and "30.00 USD" in page and "1 row has errors" in page
    assert PaymentBatch.objects.get(pk=batch.pk).status == "validated"
    token = confirm_token_of(review)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"confirm_token": token})
        again = client.post(url, {"confirm_token": token})
    assert again["Location"] == reverse("dashboard:batch_detail", args=[batch.public_id])
    assert Event.objects.filter(batch=batch, type="batch.approved").count() == 1
    assert PaymentBatch.objects.get(pk=batch.pk).status == "completed"


def test_the_reviews_write_cny_amounts_in_capital_numerals(client, bob, carol, uploaded, sandbox_wire):
    """Issue 12: 大写金额 on the payment review step and on the batch approval of a CNY total."""
    client.force_login(bob)
    page = client.post(reverse("dashboard:payment_new"), {**FORM, "currency": "CNY"}).content.decode()
    assert 'id="amount-in-words"' in page and "壹仟贰佰叁拾肆元伍角" in page
    page = client.post(reverse("dashboard:payment_new"), FORM).content.decode()
    assert 'id="amount-in-words"' not in page  # USD: no words

    batch = uploaded(csv_bytes(rows(2, amount="100002.50", currency="CNY")))
    review = login(carol).get(reverse("dashboard:batch_approve", args=[batch.public_id])).content.decode()
    assert "贰拾万零伍元整" in review
