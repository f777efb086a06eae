"""After real flows on PostgreSQL, a pg_dump holds no beneficiary data or secret in plaintext."""

import os
import shutil
import subprocess

import pytest
from django.db import connection

from merchants.models import GatewayAccount
from payments.services.notifications.endpoints import webhook_endpoint_create
from tests.api.conftest import Api
from tests.factories import make_api_key, payment_input
from tests.payments.test_batch_support import csv_bytes, media, upload  # noqa: F401

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media")]

ACCOUNTS = [
    "GB29NWBK60161331926819",
    "DE89370400440532013000",
    "6222020200112233445",
    "FR7630006000011234567890189",
]
EMAIL, PHONE = "grace.hopper@example.org", "+86 138 0013 8000"
GATEWAY_SECRET = "pp-client-secret-7f3a9c21d4"  # noqa: S105


def pg_dump() -> str:
    settings = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": settings.get("PASSWORD") or ""}
    command = [
        shutil.which("pg_dump") or "pg_dump",
        "--data-only",
        "-h",
        settings.get("HOST") or "127.0.0.1",
        "-p",
        str(settings.get("PORT") or 5432),
        "-U",
        settings.get("USER") or "postgres",
        settings["NAME"],
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout  # noqa: S603


def test_pg_dump_after_the_flows_holds_no_account_email_phone_or_secret(merchant_a, alice):
    api = Api(make_api_key(merchant_a))
    _endpoint, webhook_secret = webhook_endpoint_create(merchant=merchant_a, url="http://127.0.0.1:9/hook")
    GatewayAccount.objects.create(merchant=merchant_a, gateway="paypal", secret=GATEWAY_SECRET)
    for i, account in enumerate(ACCOUNTS[:2]):
        answer = api.post(
            "/api/v1/payments",
            payment_input(
                reference=f"RT-{i}",
                method="bank_transfer",
                beneficiary_account=account,
                beneficiary_email=EMAIL,
                beneficiary_phone=PHONE,
            ),
        )
        assert answer.status_code == 201, answer.content
    header = (
        "reference",
        "amount",
        "currency",
        "method",
        "beneficiary_name",
        "beneficiary_account",
        "beneficiary_email",
        "beneficiary_phone",
    )
    data = [
        (f"B-{i}", "10.00", "EUR", "bank_transfer", "Grace", a, EMAIL, PHONE) for i, a in enumerate(ACCOUNTS)
    ]
    batch = upload(merchant_a, csv_bytes(data, header=header), user=alice)
    assert batch.status == "validated", batch.rejection_reason
    assert batch.valid_count == len(ACCOUNTS)

    dump = pg_dump()
    assert "payments_payment" in dump and "RT-0" in dump and "B-3" in dump  # the flows are in it
    secret_body = webhook_secret.removeprefix("whsec_")
    for plaintext in (*ACCOUNTS, EMAIL, PHONE, webhook_secret, secret_body, GATEWAY_SECRET):
        assert plaintext not in dump, f"{plaintext[:6]}... is in the dump"
    # Not even spaced out, as an account could be written.
    assert "GB29 NWBK" not in dump
