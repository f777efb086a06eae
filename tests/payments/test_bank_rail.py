"""The bank-file rail end to end through the API: upload, approve, bank file, pain.002, camt.054, twice."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sepaxml
import xmlschema
from defusedxml.ElementTree import fromstring
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from merchants.services import funding_account_create
from payments.models import BankFile, BankReport, Payment, PaymentBatch
from tests.formats.bank_builders import camt054, pain002
from tests.payments.test_batch_support import csv_bytes, media, pain001  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"
ROWS = [
    ("SAL-1", "1500.00", "EUR", "bank_transfer", "Ana Lima", "DE89370400440532013000"),
    ("SAL-2", "2200.50", "EUR", "bank_transfer", "Ben Okafor", "FR1420041010050500013M02606"),
    ("SAL-3", "980.25", "EUR", "bank_transfer", "Chen Wei", "GB29NWBK60161331926819"),
]


@pytest.fixture(autouse=True)
def bank_route(settings):
    settings.PAYDESK_PAYOUT_ROUTES = {**settings.PAYDESK_PAYOUT_ROUTES, "bank_transfer": "bank_file"}


@pytest.fixture
def funding(merchant_a):
    return funding_account_create(
        merchant=merchant_a,
        name="Merchant A GmbH",
        iban="DE44500105175407324931",
        bic="INGDDEFFXXX",
        currency="EUR",
    )


def auth(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def upload_and_approve(key: str, capture, data: bytes, name: str = "salaries.csv", **fields) -> dict:
    client = Client()
    with capture(execute=True):
        response = client.post(
            "/api/v1/batches", {"file": SimpleUploadedFile(name, data), **fields}, **auth(key)
        )
    assert response.status_code == 201, response.content
    batch = response.json()
    with capture(execute=True):
        approved = client.post(f"/api/v1/batches/{batch['id']}/approve", **auth(key))
    assert approved.status_code == 200, approved.content
    return approved.json()


def post_report(key: str, data: bytes, name: str = "report.xml"):
    return Client().post("/api/v1/bank-reports", {"file": SimpleUploadedFile(name, data)}, **auth(key))


def statuses(batch_id: str) -> dict[str, tuple[str, str]]:
    return {
        p.reference: (p.status, p.failure_code)
        for p in Payment.objects.filter(batch__public_id=batch_id).order_by("pk")
    }


def test_a_bank_batch_round_trip_settles_fails_reverses_and_repeats_change_nothing(
    key_a, funding, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    batch = upload_and_approve(key_a, capture, csv_bytes(ROWS))
    assert statuses(batch["id"]) == {r[0]: ("processing", "") for r in ROWS}

    response = Client().get(f"/api/v1/batches/{batch['id']}/bank-file", **auth(key_a))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    xml = b"".join(response.streaming_content)
    xmlschema.XMLSchema(str(XSD)).validate(io.BytesIO(xml))
    doc = fromstring(xml)
    msg_id = doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:MsgId", namespaces=NS)
    assert doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=NS) == "3"
    assert doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == "4680.75"
    block = doc.find("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert block.findtext("p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == "DE44500105175407324931"
    assert block.findtext("p:DbtrAgt/p:FinInstnId/p:BICFI", namespaces=NS) == "INGDDEFFXXX"
    e2e = [t.findtext("p:PmtId/p:EndToEndId", namespaces=NS) for t in block.findall("p:CdtTrfTxInf", NS)]
    assert e2e == ["SAL-1", "SAL-2", "SAL-3"]

    status_report = pain002(
        [("SAL-1", "ACSC", ""), ("SAL-2", "RJCT", "AC04"), ("SAL-3", "ACCC", ""), ("NOT-OURS", "ACSC", "")],
        original_msg_id=msg_id,
    )
    with capture(execute=True):
        answer = post_report(key_a, status_report)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["kind"] == "pain.002" and body["id"].startswith("brp_")
    assert (body["matched"], body["duplicates"], body["unmatched"], body["errors"]) == (
        3,
        0,
        ["NOT-OURS"],
        [],
    )
    assert statuses(batch["id"]) == {
        "SAL-1": ("succeeded", ""),
        "SAL-2": ("failed", "AC04"),
        "SAL-3": ("succeeded", ""),
    }
    assert PaymentBatch.objects.get(public_id=batch["id"]).status == "completed"

    notification = camt054([("SAL-1", "1500.00", "DBIT", ""), ("SAL-3", "980.25", "CRDT", "AC06")])
    with capture(execute=True):
        answer = post_report(key_a, notification, "camt.xml")
    assert answer.json() == {
        "id": answer.json()["id"],
        "kind": "camt.054",
        "matched": 1,
        "unmatched": [],
        "duplicates": 1,
        "errors": [],
    }
    after = {"SAL-1": ("succeeded", ""), "SAL-2": ("failed", "AC04"), "SAL-3": ("reversed", "AC06")}
    assert statuses(batch["id"]) == after
    payment = (
        Client()
        .get(f"/api/v1/payments/{Payment.objects.get(reference='SAL-3').public_id}", **auth(key_a))
        .json()
    )
    assert (payment["status"], payment["failure_code"]) == ("reversed", "AC06")

    for data in (status_report, notification):
        with capture(execute=True):
            again = post_report(key_a, data).json()
        assert again["matched"] == 0 and again["errors"] == []
        assert again["duplicates"] == (3 if data is status_report else 2)
    assert statuses(batch["id"]) == after
    assert BankReport.objects.filter(merchant__slug="merchant-a").count() == 4


def test_an_unknown_end_to_end_id_is_reported_never_guessed(
    key_a, funding, django_capture_on_commit_callbacks
):
    batch = upload_and_approve(key_a, django_capture_on_commit_callbacks, csv_bytes(ROWS[:1]))
    body = post_report(key_a, pain002([("SAL-10", "ACSC", ""), ("sal-1", "ACSC", "")])).json()
    assert body["matched"] == 0 and body["unmatched"] == ["SAL-10", "sal-1"]
    assert statuses(batch["id"]) == {"SAL-1": ("processing", "")}


def test_another_merchants_report_cannot_settle_our_payments(
    key_a, key_b, funding, django_capture_on_commit_callbacks
):
    batch = upload_and_approve(key_a, django_capture_on_commit_callbacks, csv_bytes(ROWS[:1]))
    body = post_report(key_b, pain002([("SAL-1", "RJCT", "AC04")])).json()
    assert body["unmatched"] == ["SAL-1"] and body["matched"] == 0
    assert statuses(batch["id"]) == {"SAL-1": ("processing", "")}


def test_a_group_rejection_fails_every_payment_of_the_file(
    key_a, funding, django_capture_on_commit_callbacks
):
    batch = upload_and_approve(key_a, django_capture_on_commit_callbacks, csv_bytes(ROWS))
    msg_id = BankFile.objects.get(batch__public_id=batch["id"]).msg_id
    report = pain002(
        [], version="pain.002.001.03", original_msg_id=msg_id, group_status="RJCT", group_reason="FF01"
    )
    with django_capture_on_commit_callbacks(execute=True):
        body = post_report(key_a, report).json()
    assert body["matched"] == 3
    assert set(statuses(batch["id"]).values()) == {("failed", "FF01")}


def test_a_file_that_is_not_a_report_is_refused_with_a_problem(key_a):
    response = post_report(key_a, b"reference,amount\n")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "xml_error"
    dtd = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Document/>'
    assert post_report(key_a, dtd).json()["code"] == "dtd_forbidden"


def test_the_bank_file_of_a_batch_without_bank_transfers_is_404(
    key_a, django_capture_on_commit_callbacks, settings
):
    settings.PAYDESK_PAYOUT_ROUTES = {**settings.PAYDESK_PAYOUT_ROUTES, "bank_transfer": "sandbox"}
    batch = upload_and_approve(key_a, django_capture_on_commit_callbacks, csv_bytes(ROWS[:1]))
    response = Client().get(f"/api/v1/batches/{batch['id']}/bank-file", **auth(key_a))
    assert response.status_code == 404 and response.json()["code"] == "no_bank_file"


def test_a_report_broken_at_its_end_applies_nothing(key_a, funding, django_capture_on_commit_callbacks):
    batch = upload_and_approve(key_a, django_capture_on_commit_callbacks, csv_bytes(ROWS[:1]))
    broken = pain002([("SAL-1", "ACSC", "")]).replace(b"</Document>", b"</Documen>")
    response = post_report(key_a, broken)
    assert response.status_code == 400 and response.json()["code"] == "xml_error"
    assert statuses(batch["id"]) == {"SAL-1": ("processing", "")}
    assert not BankReport.objects.exists()
