"""A Windows-1252 CSV is never read as GB18030 without evidence; the uploader may name the encoding
(API field `encoding`, dashboard select); a name with private-use or unassigned code points is a
row error, never a stored payment."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from payments.models import BatchRowError, Payment, PaymentBatch
from tests.payments.test_batch_support import csv_bytes, media  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]

IBAN = "GB29NWBK60161331926819"
WESTERN = [
    ("W-1", "1.00", "EUR", "bank_transfer", "Müller GmbH", IBAN),
    ("W-2", "2.00", "EUR", "bank_transfer", "Señora Núñez", IBAN),
]


def api_upload(key, capture, data: bytes, **fields):
    with capture(execute=True):
        response = Client().post(
            "/api/v1/batches",
            {"file": SimpleUploadedFile("pay.csv", data, content_type="text/csv"), **fields},
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
    return response


def names(batch) -> list[str]:
    return list(
        Payment.objects.filter(batch=batch).order_by("reference").values_list("beneficiary_name", flat=True)
    )


def test_a_windows_1252_file_is_rejected_not_garbled_and_asks_for_its_encoding(
    key_a, django_capture_on_commit_callbacks
):
    response = api_upload(key_a, django_capture_on_commit_callbacks, csv_bytes(WESTERN, encoding="cp1252"))
    assert response.status_code == 201, response.content
    batch = PaymentBatch.objects.get(public_id=response.json()["id"])
    assert batch.status == "rejected"
    assert batch.rejection_code == "encoding_error"
    assert not Payment.objects.filter(batch=batch).exists()


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_the_api_takes_the_encoding_named_and_the_names_are_exact(
    key_a, django_capture_on_commit_callbacks, encoding
):
    response = api_upload(
        key_a, django_capture_on_commit_callbacks, csv_bytes(WESTERN, encoding="cp1252"), encoding=encoding
    )
    assert response.status_code == 201, response.content
    batch = PaymentBatch.objects.get(public_id=response.json()["id"])
    assert (batch.status, batch.encoding) == ("validated", encoding)
    assert names(batch) == ["Müller GmbH", "Señora Núñez"]


def test_an_unknown_encoding_is_refused(key_a, django_capture_on_commit_callbacks):
    response = api_upload(key_a, django_capture_on_commit_callbacks, csv_bytes(WESTERN), encoding="ebcdic")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_encoding"
    assert not PaymentBatch.objects.exists()


def test_names_with_private_use_code_points_are_row_errors(key_a, django_capture_on_commit_callbacks):
    # Named wrongly as GB18030, "Núñez" decodes into the private-use area: that row is refused.
    response = api_upload(
        key_a, django_capture_on_commit_callbacks, csv_bytes(WESTERN, encoding="cp1252"), encoding="gb18030"
    )
    batch = PaymentBatch.objects.get(public_id=response.json()["id"])
    errors = list(BatchRowError.objects.filter(batch=batch).values_list("line", "column", "code"))
    assert errors == [(3, "beneficiary_name", "invalid_characters")]
    assert not any(
        "\ue000" <= c <= "\uf8ff"
        for name in Payment.objects.values_list("beneficiary_name", flat=True)
        for c in name
    )


def test_a_chinese_gb18030_file_is_still_detected(key_a, django_capture_on_commit_callbacks):
    rows = [
        ("C-1", "1.00", "CNY", "bank_transfer", "张伟", IBAN),
        ("C-2", "1.00", "CNY", "bank_transfer", "李娜", IBAN),
    ]
    response = api_upload(key_a, django_capture_on_commit_callbacks, csv_bytes(rows, encoding="gb18030"))
    batch = PaymentBatch.objects.get(public_id=response.json()["id"])
    assert (batch.status, batch.encoding) == ("validated", "gb18030")
    assert names(batch) == ["张伟", "李娜"]


def test_the_dashboard_select_names_the_encoding(bob, django_capture_on_commit_callbacks):
    client = Client()
    client.force_login(bob)
    page = client.get("/batches/new/")
    assert b'name="encoding"' in page.content and b'value="cp1252"' in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/batches/new/",
            {
                "file": SimpleUploadedFile("pay.csv", csv_bytes(WESTERN, encoding="cp1252")),
                "encoding": "cp1252",
            },
        )
    assert response.status_code == 302, response.content
    batch = PaymentBatch.objects.get()
    assert (batch.status, batch.encoding) == ("validated", "cp1252")
    assert names(batch) == ["Müller GmbH", "Señora Núñez"]


def test_the_dashboard_refuses_a_nul_in_the_batch_name(bob):
    client = Client()
    client.force_login(bob)
    response = client.post(
        "/batches/new/", {"file": SimpleUploadedFile("pay.csv", csv_bytes(WESTERN)), "name": "a\x00b"}
    )
    assert response.status_code == 400
    assert not PaymentBatch.objects.exists()
