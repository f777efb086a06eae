"""One specification of payment input: the API, the dashboard form and a batch row give the same
verdict and the same error code for the same input (payments/validation.py).

Each row of the table changes one field of a valid payment and is sent through all three: a POST
to /api/v1/payments, the dashboard's new-payment form, and a batch (a CSV file; JSON items for
metadata, which files have no column for and the form does not collect). References are unique
per merchant, so each path gets the row's reference with its own suffix (a suffix that keeps a
valid reference valid and an invalid one invalid).
"""

import csv
import io
import json

import pytest
from django.test import Client

from payments.models import BatchRowError, Payment
from payments.services.batches.lifecycle import batch_create_from_items
from tests.conftest import confirm_token_of
from tests.payments.test_batch_support import media, upload  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]

GOOD = {
    "reference": "SPEC-1",
    "amount": "12.50",
    "currency": "USD",
    "method": "card",
    "beneficiary_name": "Ann Lee",
    "beneficiary_account": "4000000000001234",
    "beneficiary_email": "",
    "beneficiary_phone": "",
    "description": "",
}
OK = None  # the verdict of a valid input: accepted

TABLE = [
    ({}, OK),
    # reference
    ({"reference": "has space"}, {("reference", "invalid_reference")}),
    ({"reference": "R" * 141}, {("reference", "too_long")}),
    ({"reference": ""}, {("reference", "required")}),
    ({"reference": "INV-2026/01:#7"}, OK),
    # amount: ASCII digits only, decimals by currency, positive
    ({"amount": "12.505"}, {("amount", "too_many_decimals")}),
    ({"amount": "0"}, {("amount", "amount_not_positive")}),
    ({"amount": "-5.00"}, {("amount", "amount_not_positive")}),
    ({"amount": "\uff11\uff12"}, {("amount", "invalid_amount")}),  # full-width 12
    ({"amount": "\u0661\u0662"}, {("amount", "invalid_amount")}),  # Arabic-Indic 12
    ({"amount": "abc"}, {("amount", "invalid_amount")}),
    ({"amount": "1e3"}, {("amount", "invalid_amount")}),
    ({"amount": ""}, {("amount", "required")}),
    ({"amount": "10", "currency": "JPY"}, OK),
    ({"amount": "1.5", "currency": "JPY"}, {("amount", "too_many_decimals")}),
    # currency and method
    ({"currency": "XYZ"}, {("currency", "invalid_currency")}),
    ({"currency": "GBP"}, {("currency", "currency_not_allowed")}),
    ({"method": "cheque"}, {("method", "invalid_method")}),
    # beneficiary name
    ({"beneficiary_name": ""}, {("beneficiary_name", "required")}),
    ({"beneficiary_name": "N" * 141}, {("beneficiary_name", "too_long")}),
    ({"beneficiary_name": "Señora Núñez"}, OK),
    ({"beneficiary_name": "张三"}, OK),
    ({"beneficiary_name": "Ann\ue000Lee"}, {("beneficiary_name", "invalid_characters")}),  # private use
    ({"beneficiary_name": "Ann\U000e0fffLee"}, {("beneficiary_name", "invalid_characters")}),  # unassigned
    # account: the API, the form and files used three different patterns
    ({"beneficiary_account": "12"}, {("beneficiary_account", "invalid_account")}),
    ({"beneficiary_account": "GB29 NWBK 6016 1331 9268 19"}, OK),
    ({"beneficiary_account": "ann@wallet.example"}, OK),
    ({"beneficiary_account": "-4000000000001234"}, {("beneficiary_account", "invalid_account")}),
    ({"beneficiary_account": "4" * 65}, {("beneficiary_account", "too_long")}),
    # e-mail: the form took IDN domains and quoted names, the API refused o'brien@
    ({"beneficiary_email": "o'brien@example.com"}, OK),
    ({"beneficiary_email": "ann+pay@mail.example.co.uk"}, OK),
    ({"beneficiary_email": "not-an-email"}, {("beneficiary_email", "invalid_email")}),
    ({"beneficiary_email": "ann@bücher.de"}, {("beneficiary_email", "invalid_email")}),
    ({"beneficiary_email": '"ann lee"@example.com'}, {("beneficiary_email", "invalid_email")}),
    # phone
    ({"beneficiary_phone": "+44 20 7946 0958"}, OK),
    ({"beneficiary_phone": "(020) 7946-0958"}, OK),
    ({"beneficiary_phone": "call me"}, {("beneficiary_phone", "invalid_phone")}),
    (
        {"beneficiary_phone": "+1\uff12\uff13\uff14\uff15\uff16\uff17"},
        {("beneficiary_phone", "invalid_phone")},
    ),
    ({"beneficiary_phone": "12345"}, {("beneficiary_phone", "invalid_phone")}),
    # description
    ({"description": "d" * 501}, {("description", "too_long")}),
    ({"description": "Salary, December"}, OK),
]

