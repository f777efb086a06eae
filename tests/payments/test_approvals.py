"""The approvals inbox (issue 11): who is asked, the count in the navigation, requests by name."""

import pytest
from django.urls import reverse

from payments.models import Notification
from payments.services.payments import payment_create
from tests.conftest import confirmed_post
from tests.factories import payment_input
from tests.payments.conftest import login
from tests.payments.test_batch_support import csv_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media")]


def test_the_approver_sees_the_batch_in_the_inbox_with_a_count(carol, alice, uploaded):
    merchant = carol.memberships.get().merchant
    merchant.four_eyes = True
    merchant.save()
    batch = uploaded()  # by bob, the operator
    page = login(carol).get(reverse("dashboard:approvals")).content.decode()
    assert batch.public_id in page and "30.00 USD" in page
    nav = login(carol).get(reverse("dashboard:payment_list")).content.decode()
    assert 'id="nav-approvals">Approvals <span class="badge' in nav and ">1</span>" in nav


def test_the_uploader_is_not_asked_to_approve_their_own_batch(bob, carol, merchant_a, uploaded):
    bob.memberships.update(role="owner")
    merchant_a.four_eyes = True
    merchant_a.save()
    batch = uploaded()
    assert batch.public_id not in login(bob).get(reverse("dashboard:approvals")).content.decode()
    assert batch.public_id in login(carol).get(reverse("dashboard:approvals")).content.decode()


def test_approvers_are_told_when_a_batch_is_validated(carol, alice, bob, uploaded):
    batch = uploaded()
    told = Notification.objects.filter(link=reverse("dashboard:batch_approve", args=[batch.public_id]))
    assert set(told.values_list("user__username", flat=True)) == {"carol@a.example", "alice@a.example"}
    assert "awaits your approval" in told.first().title


def test_an_operator_asks_a_named_approver(bob, carol, alice, uploaded):
    batch = uploaded()
    Notification.objects.all().delete()
    page = login(bob).get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    assert 'id="request-approval"' in page and 'value="carol@a.example"' in page
    response = login(bob).post(
        reverse("dashboard:batch_request_approval", args=[batch.public_id]), {"approver": ["carol@a.example"]}
    )
    assert response.status_code == 302
    note = Notification.objects.get()
    assert note.user == carol and "asks you to approve Payroll" in note.title
    refused = login(bob).post(
        reverse("dashboard:batch_request_approval", args=[batch.public_id]),
        {"approver": ["bob@a.example"]},
        follow=True,
    )
    assert "Choose at least one member who may approve" in refused.content.decode()
    assert Notification.objects.count() == 1


def test_held_payments_are_in_the_inbox(carol, merchant_a, sandbox_wire):
    merchant_a.risk_threshold = 0
    merchant_a.save()
    payment_create(merchant=merchant_a, data=payment_input(reference="HELD-1"))
    assert "HELD-1" in login(carol).get(reverse("dashboard:approvals")).content.decode()


def test_row_errors_show_the_offending_value_and_beneficiary(alice, uploaded):
    batch = uploaded()
    page = login(alice).get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    assert "<mark>1.234</mark>" in page and "BAD-1" in page


def test_a_completed_batch_with_failures_says_so(
    carol, bob, uploaded, sandbox_wire, django_capture_on_commit_callbacks
):

    rows = [
        (f"R-{i}", "10.00", "USD", "card", "Pat", f"400000000000{'0002' if i % 2 else '1234'}")
        for i in range(4)
    ]
    batch = uploaded(csv_bytes(rows))
    with django_capture_on_commit_callbacks(execute=True):
        confirmed_post(login(carol), reverse("dashboard:batch_approve", args=[batch.public_id]))
    page = login(carol).get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    assert "Completed with 2 failures" in page
    assert "bg-success" not in page and "status-failed" in page
