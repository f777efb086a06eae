"""Batches through the REST API: upload (file or items), limits, duplicates, reads, approval, reports."""

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from merchants.models import ApiKey
from payments.models import PaymentBatch
from payments.services.batches.upload import BatchUploadHandler, UploadTooLarge
from tests.api.conftest import Api, assert_problem
from tests.factories import make_api_key
from tests.payments.test_batch_support import csv_bytes, media, pain001, rows  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]
BATCHES = "/api/v1/batches"


@pytest.fixture
def api(key_a):
    return Api(key_a)


@pytest.fixture
def api_b(key_b):
    return Api(key_b)


def post_file(key: str, data: bytes, name: str = "pay.csv", **extra):
    upload = SimpleUploadedFile(name, data, content_type="text/csv")
    return Client().post(
        BATCHES, {"file": upload, "name": "March payroll"}, HTTP_AUTHORIZATION=f"Bearer {key}", **extra
    )


@pytest.fixture
def uploaded(key_a, django_capture_on_commit_callbacks):
    """Upload a file with merchant A's key and let the worker validate it; return the batch JSON."""

    def make(data: bytes, name: str = "pay.csv"):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_file(key_a, data, name)
        assert response.status_code == 201, response.content
        return response.json()

    return make


def stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_uploading_a_file_answers_at_once_with_the_batch_validating(
    key_a, api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_file(key_a, csv_bytes(rows(3)))
    assert response.status_code == 201
    body = response.json()
    assert body["object"] == "batch" and body["id"].startswith("bat_")
    assert body["status"] == "validating"
    assert body["name"] == "March payroll" and body["file_name"] == "pay.csv"
    assert response["Location"].endswith(f"/api/v1/batches/{body['id']}")
    detail = api.get(f"{BATCHES}/{body['id']}").json()
    assert detail["status"] == "validated"
    assert detail["totals"] == {"USD": {"count": 3, "amount": "30.00"}}
    assert detail["uploaded_by_key"] == ApiKey.objects.get().public_id


def test_json_items_make_a_programmatic_batch(api, django_capture_on_commit_callbacks):
    items = [
        {
            "reference": f"J-{i}",
            "amount": "1.50",
            "currency": "EUR",
            "method": "bank_transfer",
            "beneficiary_name": "Ann",
            "beneficiary_account": "DE89370400440532013000",
        }
        for i in range(3)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(BATCHES, {"items": items, "name": "from code"})
    assert response.status_code == 201, response.content
    detail = api.get(f"{BATCHES}/{response.json()['id']}").json()
    assert (detail["status"], detail["format"], detail["valid_count"]) == ("validated", "json", 3)


def test_a_name_over_200_characters_is_refused_not_cut(key_a):
    upload = SimpleUploadedFile("a.csv", csv_bytes(rows(1)))
    response = Client().post(
        BATCHES, {"file": upload, "name": "x" * 201}, HTTP_AUTHORIZATION=f"Bearer {key_a}"
    )
    assert_problem(response, 422, "validation_error")
    assert not PaymentBatch.objects.exists()


def test_items_must_be_a_list_of_objects(api):
    assert_problem(api.post(BATCHES, {"items": "nope"}), 422, "validation_error")
    assert_problem(api.post(BATCHES, {"items": []}), 422, "validation_error")


def test_a_body_announced_over_the_limit_is_413_before_anything_is_stored(key_a, settings):
    settings.PAYDESK_BATCH_MAX_BYTES = 50_000
    response = post_file(key_a, csv_bytes(rows(3000)))  # about 200 KB
    assert_problem(response, 413, "payload_too_large")
    assert stored_files(settings) == []
    assert not PaymentBatch.objects.exists()


def test_a_file_found_over_the_limit_while_streaming_is_413_and_its_part_is_deleted(key_a, settings):
    settings.PAYDESK_BATCH_MAX_BYTES = (
        100_000  # the announced body (~140 KB) is within the envelope allowance
    )
    data = csv_bytes(rows(2000))
    assert 100_000 < len(data) < 160_000
    response = post_file(key_a, data)
    assert_problem(response, 413, "payload_too_large")
    assert stored_files(settings) == []


def test_the_upload_handler_stops_as_soon_as_the_file_grows_past_the_limit(settings):
    handler = BatchUploadHandler(None, max_bytes=10)
    handler.new_file("file", "a.csv", "text/csv", None)
    path = handler.path
    assert handler.receive_data_chunk(b"123456", 0) is None
    with pytest.raises(UploadTooLarge):
        handler.receive_data_chunk(b"789012", 6)
    assert not path.exists()


def test_a_json_body_over_its_limit_is_413(api, settings):
    settings.PAYDESK_BATCH_JSON_MAX_BYTES = 1000
    items = [{"reference": f"J-{i}", "amount": "1.00"} for i in range(200)]
    assert_problem(api.post(BATCHES, {"items": items}), 413, "payload_too_large")


def test_the_same_file_again_is_409_naming_the_first_batch(key_a, uploaded, settings):
    first = uploaded(csv_bytes(rows(2)))
    response = post_file(key_a, csv_bytes(rows(2)), name="again.csv")
    body = assert_problem(response, 409, "duplicate_file")
    assert body["duplicate_of"] == first["id"]
    assert body["duplicate_of_url"] == f"http://testserver/api/v1/batches/{first['id']}"
    assert PaymentBatch.objects.count() == 1
    assert len(stored_files(settings)) == 1


def test_an_upload_retried_with_its_idempotency_key_is_replayed(key_a, django_capture_on_commit_callbacks):
    data = csv_bytes(rows(2))
    with django_capture_on_commit_callbacks(execute=True):
        first = post_file(key_a, data, HTTP_IDEMPOTENCY_KEY="upload-1")
    again = post_file(key_a, data, HTTP_IDEMPOTENCY_KEY="upload-1")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert PaymentBatch.objects.count() == 1


def test_reads_list_detail_payments_errors_and_reports(api, uploaded):
    data = csv_bytes(rows(3) + [("BAD-1", "1.234", "USD", "card", "A", "4000000000001234")])
    batch = uploaded(data)
    listed = api.get(BATCHES).json()
    assert [b["id"] for b in listed["data"]] == [batch["id"]]
    assert api.get(BATCHES, {"status": "validated"}).json()["data"][0]["error_count"] == 1
    assert api.get(BATCHES, {"status": "completed"}).json()["data"] == []
    payments = api.get(f"{BATCHES}/{batch['id']}/payments", {"limit": 2}).json()
    assert len(payments["data"]) == 2 and payments["has_more"]
    rest = api.get(f"{BATCHES}/{batch['id']}/payments", {"cursor": payments["next_cursor"]}).json()
    assert len(rest["data"]) == 1
    assert {p["batch"] for p in payments["data"] + rest["data"]} == {batch["id"]}
    assert api.get(f"{BATCHES}/{batch['id']}/payments", {"status": "succeeded"}).json()["data"] == []
    errors = api.get(f"{BATCHES}/{batch['id']}/errors").json()
    assert errors["data"] == [
        {
            "line": 5,
            "column": "amount",
            "code": "too_many_decimals",
            "message": "USD amounts allow at most 2 decimal places.",
        }
    ]
    csv_errors = api.get(f"{BATCHES}/{batch['id']}/errors", {"format": "csv"})
    assert csv_errors["Content-Type"].startswith("text/csv")
    assert b"too_many_decimals" in b"".join(csv_errors.streaming_content)
    report = api.get(f"{BATCHES}/{batch['id']}/report")
    assert report["Content-Disposition"] == f'attachment; filename="{batch["id"]}-results.csv"'
    assert b"".join(report.streaming_content).count(b"\r\n") == 5
    xml = api.get(f"{BATCHES}/{batch['id']}/report", {"format": "pain.002"})
    assert xml["Content-Type"] == "application/xml"
    assert b"<CstmrPmtStsRpt>" in b"".join(xml.streaming_content)
    assert_problem(api.get(f"{BATCHES}/{batch['id']}/report", {"format": "pdf"}), 400, "validation_error")


def test_errors_are_paged_by_line(api, uploaded):
    bad = [(f"BAD-{i}", "x", "USD", "card", "", "4000000000001234") for i in range(3)]
    batch = uploaded(csv_bytes(rows(1) + bad))
    first = api.get(f"{BATCHES}/{batch['id']}/errors", {"limit": 4}).json()
    assert [(e["line"], e["column"]) for e in first["data"]] == [
        (3, "beneficiary_name"),
        (3, "amount"),
        (4, "beneficiary_name"),
        (4, "amount"),
    ]
    second = api.get(f"{BATCHES}/{batch['id']}/errors", {"limit": 4, "cursor": first["next_cursor"]}).json()
    assert [(e["line"], e["column"]) for e in second["data"]] == [(5, "beneficiary_name"), (5, "amount")]
    assert second["has_more"] is False


def test_approval_needs_the_approve_scope_and_respects_four_eyes(
    merchant_a, alice, carol, uploaded, django_capture_on_commit_callbacks
):
    merchant_a.four_eyes = True
    merchant_a.save()
    batch = uploaded(csv_bytes(rows(2)))  # uploaded with key_a, created by alice
    write_only = Api(make_api_key(merchant_a, ("read", "write"), carol))
    assert_problem(write_only.post(f"{BATCHES}/{batch['id']}/approve"), 403, "insufficient_scope")
    alices = Api(make_api_key(merchant_a, ("approve",), alice))
    assert_problem(alices.post(f"{BATCHES}/{batch['id']}/approve"), 403, "four_eyes_required")
    carols = Api(make_api_key(merchant_a, ("read", "approve"), carol))
    with django_capture_on_commit_callbacks():
        response = carols.post(f"{BATCHES}/{batch['id']}/approve", idem="approve-1")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"
    assert response.json()["approved_by"] == carol.username
    replay = carols.post(f"{BATCHES}/{batch['id']}/approve", idem="approve-1")
    assert replay["Idempotent-Replayed"] == "true"
    assert_problem(carols.post(f"{BATCHES}/{batch['id']}/approve"), 409, "invalid_state")


def test_cancel_through_the_api(api, uploaded, django_capture_on_commit_callbacks):
    batch = uploaded(csv_bytes(rows(2)))
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{BATCHES}/{batch['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert_problem(api.post(f"{BATCHES}/{batch['id']}/cancel"), 409, "invalid_state")


def test_another_merchants_batch_is_a_404(api_b, uploaded):
    batch = uploaded(csv_bytes(rows(1)))
    for path in ("", "/payments", "/errors", "/report"):
        assert_problem(api_b.get(f"{BATCHES}/{batch['id']}{path}"), 404, "not_found")
    assert_problem(api_b.post(f"{BATCHES}/{batch['id']}/approve"), 404, "not_found")
    assert json.loads(api_b.get(BATCHES).content)["data"] == []