METADATA_TABLE = [
    ({"metadata": {"order": "7"}}, OK),
    ({"metadata": {"k" * 40: "v"}}, OK),
    ({"metadata": {"k" * 41: "v"}}, {("metadata", "invalid_key")}),
    ({"metadata": {f"key{i}": "é" * 500 for i in range(9)}}, {("metadata", "too_large")}),
    ({"metadata": {f"key{i}": "v" for i in range(51)}}, {("metadata", "too_many_keys")}),
    ({"metadata": {"k": "v" * 501}}, {("metadata", "value_too_long")}),
    ({"metadata": {"k": 1}}, {("metadata", "invalid")}),
    ({"metadata": {"k": "a\x00b"}}, {("metadata", "nul")}),
]


@pytest.fixture
def merchant(merchant_a):
    merchant_a.allowed_currencies = ["USD", "EUR", "JPY"]
    merchant_a.per_payment_limit_minor = 0
    merchant_a.save()
    return merchant_a


def for_path(data: dict, path: str) -> dict:
    """The row as sent by one path: its reference made unique to the path ("" stays missing)."""
    return {**data, "reference": f"{data['reference']}-{path}" if data["reference"] else ""}


def via_api(key, data: dict):
    body = {k: v for k, v in data.items() if v != "" or k in ("reference", "amount", "beneficiary_name")}
    response = Client().post(
        "/api/v1/payments",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    if response.status_code == 201:
        return OK
    assert response.status_code == 422, response.content
    return {(e["field"], e["code"]) for e in response.json()["errors"]}


def via_dashboard(user, data: dict):
    client = Client()
    client.force_login(user)
    response = client.post("/payments/new/", data)
    assert response.status_code == 200
    if "confirm_token" in response.context:
        # Valid: the review page (issue 11); the final click creates the payment.
        token = confirm_token_of(response)
        done = client.post("/payments/new/", {**data, "confirm": "1", "confirm_token": token})
        assert done.status_code == 302, done.status_code
        assert Payment.objects.filter(reference=data["reference"]).exists()
        return OK
    form = response.context["form"]
    return {(field, error.code) for field, errors in form.errors.as_data().items() for error in errors}


def via_batch_file(merchant, user, data: dict, capture):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(GOOD))
    writer.writeheader()
    writer.writerow(data)
    batch = upload(merchant, out.getvalue().encode("utf-8"), user=user, capture=capture)
    return _batch_verdict(batch)


def via_batch_items(merchant, data: dict, capture):
    from merchants.models import ApiKey

    with capture(execute=True):
        batch = batch_create_from_items(
            merchant=merchant, items=[data], api_key=ApiKey.objects.get(merchant=merchant)
        )
    batch.refresh_from_db()
    return _batch_verdict(batch)


def _batch_verdict(batch):
    errors = {(e.column, e.code) for e in BatchRowError.objects.filter(batch=batch)}
    if not errors:
        assert batch.valid_count == 1, (
            batch.status,
            batch.rejection_reason if hasattr(batch, "rejection_reason") else "",
        )
        return OK
    return errors


@pytest.mark.parametrize(("change", "verdict"), TABLE, ids=[repr(c)[:60] for c, _v in TABLE])
def test_the_api_the_dashboard_and_a_batch_file_give_the_same_verdict(
    merchant, alice, key_a, django_capture_on_commit_callbacks, change, verdict
):
    data = {**GOOD, **change}
    capture = django_capture_on_commit_callbacks
    seen = {
        "api": via_api(key_a, for_path(data, "api")),
        "dashboard": via_dashboard(alice, for_path(data, "form")),
        "batch file": via_batch_file(merchant, alice, for_path(data, "file"), capture),
    }
    assert seen == {"api": verdict, "dashboard": verdict, "batch file": verdict}


@pytest.mark.parametrize(
    ("change", "verdict"), METADATA_TABLE, ids=[repr(c)[:60] for c, _v in METADATA_TABLE]
)
def test_the_api_and_batch_items_give_metadata_the_same_verdict(
    merchant, key_a, django_capture_on_commit_callbacks, change, verdict
):
    data = {**GOOD, **change}
    capture = django_capture_on_commit_callbacks
    seen = {
        "api": via_api(key_a, for_path(data, "api")),
        "batch items": via_batch_items(merchant, for_path(data, "items"), capture),
    }
    assert seen == {"api": verdict, "batch items": verdict}
