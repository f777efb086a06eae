"""Dashboard batch pages: upload, validation result, approve/cancel by role, live progress, downloads."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from merchants.models import Membership
from payments.models import PaymentBatch
from tests.conftest import confirmed_post
from tests.factories import MembershipFactory, UserFactory
from tests.payments.conftest import login
from tests.payments.test_batch_support import csv_bytes, media, rows  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


def test_the_upload_page_and_the_list(alice, uploaded):
    page = login(alice).get(reverse("dashboard:batch_new"))
    assert page.status_code == 200
    assert b'name="file"' in page.content and b"csrfmiddlewaretoken" in page.content
    batch = uploaded()
    assert (batch.status, batch.name, batch.uploaded_by.username) == ("validated", "Payroll", "bob@a.example")
    listing = login(alice).get(reverse("dashboard:batch_list"))
    assert batch.public_id.encode() in listing.content
    assert "$30.00" in listing.content.decode()


def test_a_viewer_cannot_upload(merchant_a):
    viewer = UserFactory(username="viewer@a.example")
    MembershipFactory(user=viewer, merchant=merchant_a, role=Membership.Role.VIEWER)
    response = login(viewer).post(reverse("dashboard:batch_new"), {"file": SimpleUploadedFile("a.csv", b"x")})
    assert response.status_code == 403
    assert not PaymentBatch.objects.exists()


def test_the_upload_checks_csrf_after_taking_over_the_upload(bob):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    response = client.post(
        reverse("dashboard:batch_new"), {"file": SimpleUploadedFile("a.csv", csv_bytes(rows(1)))}
    )
    assert response.status_code == 403
    assert not PaymentBatch.objects.exists()


def test_a_file_over_the_limit_gets_413_and_is_not_kept(bob, settings):
    settings.PAYDESK_BATCH_MAX_BYTES = 10_000
    response = login(bob).post(
        reverse("dashboard:batch_new"), {"file": SimpleUploadedFile("big.csv", csv_bytes(rows(3000)))}
    )
    assert response.status_code == 413
    assert b"larger than the limit" in response.content
    assert not PaymentBatch.objects.exists()


def test_the_same_file_again_shows_a_link_to_the_first_batch(bob, uploaded):
    data = csv_bytes(rows(2))
    first = uploaded(data)
    response = login(bob).post(
        reverse("dashboard:batch_new"), {"file": SimpleUploadedFile("again.csv", data)}
    )
    assert response.status_code == 409
    assert reverse("dashboard:batch_detail", args=[first.public_id]).encode() in response.content


def test_the_validation_page_shows_counts_totals_and_first_errors(alice, uploaded):
    batch = uploaded()
    page = login(alice).get(reverse("dashboard:batch_detail", args=[batch.public_id]))
    content = page.content.decode()
    assert "too_many_decimals" in content
    assert "$30.00" in content
    assert reverse("dashboard:batch_errors_csv", args=[batch.public_id]) in content
    assert reverse("dashboard:batch_approve", args=[batch.public_id]) in content


def test_with_four_eyes_the_uploader_sees_why_not_instead_of_the_button(merchant_a, bob, carol, uploaded):
    merchant_a.four_eyes = True
    merchant_a.save()
    bob.memberships.update(role=Membership.Role.OWNER)
    batch = uploaded()
    own = login(bob).get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    assert reverse("dashboard:batch_approve", args=[batch.public_id]) not in own
    assert "someone else must approve" in own
    other = login(carol).get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    assert reverse("dashboard:batch_approve", args=[batch.public_id]) in other


def test_approving_and_watching_progress(carol, uploaded, sandbox_wire, django_capture_on_commit_callbacks):
    batch = uploaded()
    client = login(carol)
    with django_capture_on_commit_callbacks(execute=True):
        response = confirmed_post(client, reverse("dashboard:batch_approve", args=[batch.public_id]))
    assert response.status_code == 302
    progress = client.get(reverse("dashboard:batch_progress", args=[batch.public_id])).json()
    assert progress["status"] == "completed"
    assert (progress["total"], progress["final"], progress["percent"]) == (3, 3, 100.0)
    page = client.get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    assert "Outcome" in page and reverse("dashboard:batch_results_csv", args=[batch.public_id]) in page
    again = client.get(reverse("dashboard:batch_approve", args=[batch.public_id]), follow=True)
    assert "Only a validated batch can be approved." in again.content.decode()


def test_a_processing_page_polls_a_progress_endpoint(carol, uploaded, django_capture_on_commit_callbacks):
    batch = uploaded()
    with django_capture_on_commit_callbacks():  # approved; the workers have not started yet
        confirmed_post(login(carol), reverse("dashboard:batch_approve", args=[batch.public_id]))
    page = login(carol).get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    assert reverse("dashboard:batch_progress", args=[batch.public_id]) in page
    assert "setTimeout(poll" in page


def test_cancelling_from_the_page(bob, uploaded, django_capture_on_commit_callbacks):
    batch = uploaded()
    with django_capture_on_commit_callbacks(execute=True):
        login(bob).post(reverse("dashboard:batch_cancel", args=[batch.public_id]))
    batch.refresh_from_db()
    assert batch.status == "cancelled"
    assert set(batch.payments.values_list("status", flat=True)) == {"cancelled"}


def test_downloads_stream_the_reports(alice, uploaded):
    batch = uploaded()
    client = login(alice)
    for name, content_type, needle in (
        ("batch_errors_csv", "text/csv; charset=utf-8", b"too_many_decimals"),
        ("batch_results_csv", "text/csv; charset=utf-8", b"PAY-00003"),
        ("batch_pain002", "application/xml", b"<TxSts>PDNG</TxSts>"),
    ):
        response = client.get(reverse(f"dashboard:{name}", args=[batch.public_id]))
        assert response.streaming and response["Content-Type"] == content_type
        assert needle in b"".join(response.streaming_content)
    payments = client.get(reverse("dashboard:batch_payments", args=[batch.public_id]), {"status": "created"})
    assert payments.content.count(b"/payments/pay_") == 3


def test_another_merchants_batch_is_not_found(mallory, uploaded):
    batch = uploaded()
    client = login(mallory)
    for name in ("batch_detail", "batch_progress", "batch_payments", "batch_errors_csv", "batch_pain002"):
        assert client.get(reverse(f"dashboard:{name}", args=[batch.public_id])).status_code == 404
    assert client.post(reverse("dashboard:batch_cancel", args=[batch.public_id])).status_code == 404
    assert PaymentBatch.objects.get(pk=batch.pk).status == "validated"


def test_the_batch_page_loads_uploader_and_approver_with_the_batch(
    carol, uploaded, sandbox_wire, django_capture_on_commit_callbacks
):
    batch = uploaded()
    client = login(carol)
    with django_capture_on_commit_callbacks(execute=True):
        confirmed_post(client, reverse("dashboard:batch_approve", args=[batch.public_id]))
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    assert batch.uploaded_by.email in page and carol.email in page
    # The session's user is loaded once; the uploader and approver come joined to the batch.
    user_queries = [q["sql"] for q in queries if q["sql"].startswith('SELECT "auth_user"')]
    assert len(user_queries) == 1
