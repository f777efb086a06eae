"""Issue 11, batches: "Retry failed" (a new batch of the retryable failures) and "Download the bad rows"."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from payments.models import BatchStatus, Payment, PaymentBatch, PaymentStatus
from payments.services.batches.lifecycle import BatchForbidden, batch_approve
from payments.services.batches.retry import batch_retry_create, retry_reference, retryable_failures
from tests.conftest import confirm_token_of, confirmed_post
from tests.payments.conftest import login
from tests.payments.test_batch_support import ACCOUNT, csv_bytes, media, rows  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media")]

# (failure code, retryable as the gateway said) per row of the finished batch; the last one succeeded.
FAILURES = [
    ("processing_error", True),  # transient: retried
    ("insufficient_funds", False),  # fixable by topping up: retried
    ("card_declined", False),  # the beneficiary's side refused: not retried
    ("rejected_after_review", False),  # PayDesk's reviewers: never
    ("blocked_account", True),  # blocklist: never, whatever the gateway said
]


@pytest.fixture
def finished(carol, uploaded, sandbox_wire, django_capture_on_commit_callbacks):
    """A batch bob uploaded, carol approved, completed; then its outcomes set to FAILURES."""

    def make(failures=FAILURES, amounts=("10.00", "12.34", "20.00", "30.00", "40.00", "50.00")):
        data = [
            (f"PAY-{i:05d}", amount, "EUR" if i == 2 else "USD", "bank_transfer", f"Employee {i}", ACCOUNT)
            for i, amount in enumerate(amounts, start=1)
        ]
        batch = uploaded(csv_bytes(data))
        with django_capture_on_commit_callbacks(execute=True):
            batch_approve(batch=batch, user=carol)
        batch.refresh_from_db()
        assert batch.status == BatchStatus.COMPLETED
        payments = list(Payment.objects.filter(batch=batch).order_by("pk"))
        for payment, (code, retryable) in zip(payments, failures, strict=False):
            Payment.objects.filter(pk=payment.pk).update(
                status=PaymentStatus.FAILED, failure_code=code, failure_retryable=retryable
            )
        return batch

    return make


def _retry(client, batch, capture):
    url = reverse("dashboard:batch_retry", args=[batch.public_id])
    with capture(execute=True):
        return confirmed_post(client, url)


def test_only_retryable_failures_are_copied_with_exact_amounts(
    bob, finished, django_capture_on_commit_callbacks
):
    batch = finished()
    assert sorted(retryable_failures(batch).values_list("reference", flat=True)) == ["PAY-00001", "PAY-00002"]
    client = login(bob)
    review = client.get(reverse("dashboard:batch_retry", args=[batch.public_id])).content.decode()
    assert "2 failed payments will be copied" in review
    assert "10.00 USD" in review and "12.34 EUR" in review
    response = _retry(client, batch, django_capture_on_commit_callbacks)
    retry = PaymentBatch.objects.get(retry_of=batch)
    assert response["Location"] == reverse("dashboard:batch_detail", args=[retry.public_id])
    assert retry.status == BatchStatus.VALIDATED and retry.uploaded_by == bob
    copied = {
        p.reference: (p.amount_minor, p.currency, p.beneficiary_account, p.status)
        for p in Payment.objects.filter(batch=retry)
    }
    assert copied == {
        "PAY-00001-R1": (1000, "USD", ACCOUNT, PaymentStatus.CREATED),
        "PAY-00002-R1": (1234, "EUR", ACCOUNT, PaymentStatus.CREATED),
    }
    # Linked both ways.
    source_page = client.get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    assert reverse("dashboard:batch_detail", args=[retry.public_id]) in source_page
    assert reverse("dashboard:batch_retry", args=[batch.public_id]) not in source_page  # already retried
    retry_page = client.get(reverse("dashboard:batch_detail", args=[retry.public_id])).content.decode()
    assert 'id="retry-of"' in retry_page and batch.public_id in retry_page


def test_four_eyes_the_person_who_retried_cannot_approve_the_retry(
    merchant_a, alice, carol, finished, django_capture_on_commit_callbacks
):
    merchant_a.four_eyes = True
    merchant_a.save()
    batch = finished()
    with django_capture_on_commit_callbacks(execute=True):
        retry = batch_retry_create(batch=batch, user=alice)  # the owner retries
    retry.refresh_from_db()
    assert retry.status == BatchStatus.VALIDATED and retry.uploaded_by == alice
    owner = login(alice)
    refused = owner.get(reverse("dashboard:batch_detail", args=[retry.public_id])).content.decode()
    assert "someone else must approve" in refused
    with pytest.raises(BatchForbidden):
        batch_approve(batch=retry, user=alice)
    with django_capture_on_commit_callbacks(execute=True):
        batch_approve(batch=retry, user=carol)
    retry.refresh_from_db()
    assert retry.approved_by == carol


def test_two_clicks_make_one_retry_batch(bob, finished, django_capture_on_commit_callbacks):
    batch = finished()
    client = login(bob)
    url = reverse("dashboard:batch_retry", args=[batch.public_id])
    token = confirm_token_of(client.get(url))
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url, {"confirm_token": token})
        second = client.post(url, {"confirm_token": token})
    assert first["Location"] == second["Location"]
    assert PaymentBatch.objects.filter(retry_of=batch).count() == 1
    # Another confirmation page opened in a second tab: still the same batch.
    retry = PaymentBatch.objects.get(retry_of=batch)
    with django_capture_on_commit_callbacks(execute=True):
        assert batch_retry_create(batch=batch, user=bob) == retry
    assert PaymentBatch.objects.filter(retry_of=batch).count() == 1


def test_a_cancelled_retry_may_be_made_again(bob, finished, django_capture_on_commit_callbacks):
    batch = finished()
    with django_capture_on_commit_callbacks(execute=True):
        first = batch_retry_create(batch=batch, user=bob)
    first.refresh_from_db()
    assert first.status == BatchStatus.VALIDATED
    client = login(bob)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("dashboard:batch_cancel", args=[first.public_id]))
    first.refresh_from_db()
    assert first.status == BatchStatus.CANCELLED
    with django_capture_on_commit_callbacks(execute=True):
        second = batch_retry_create(batch=batch, user=bob)
    second.refresh_from_db()
    assert second != first and second.retry_of == batch
    # The cancelled retry's references stay taken: the new one uses the next suffix and validates.
    assert second.status == BatchStatus.VALIDATED and second.error_count == 0
    assert sorted(Payment.objects.filter(batch=second).values_list("reference", flat=True)) == [
        "PAY-00001-R2",
        "PAY-00002-R2",
    ]


def test_who_may_retry(alice, bob, carol, mallory, merchant_a, finished, django_capture_on_commit_callbacks):
    from merchants.models import Membership
    from tests.factories import MembershipFactory, UserFactory

    vic = UserFactory(username="vic@a.example")
    MembershipFactory(user=vic, merchant=merchant_a, role=Membership.Role.VIEWER)
    batch = finished()
    url = reverse("dashboard:batch_retry", args=[batch.public_id])
    for user, status in ((carol, 403), (vic, 403), (mallory, 404), (alice, 200), (bob, 200)):
        assert login(user).get(url).status_code == status, user
    for user, status in ((carol, 403), (vic, 403), (mallory, 404)):
        assert login(user).post(url, {"confirm_token": "x" * 32}).status_code == status, user
    assert not PaymentBatch.objects.filter(retry_of=batch).exists()
    with pytest.raises(BatchForbidden):
        batch_retry_create(batch=batch, user=carol)
    page = login(carol).get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    assert reverse("dashboard:batch_retry", args=[batch.public_id]) not in page


def test_a_batch_with_no_retryable_failures_offers_no_button(
    bob, finished, django_capture_on_commit_callbacks
):
    batch = finished(failures=[("card_declined", False), ("rejected_after_review", False)])
    client = login(bob)
    page = client.get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    assert "Completed with 2 failures" in page
    assert reverse("dashboard:batch_retry", args=[batch.public_id]) not in page
    again = client.get(reverse("dashboard:batch_retry", args=[batch.public_id]), follow=True)
    assert "no failures that can be retried" in again.content.decode()


def test_a_batch_with_retryable_failures_offers_the_button(bob, finished):
    batch = finished()
    page = login(bob).get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    assert reverse("dashboard:batch_retry", args=[batch.public_id]) in page


def test_retry_references():
    assert retry_reference("A-1") == "A-1-R1"
    assert retry_reference("A-1-R1") == "A-1-R2"
    assert retry_reference("A-1", earlier=1) == "A-1-R2"
    assert len(retry_reference("x" * 140)) == 140 and retry_reference("x" * 140).endswith("-R1")


# Download the bad rows ------------------------------------------------------------------------


def test_the_bad_rows_are_given_as_uploaded_fixed_and_uploaded_again_they_validate(
    bob, uploaded, django_capture_on_commit_callbacks
):
    header = (
        "reference",
        "amount",
        "currency",
        "method",
        "beneficiary_name",
        "beneficiary_account",
        "description",
    )
    data = [
        ("OK-1", "10.00", "USD", "bank_transfer", "Ann", ACCOUNT, "fine"),
        ("BAD-1", "1.234", "USD", "bank_transfer", "Bo", ACCOUNT, "=1+1"),
        ("OK-2", "11.00", "USD", "bank_transfer", "Cy", ACCOUNT, ""),
        ("BAD-2", "5.00", "XXQ", "bank_transfer", "Di", ACCOUNT, "two"),
    ]
    batch = uploaded(csv_bytes(data, header=header))
    assert (batch.valid_count, batch.error_count) == (2, 2)
    client = login(bob)
    page = client.get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    url = reverse("dashboard:batch_bad_rows_csv", args=[batch.public_id])
    assert url in page
    response = client.get(url)
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    got = list(csv.reader(io.StringIO(body)))
    assert got[0] == list(header)  # the upload's columns, no error column (the upload refuses unknown ones)
    assert got[1:] == [
        ["BAD-1", "1.234", "USD", "bank_transfer", "Bo", ACCOUNT, "'=1+1"],  # formula-neutralised
        ["BAD-2", "5.00", "XXQ", "bank_transfer", "Di", ACCOUNT, "two"],
    ]
    fixed = [got[0], ["BAD-1", "1.23", *got[1][2:6], "fixed"], ["BAD-2", "5.00", "USD", *got[2][3:]]]
    out = io.StringIO()
    csv.writer(out).writerows(fixed)
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(
            reverse("dashboard:batch_new"), {"file": SimpleUploadedFile("fixed.csv", out.getvalue().encode())}
        )
    assert again.status_code == 302
    second = PaymentBatch.objects.latest("pk")
    assert second != batch and second.status == BatchStatus.VALIDATED
    assert (second.valid_count, second.error_count) == (2, 0)
    assert sorted(Payment.objects.filter(batch=second).values_list("reference", "amount_minor")) == [
        ("BAD-1", 123),
        ("BAD-2", 500),
    ]


def test_no_bad_rows_link_without_row_errors_nor_once_the_file_is_gone(bob, uploaded):
    batch = uploaded(csv_bytes(rows(2)))
    client = login(bob)
    url = reverse("dashboard:batch_bad_rows_csv", args=[batch.public_id])
    assert url not in client.get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    bad = uploaded(csv_bytes([*rows(1, prefix="X"), ("BAD", "1.234", "USD", "bank_transfer", "B", ACCOUNT)]))
    PaymentBatch.objects.filter(pk=bad.pk).update(stored_file="")  # past its retention
    gone = client.get(reverse("dashboard:batch_bad_rows_csv", args=[bad.public_id]), follow=True)
    assert "no longer kept" in gone.content.decode()
