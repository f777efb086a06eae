"""Fraud controls (issue 13): rates, caps, velocity, blocklist, sanctions; on each entry point."""

import io
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from payments.controls import normalise_name, sanctions_reload
from payments.models import BatchRowError, Event, ExchangeRate, Payment, SanctionedName
from payments.rates import RatesInvalid, RateUnavailable, convert_minor, parse_rates
from payments.services.controls import block_add, sanctions_import
from payments.services.payments import payment_create
from payments.validation import PaymentInvalid
from tests.api.conftest import Api
from tests.factories import PaymentFactory, make_api_key, payment_input
from tests.payments.test_batch_support import csv_bytes, media, upload  # noqa: F401

pytestmark = [pytest.mark.django_db]

ECB_FILE = Path(__file__).resolve().parents[1] / "data" / "eurofxref-daily.xml"
ECB_DAY = date(2026, 12, 4)
IBAN = "GB29NWBK60161331926819"


@pytest.fixture(autouse=True)
def _fresh_sanctions():
    sanctions_reload()
    yield
    sanctions_reload()


@pytest.fixture
def rates(settings, monkeypatch):
    """The shipped ECB file imported, and 'today' the working day after it."""
    call_command("import_rates", str(ECB_FILE), stdout=io.StringIO())
    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: ECB_DAY + timedelta(days=1))
    return ECB_DAY


def pay(merchant, **overrides):
    data = {"method": "bank_transfer", "beneficiary_account": IBAN, **overrides}
    return payment_create(merchant=merchant, data=payment_input(**data))


def hold_codes(payment) -> list[str]:
    event = Event.objects.get(payment=payment, type="payment.on_hold")
    return [r["code"] for r in event.data.get("hold_reasons", [])]


# Exchange rates -----------------------------------------------------------------------------


def test_import_rates_reads_the_real_ecb_file(rates):
    assert ExchangeRate.objects.count() == 29  # BGN left out: not a currency PayDesk pays in
    usd = ExchangeRate.objects.get(currency="USD")
    assert (usd.base, usd.rate, usd.date, usd.source) == ("EUR", Decimal("1.0512"), ECB_DAY, "ecb")
    call_command("import_rates", str(ECB_FILE), stdout=io.StringIO())  # the same day again: replaced
    assert ExchangeRate.objects.count() == 29


def test_conversion_goes_through_the_common_base_exactly(rates):
    assert convert_minor(100_000, "EUR", "USD") == 105_120  # 1,000.00 EUR
    assert convert_minor(105_120, "USD", "EUR") == 100_000
    assert convert_minor(10_000, "USD", "JPY") == 15_101  # 100.00 USD -> JPY (no minor unit)
    assert convert_minor(5, "JPY", "JPY") == 5


def test_a_stale_or_missing_rate_is_unavailable(rates, monkeypatch):
    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: ECB_DAY + timedelta(days=30))
    with pytest.raises(RateUnavailable, match="older than"):
        convert_minor(100, "EUR", "USD")
    with pytest.raises(RateUnavailable, match="no rate"):
        convert_minor(100, "EUR", "KWD")


