"""Dashboard payouts: funding accounts (owners), upload options, bank-file download, bank report upload."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from merchants.models import AuditEntry, FundingAccount
from merchants.services import funding_account_create
from payments.models import BankReport, Payment, PaymentBatch
from tests.conftest import confirmed_post
from tests.formats.bank_builders import pain002
from tests.payments.test_batch_support import csv_bytes, media  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]
IBAN = "DE89370400440532013000"


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_owner_adds_a_funding_account_and_makes_another_the_default(alice):
    page = reverse("dashboard:funding_account_list")
    response = login(alice).post(
        page, {"name": "A GmbH", "currency": "eur", "iban": "DE44 5001 0517 5407 3249 31"}
    )
    assert response.status_code == 302
    first = FundingAccount.objects.get(name="A GmbH")
    assert (first.iban, first.currency, first.is_default) == ("DE44500105175407324931", "EUR", True)
    login(alice).post(page, {"name": "Payroll", "currency": "EUR", "iban": IBAN})
    second = FundingAccount.objects.get(name="Payroll")
    login(alice).post(reverse("dashboard:funding_account_action", args=[second.public_id, "default"]))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_default, second.is_default) == (False, True)
    assert AuditEntry.objects.filter(
        action="funding_account.made_default", object_id=second.public_id
    ).exists()
    listing = login(alice).get(page).content.decode()
    assert IBAN in listing and "DE44500105175407324931" in listing


def test_a_bad_iban_is_shown_on_the_form_and_nothing_is_saved(alice):
    response = login(alice).post(
        reverse("dashboard:funding_account_list"), {"name": "A", "currency": "EUR", "iban": "DE00 1234"}
    )
    assert response.status_code == 400
    assert "Not a valid IBAN" in response.content.decode()
    assert not FundingAccount.objects.exists()


def test_only_owners_manage_funding_accounts_and_nobody_sees_another_merchants(alice, bob, mallory):
    account = funding_account_create(
        merchant=alice.memberships.get().merchant, name="A", iban=IBAN, currency="EUR"
    )
    page = reverse("dashboard:funding_account_list")
    assert login(bob).post(page, {"name": "X", "currency": "EUR", "iban": IBAN}).status_code == 403
    assert (
        login(bob)
        .post(reverse("dashboard:funding_account_action", args=[account.public_id, "disable"]))
        .status_code
        == 403
    )
    assert IBAN not in login(mallory).get(page).content.decode()
    assert (
        login(mallory)
        .post(reverse("dashboard:funding_account_action", args=[account.public_id, "disable"]))
        .status_code
        == 404
    )
    account.refresh_from_db()
    assert account.enabled


def test_upload_with_an_account_and_a_date_then_download_the_bank_file_and_upload_the_report(
    alice, bob, carol, mallory, settings, django_capture_on_commit_callbacks
):
    settings.PAYDESK_PAYOUT_ROUTES = {**settings.PAYDESK_PAYOUT_ROUTES, "bank_transfer": "bank_file"}
    merchant = alice.memberships.get().merchant
    account = funding_account_create(
        merchant=merchant, name="A GmbH", iban="DE44500105175407324931", currency="EUR"
    )
    data = csv_bytes([("S-1", "100.00", "EUR", "bank_transfer", "Ann", IBAN)])
    with django_capture_on_commit_callbacks(execute=True):
        response = login(bob).post(
            reverse("dashboard:batch_new"),
            {"file": SimpleUploadedFile("pay.csv", data), "funding_account": account.public_id},
        )
    assert response.status_code == 302
    batch = PaymentBatch.objects.get()
    assert batch.funding_account == account
    with django_capture_on_commit_callbacks(execute=True):
        confirmed_post(login(carol), reverse("dashboard:batch_approve", args=[batch.public_id]))
    detail = login(bob).get(reverse("dashboard:batch_detail", args=[batch.public_id])).content.decode()
    assert "Download bank file (pain.001)" in detail
    download = login(bob).get(reverse("dashboard:batch_bank_file", args=[batch.public_id]))
    assert download["Content-Type"] == "application/xml"
    assert b"<EndToEndId>S-1</EndToEndId>" in b"".join(download.streaming_content)
    assert login(mallory).get(reverse("dashboard:batch_bank_file", args=[batch.public_id])).status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        page = login(bob).post(
            reverse("dashboard:bank_report_list"),
            {"file": SimpleUploadedFile("sts.xml", pain002([("S-1", "RJCT", "AC01"), ("ZZZ", "ACSC", "")]))},
        )
    assert page.status_code == 200
    text = page.content.decode()
    assert "1 applied, 0 already applied, 1 unmatched" in text and "ZZZ" in text
    assert Payment.objects.get(reference="S-1").failure_code == "AC01"
    assert BankReport.objects.get().uploaded_by == bob


def test_a_broken_report_is_shown_as_an_error(bob):
    response = login(bob).post(
        reverse("dashboard:bank_report_list"), {"file": SimpleUploadedFile("x.xml", b"<nope")}
    )
    assert response.status_code == 400
    assert "not well-formed" in response.content.decode()
    assert not BankReport.objects.exists()


def test_the_admin_refuses_a_second_default_and_checks_the_iban(admin_client, merchant_a):
    funding_account_create(merchant=merchant_a, name="A", iban=IBAN, currency="EUR")
    url = reverse("admin:merchants_fundingaccount_add")
    base = {"merchant": merchant_a.pk, "name": "B", "currency": "EUR", "enabled": "on"}
    response = admin_client.post(url, {**base, "iban": "DE00 1234", "is_default": "on"})
    assert response.status_code == 200
    text = response.content.decode()
    assert "Not a valid IBAN" in text
    response = admin_client.post(url, {**base, "iban": "DE44500105175407324931", "is_default": "on"})
    assert "Another account is already the default of this currency." in response.content.decode()
    response = admin_client.post(url, {**base, "iban": "DE44 5001 0517 5407 3249 31"})
    assert response.status_code == 302
    assert FundingAccount.objects.get(name="B").iban == "DE44500105175407324931"
