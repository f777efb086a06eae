"""Payout routing per method, refused rows, funding accounts and requested execution dates."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from merchants.models import FundingAccount
from merchants.services import FundingAccountInvalid, funding_account_create
from payments.models import BankFile, BatchRowError, Payment, PaymentBatch
from payments.representations import payment_data
from payments.services.batches.bank_files import bank_file_write
from payments.services.batches.execute import batch_sweep
from payments.services.batches.lifecycle import (
    BatchError,
    batch_approve,
    batch_options_clean,
    batch_start,
    batch_upload,
    batches_due,
)
from payments.services.batches.upload import store_bytes
from payments.services.payment_input import payment_input_validate
from payments.services.payments import payment_create
from payments.validation import PaymentInvalid
from tests.factories import PaymentFactory, payment_input
from tests.payments.test_batch_support import csv_bytes, media, pain001, upload  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]
IBAN = "DE89370400440532013000"


@pytest.fixture
def bank_route(settings):
    settings.PAYDESK_PAYOUT_ROUTES = {**settings.PAYDESK_PAYOUT_ROUTES, "bank_transfer": "bank_file"}


@pytest.fixture
def eur_account(merchant_a):
    return funding_account_create(
        merchant=merchant_a, name="A GmbH", iban="DE44500105175407324931", currency="EUR"
    )


def errors(batch) -> list[tuple[int, str, str]]:
    return list(
        BatchRowError.objects.filter(batch=batch).order_by("line").values_list("line", "column", "code")
    )


def test_a_method_without_a_payout_rail_is_a_clear_row_error(
    merchant_a, alice, settings, django_capture_on_commit_callbacks
):
    settings.PAYDESK_PAYOUT_ROUTES = {**settings.PAYDESK_PAYOUT_ROUTES, "card": "", "alipay": "alipay"}
    data = csv_bytes(
        [
            ("R-1", "10.00", "USD", "card", "Ann", "4000000000000001"),
            ("R-2", "10.00", "CNY", "alipay", "Bo", "bo@example.com"),
            ("R-3", "10.00", "USD", "paypal", "Cy", "cy@example.com"),
        ]
    )
    batch = upload(merchant_a, data, user=alice, capture=django_capture_on_commit_callbacks)
    assert errors(batch) == [(2, "method", "no_payout_rail"), (3, "method", "no_payout_rail")]
    message = BatchRowError.objects.filter(batch=batch).first().message
    assert "PAYDESK_PAYOUT_CARD" in message
    assert list(Payment.objects.filter(batch=batch).values_list("reference", flat=True)) == ["R-3"]


def test_bank_rows_need_an_end_to_end_id_of_35_characters_a_valid_iban_and_a_funding_account(
    merchant_a, alice, bank_route, eur_account, django_capture_on_commit_callbacks
):
    data = csv_bytes(
        [
            ("OK-1", "10.00", "EUR", "bank_transfer", "Ann", IBAN),
            ("X" * 36, "10.00", "EUR", "bank_transfer", "Bo", IBAN),
            ("BAD-IBAN", "10.00", "EUR", "bank_transfer", "Cy", "DE89370400440532013001"),
            ("NO-USD", "10.00", "USD", "bank_transfer", "Di", IBAN),
            ("LOCAL-1", "10.00", "EUR", "bank_transfer", "Ed", "12345678901"),
        ]
    )
    batch = upload(merchant_a, data, user=alice, capture=django_capture_on_commit_callbacks)
    assert errors(batch) == [
        (3, "reference", "reference_too_long"),
        (4, "beneficiary_account", "invalid_iban"),
        (5, "currency", "no_funding_account"),
    ]
    assert set(Payment.objects.filter(batch=batch).values_list("gateway", flat=True)) == {"bank_file"}


def test_bank_transfers_cannot_be_real_time_payments(merchant_a, settings):
    settings.PAYDESK_GATEWAY_ROUTES = {**settings.PAYDESK_GATEWAY_ROUTES, "bank_transfer": "bank_file"}
    values = {
        "reference": "RT-1",
        "amount": "1.00",
        "currency": "EUR",
        "method": "bank_transfer",
        "beneficiary_name": "Ann",
        "beneficiary_account": IBAN,
    }
    with pytest.raises(PaymentInvalid) as caught:
        payment_input_validate(merchant=merchant_a, data=values)
    assert [(e.field, e.code) for e in caught.value.errors] == [("method", "batch_only")]


def test_create_funding_account_prints_its_id_last(merchant_a, capsys):
    call_command(
        "create_funding_account",
        "merchant-a",
        "--name",
        "A GmbH",
        "--iban",
        "DE44 5001 0517 5407 3249 31",
        "--bic",
        "INGDDEFFXXX",
        "--currency",
        "eur",
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    account = FundingAccount.objects.get(public_id=last)
    assert (account.iban, account.bic, account.currency, account.is_default) == (
        "DE44500105175407324931",
        "INGDDEFFXXX",
        "EUR",
        True,
    )
    with pytest.raises(CommandError, match="iban"):
        call_command(
            "create_funding_account", "merchant-a", "--name", "X", "--iban", "DE00123", "--currency", "EUR"
        )
    with pytest.raises(CommandError, match="No merchant"):
        call_command("create_funding_account", "nobody", "--name", "X", "--iban", IBAN, "--currency", "EUR")


def test_the_first_account_of_a_currency_is_its_default_and_a_new_default_replaces_it(merchant_a):
    first = funding_account_create(merchant=merchant_a, name="One", iban=IBAN, currency="EUR")
    second = funding_account_create(
        merchant=merchant_a, name="Two", iban="DE44500105175407324931", currency="EUR"
    )
    assert (first.is_default, second.is_default) == (True, False)
    third = funding_account_create(
        merchant=merchant_a,
        name="Three",
        account_number="0012345",
        bank_code="102100099996",
        currency="EUR",
        is_default=True,
    )
    defaults = FundingAccount.objects.filter(merchant=merchant_a, is_default=True)
    assert list(defaults) == [third]
    with pytest.raises(FundingAccountInvalid) as caught:
        funding_account_create(merchant=merchant_a, name="", currency="euro")
    assert set(caught.value.errors) == {"name", "currency", "iban"}


def test_a_batch_pays_from_the_account_named_at_upload_in_its_currency_else_the_default(
    merchant_a, alice, carol, bank_route, eur_account, django_capture_on_commit_callbacks
):
    usd = funding_account_create(
        merchant=merchant_a, name="A Inc", account_number="987654321", currency="USD"
    )
    named = funding_account_create(merchant=merchant_a, name="Payroll", iban=IBAN, currency="EUR")
    data = csv_bytes(
        [
            ("E-1", "10.00", "EUR", "bank_transfer", "Ann", "GB29NWBK60161331926819"),
            ("U-1", "20.00", "USD", "bank_transfer", "Bo", "GB29NWBK60161331926819"),
        ]
    )
    with django_capture_on_commit_callbacks(execute=True):
        batch = batch_upload(
            merchant=merchant_a, upload=store_bytes(data, "p.csv"), user=alice, funding_account=named
        )
    with django_capture_on_commit_callbacks(execute=True):
        batch_approve(batch=PaymentBatch.objects.get(pk=batch.pk), user=carol)
    bank_file = BankFile.objects.get(batch=batch)
    assert bank_file.status == "written" and bank_file.nb_of_txs == 2
    text = (media_root(bank_file)).read_text()
    assert f"<IBAN>{IBAN}</IBAN></Id><Ccy>EUR</Ccy>" in text  # the named account pays the EUR row
    assert "<Othr><Id>987654321</Id></Othr></Id><Ccy>USD</Ccy>" in text  # the USD default the USD row
    assert usd.is_default and eur_account.is_default
    assert bank_file_write(batch_id=batch.pk) is None  # written once


def media_root(bank_file):
    return Path(django_settings.MEDIA_ROOT) / bank_file.stored_file


def test_options_at_upload_are_checked(merchant_a, merchant_b, eur_account):
    other = funding_account_create(merchant=merchant_b, name="B", iban=IBAN, currency="EUR")
    with pytest.raises(BatchError) as caught:
        batch_options_clean(merchant=merchant_a, funding_account=other.public_id)
    assert caught.value.code == "invalid_funding_account"
    for bad in ("2026-02-30", "yesterday", (timezone.localdate() - timedelta(days=1)).isoformat()):
        with pytest.raises(BatchError) as caught:
            batch_options_clean(merchant=merchant_a, execution_date=bad)
        assert caught.value.code == "invalid_execution_date"
    assert batch_options_clean(
        merchant=merchant_a, funding_account=eur_account.public_id, execution_date=""
    ) == (
        eur_account,
        None,
    )


def test_an_approved_batch_waits_for_its_execution_date_and_the_schedule_starts_it_that_day(
    merchant_a, alice, carol, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(timezone.make_aware(timezone.datetime(2026, 3, 2, 9, 0)), tick=False)
    data = csv_bytes([("D-1", "10.00", "USD", "card", "Ann", "4000000000000001")])
    with django_capture_on_commit_callbacks(execute=True):
        batch = batch_upload(
            merchant=merchant_a,
            upload=store_bytes(data, "d.csv"),
            user=alice,
            execution_date=date(2026, 3, 4),
        )
    with django_capture_on_commit_callbacks(execute=True):
        batch_approve(batch=PaymentBatch.objects.get(pk=batch.pk), user=carol)
    batch.refresh_from_db()
    assert batch.status == "approved" and batch.execution_date == date(2026, 3, 4)
    time_machine.move_to(timezone.make_aware(timezone.datetime(2026, 3, 3, 23, 0)), tick=False)
    assert batch_sweep()["batch_starts"] == 0 and batches_due() == 0
    batch_start(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == "approved"
    time_machine.move_to(timezone.make_aware(timezone.datetime(2026, 3, 4, 0, 10)), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert batches_due() == 1
    batch.refresh_from_db()
    assert batch.status in ("processing", "completed")


def test_a_pain001_requested_execution_date_is_the_batchs(
    merchant_a, alice, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(timezone.make_aware(timezone.datetime(2026, 1, 10, 9, 0)), tick=False)
    data = pain001([("P-1", "10.00", "EUR", "Ann", IBAN)], version="pain.001.001.09")
    batch = upload(merchant_a, data, user=alice, name="p.xml", capture=django_capture_on_commit_callbacks)
    assert batch.execution_date == date(2026, 1, 16)
    payment = Payment.objects.get(batch=batch)
    assert payment.metadata["requested_execution_date"] == "2026-01-16"


def test_the_api_shows_a_payments_direction_fixed_from_its_route_at_creation(merchant_a, settings):
    batch = PaymentBatch.objects.create(merchant=merchant_a)
    row = PaymentFactory(merchant=merchant_a, batch=batch, method="alipay", gateway="sandbox")
    card = payment_create(merchant=merchant_a, data=payment_input(reference="DIR-1"), submit=False)
    assert [payment_data(p)["direction"] for p in (row, card)] == ["payout", "payout"]
    # Rerouting later does not rewrite what an existing payment was.
    settings.PAYDESK_GATEWAY_ROUTES = {**settings.PAYDESK_GATEWAY_ROUTES, "card": "paypal"}
    card.refresh_from_db()
    assert payment_data(card)["direction"] == "payout"


def test_the_migration_marks_existing_real_time_payments_of_collecting_gateways():
    from importlib import import_module

    migration = import_module("payments.migrations.0011_payment_direction")
    assert set(migration.collecting_gateways()) == {"alipay", "wechat_pay", "paypal"}