def test_rates_csv_is_read_and_bad_files_are_refused(tmp_path):
    good = tmp_path / "rates.csv"
    good.write_text("date,base,currency,rate\n2026-12-04,USD,CNY,7.27\n")
    call_command("import_rates", str(good), stdout=io.StringIO())
    assert ExchangeRate.objects.get(base="USD", currency="CNY").rate == Decimal("7.27")
    with pytest.raises(RatesInvalid):
        parse_rates(b"date,base,currency,rate\n2026-12-04,USD,CNY,-1\n")
    with pytest.raises(RatesInvalid):
        parse_rates(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    bad = tmp_path / "bad.csv"
    bad.write_text("when,what\n")
    with pytest.raises(CommandError):
        call_command("import_rates", str(bad), stdout=io.StringIO())


def test_admin_upload_of_rates_reads_the_same_files_as_import_rates(django_user_model, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(root)
    url = reverse("admin:payments_exchangerate_upload")
    assert url in client.get(reverse("admin:payments_exchangerate_changelist")).content.decode()
    assert client.get(url).status_code == 200
    xml = SimpleUploadedFile("eurofxref-daily.xml", ECB_FILE.read_bytes(), content_type="text/xml")
    assert client.post(url, {"file": xml}).status_code == 302
    usd = ExchangeRate.objects.get(currency="USD")
    assert (ExchangeRate.objects.count(), usd.rate, usd.date, usd.source) == (
        29,
        Decimal("1.0512"),
        ECB_DAY,
        "ecb",
    )
    csv_file = SimpleUploadedFile("rates.csv", b"date,base,currency,rate\n2026-12-04,USD,CNY,7.27\n")
    assert client.post(url, {"file": csv_file}).status_code == 302
    assert ExchangeRate.objects.get(base="USD", currency="CNY").source == "rates.csv"
    bad = SimpleUploadedFile("bad.csv", b"date,base,currency,rate\n2026-12-04,USD,CNY,-1\n")
    page = client.post(url, {"file": bad})
    assert page.status_code == 200 and "rate must be positive" in page.content.decode()
    assert ExchangeRate.objects.count() == 30
    staff = django_user_model.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    client.force_login(staff)  # staff without the permission to add rates
    assert client.get(url).status_code == 403


# Caps in the base currency ----------------------------------------------------------------


def test_the_900000_usd_payment_to_a_new_beneficiary_is_held_by_the_first_payment_cap(merchant_a, rates):
    merchant_a.first_payment_cap_minor = 10_000_00  # 10,000.00 USD
    merchant_a.save()
    paid = pay(merchant_a, reference="OK-1", amount="500.00")
    assert paid.status != "on_hold"
    big = pay(merchant_a, reference="BIG-1", amount="900000.00", beneficiary_account="DE89370400440532013000")
    assert big.status == "on_hold"
    assert hold_codes(big) == ["first_payment_cap"]
    # In another currency, converted with the ECB rates: 9,600 EUR is ~10,092 USD, above the cap.
    eur = pay(
        merchant_a,
        reference="EUR-1",
        amount="9600.00",
        currency="EUR",
        beneficiary_account="FR7630006000011234567890189",
    )
    assert eur.status == "on_hold" and hold_codes(eur) == ["first_payment_cap"]
    # A beneficiary paid before is not new.
    again = pay(merchant_a, reference="OK-2", amount="9000.00")
    assert again.status != "on_hold"


def test_the_900000_usd_payment_is_held_by_the_risk_score_against_base_currency_history(merchant_a, rates):
    """The issue's case: a merchant paying hundreds in EUR; 900,000 USD to a new beneficiary."""
    for i in range(20):
        PaymentFactory(merchant=merchant_a, reference=f"H-{i}", amount_minor=30_000 + i, currency="EUR")
    big = pay(merchant_a, reference="BIG", amount="900000.00", beneficiary_account="DE89370400440532013000")
    assert big.status == "on_hold"
    assert Event.objects.get(payment=big, type="payment.on_hold").actor == "system:risk"


def test_caps_fail_closed_when_the_rate_is_stale(merchant_a, rates, monkeypatch):
    merchant_a.first_payment_cap_minor = 10_000_00
    merchant_a.save()
    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: ECB_DAY + timedelta(days=30))
    payment = pay(merchant_a, reference="EUR-STALE", amount="10.00", currency="EUR")
    assert payment.status == "on_hold" and hold_codes(payment) == ["rate_unavailable"]
    same = pay(merchant_a, reference="USD-OK", amount="10.00", beneficiary_account="DE89370400440532013000")
    assert same.status != "on_hold"  # the base currency needs no rate


def test_daily_cap_holds_the_payment_that_would_cross_it(merchant_a, rates):
    merchant_a.daily_cap_minor = 1_000_00
    merchant_a.save()
    assert pay(merchant_a, reference="D-1", amount="600.00").status != "on_hold"
    second = pay(merchant_a, reference="D-2", amount="500.00")
    assert second.status == "on_hold" and hold_codes(second) == ["daily_cap"]


def test_monthly_cap_holds_the_payment_that_would_cross_it(merchant_a, rates):
    merchant_a.monthly_cap_minor = 1_000_00
    merchant_a.save()
    assert pay(merchant_a, reference="M-1", amount="900.00").status != "on_hold"
    second = pay(merchant_a, reference="M-2", amount="100.01")
    assert second.status == "on_hold" and "monthly_cap" in hold_codes(second)


def test_velocity_per_beneficiary_per_hour(merchant_a):
    merchant_a.velocity_per_beneficiary_hour = 2
    merchant_a.save()
    assert [pay(merchant_a, reference=f"V-{i}").status != "on_hold" for i in range(2)] == [True, True]
    third = pay(merchant_a, reference="V-3")
    assert third.status == "on_hold" and hold_codes(third) == ["velocity_beneficiary"]
    other = pay(merchant_a, reference="V-4", beneficiary_account="DE89370400440532013000")
    assert other.status != "on_hold"


def test_velocity_per_merchant_per_minute(merchant_a):
    merchant_a.velocity_per_minute = 2
    merchant_a.save()
    for i in range(2):
        pay(merchant_a, reference=f"W-{i}", beneficiary_account=f"DE8937040044053201{i:04d}")
    third = pay(merchant_a, reference="W-3", beneficiary_account="DE89370400440532019999")
    assert third.status == "on_hold" and hold_codes(third) == ["velocity_merchant"]


# Blocklist: refused at every entry point ----------------------------------------------------


def test_a_blocked_account_is_refused_by_the_api_with_a_clear_code(merchant_a, alice):
    block_add(merchant=merchant_a, kind="account", value="gb29 nwbk 6016 1331 9268 19", user=alice)
    api = Api(make_api_key(merchant_a))
    answer = api.post("/api/v1/payments", payment_input(method="bank_transfer", beneficiary_account=IBAN))
    assert answer.status_code == 422, answer.content
    assert "blocked_account" in answer.content.decode()
    assert not Payment.objects.exists()


def test_a_blocked_account_is_refused_in_the_dashboard(merchant_a, bob):
    block_add(merchant=merchant_a, kind="account", value=IBAN)
    client = Client()
    client.force_login(bob)
    data = payment_input(method="bank_transfer", beneficiary_account=IBAN)
    page = client.post(reverse("dashboard:payment_new"), data)
    assert page.status_code == 200 and "blocklist" in page.content.decode()
    assert not Payment.objects.exists()


@pytest.mark.usefixtures("media")
def test_a_blocked_account_is_refused_in_a_batch_row_with_its_line(
    merchant_a, alice, django_capture_on_commit_callbacks
):
    block_add(merchant=merchant_a, kind="account", value="DE89370400440532013000")
    data = [
        ("B-1", "10.00", "EUR", "bank_transfer", "Ada", IBAN),
        ("B-2", "10.00", "EUR", "bank_transfer", "Bob", "DE89370400440532013000"),
        ("B-3", "10.00", "EUR", "bank_transfer", "Cy", IBAN),
    ]
    batch = upload(merchant_a, csv_bytes(data), user=alice, capture=django_capture_on_commit_callbacks)
    errors = list(BatchRowError.objects.filter(batch=batch).values_list("line", "column", "code"))
    assert errors == [(3, "beneficiary_account", "blocked_account")]
    assert batch.valid_count == 2


def test_blocked_names_and_countries_are_refused_and_the_account_is_not_stored_in_plaintext(merchant_a):
    entry = block_add(merchant=merchant_a, kind="account", value=IBAN)
    assert IBAN not in entry.value and entry.last4 == "6819" and str(entry).endswith("6819")
    block_add(merchant=merchant_a, kind="name", value="  JOSÉ   Müller ")
    block_add(merchant=merchant_a, kind="country", value="fr")
    with pytest.raises(PaymentInvalid) as caught:
        pay(
            merchant_a,
            reference="N",
            beneficiary_name="jose muller",
            beneficiary_account="DE89370400440532013000",
        )
    assert [e.code for e in caught.value.errors] == ["blocked_name"]
    with pytest.raises(PaymentInvalid) as caught:
        pay(merchant_a, reference="C", beneficiary_account="FR7630006000011234567890189")
    assert [e.code for e in caught.value.errors] == ["blocked_country"]


# Sanctions screening: held ------------------------------------------------------------------


@pytest.fixture
def sanctions():
    sanctions_import(
        list_name="TEST-SDN",
        rows=[
            {"id": "1", "name": "Viktor Anatolyevich Bout", "aliases": "Victor Bout;Viktor Butt"},
            {"id": "2", "name": "Ivan Petrovich Sidorov", "aliases": ""},
        ],
    )
    assert SanctionedName.objects.count() == 4


def test_a_sanctioned_name_with_a_one_letter_typo_is_held(merchant_a, sanctions):
    payment = pay(merchant_a, reference="S-1", beneficiary_name="Ivan Petrovich Sidorof")
    assert payment.status == "on_hold" and hold_codes(payment) == ["sanctions_match"]
    event = Event.objects.get(payment=payment, type="payment.on_hold")
    assert "Ivan Petrovich Sidorov" in event.data["hold_reasons"][0]["message"]
    assert event.actor == "system:rules"


def test_an_alias_in_another_order_is_held_and_an_unrelated_name_is_not(merchant_a, sanctions):
    assert pay(merchant_a, reference="S-2", beneficiary_name="BOUT, Victor").status == "on_hold"
    assert pay(merchant_a, reference="S-3", beneficiary_name="Ada Lovelace").status != "on_hold"


@pytest.mark.usefixtures("media")
def test_batch_rows_matching_sanctions_are_held_with_the_reason_and_left_out_of_execution(
    merchant_a, alice, sanctions, django_capture_on_commit_callbacks
):
    data = [
        ("R-1", "10.00", "EUR", "bank_transfer", "Ada Lovelace", IBAN),
        ("R-2", "10.00", "EUR", "bank_transfer", "Ivan Petrovich Sidorof", "DE89370400440532013000"),
    ]
    batch = upload(merchant_a, csv_bytes(data), user=alice, capture=django_capture_on_commit_callbacks)
    assert batch.status == "validated" and batch.valid_count == 2
    held = Payment.objects.get(batch=batch, reference="R-2")
    assert held.status == "on_hold"
    assert [r["code"] for r in held.metadata["hold_reasons"]] == ["sanctions_match"]
    assert Payment.objects.get(batch=batch, reference="R-1").status == "created"


@pytest.mark.django_db(transaction=True)  # on PostgreSQL known accounts are read on a second connection
@pytest.mark.usefixtures("media")
def test_batch_first_payment_cap_holds_only_new_beneficiaries_over_the_cap(
    merchant_a, alice, rates, django_capture_on_commit_callbacks
):
    merchant_a.first_payment_cap_minor = 1_000_00
    merchant_a.risk_threshold = Decimal(
        "1.000"
    )  # 5,000.00 after one 5.00 payment: the risk score holds it too
    merchant_a.save()
    pay(merchant_a, reference="KNOWN", amount="5.00")  # IBAN is a known beneficiary
    data = [
        ("F-1", "5000.00", "USD", "bank_transfer", "Known", IBAN),
        ("F-2", "5000.00", "USD", "bank_transfer", "New", "DE89370400440532013000"),
        ("F-3", "5000.00", "USD", "bank_transfer", "New again", "DE89370400440532013000"),
        ("F-4", "50.00", "USD", "bank_transfer", "Small new", "FR7630006000011234567890189"),
    ]
    batch = upload(merchant_a, csv_bytes(data), user=alice, capture=django_capture_on_commit_callbacks)
    statuses = dict(Payment.objects.filter(batch=batch).values_list("reference", "status"))
    assert statuses == {"F-1": "created", "F-2": "on_hold", "F-3": "created", "F-4": "created"}


def test_names_are_normalised_for_matching():
    assert normalise_name("  José  O'Neil ") == "jose o neil"


def test_blocklist_page_adds_entries_one_by_one_and_from_a_csv(merchant_a, alice, bob):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from payments.models import BlockedEntry

    client = Client()
    client.force_login(alice)
    url = reverse("dashboard:blocklist")
    assert client.post(url, {"kind": "account", "value": IBAN, "note": "chargeback"}).status_code == 302
    upload = SimpleUploadedFile(
        "block.csv",
        b"kind,value,note\nname,Mallory Evil,fraud\ncountry,FR,\nplanet,Mars,\n",
        content_type="text/csv",
    )
    client.post(url, {"file": upload})
    assert sorted(BlockedEntry.objects.values_list("kind", flat=True)) == ["account", "country", "name"]
    page = client.get(url).content.decode()
    assert "\u2022\u2022\u2022\u2022 6819" in page and IBAN not in page
    with pytest.raises(PaymentInvalid):
        pay(
            merchant_a,
            reference="X",
            beneficiary_name="mallory evil",
            beneficiary_account="DE89370400440532013000",
        )
    client.force_login(bob)  # an operator sees the list but cannot change it
    assert client.get(url).status_code == 200
    assert client.post(url, {"kind": "name", "value": "Someone"}).status_code == 403
