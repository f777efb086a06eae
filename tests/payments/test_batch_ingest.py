"""Batch files end to end: upload, validation in the worker, payments, row errors and exact totals."""

from datetime import timedelta

import pytest
from django.utils import timezone

from payments.models import BatchRowError, Payment, PaymentBatch
from payments.services.batches import ingest as batch_ingest
from payments.services.batches.lifecycle import (
    DuplicateBatch,
    batch_cancel,
    batch_create_from_items,
    batch_upload,
)
from payments.services.batches.upload import store_bytes
from tests.factories import PaymentFactory
from tests.payments.test_batch_support import (
    ACCOUNT,
    BILLION_LAUGHS,
    csv_bytes,
    media,  # noqa: F401 - fixture
    pain001,
    rows,
    upload,
    xlsx_bytes,
    zip_bomb_xlsx,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


@pytest.fixture
def send(merchant_a, alice, django_capture_on_commit_callbacks):
    """Upload bytes as alice and run the validation task (on commit)."""

    def send(data: bytes, name: str = "payments.csv", merchant=None, user=None):
        return upload(
            merchant or merchant_a,
            data,
            user=user or alice,
            name=name,
            capture=django_capture_on_commit_callbacks,
        )

    return send


def payments_of(batch):
    return Payment.objects.filter(batch=batch)


def errors_of(batch):
    return list(
        BatchRowError.objects.filter(batch=batch).order_by("line", "pk").values_list("line", "column", "code")
    )


def assert_nothing_stored(batch):
    assert not payments_of(batch).exists()
    assert not BatchRowError.objects.filter(batch=batch).exists()


# Encodings ----------------------------------------------------------------------------------


def test_utf8_csv_becomes_payments_with_exact_totals_per_currency(send):
    data = csv_bytes(
        [
            ("A-1", "1234.50", "USD", "bank_transfer", "Ann", ACCOUNT),
            ("A-2", "0.01", "USD", "card", "Bo", "4000000000001234"),
            ("A-3", "1500", "JPY", "alipay", "Sato", "alipay-user-1234"),
            ("A-4", "1.005", "KWD", "bank_transfer", "Gulf", ACCOUNT),
        ]
    )
    batch = send(data)
    assert batch.status == "validated", batch.rejection_reason
    assert (batch.row_count, batch.valid_count, batch.error_count) == (4, 4, 0)
    assert batch.source_format == "csv" and batch.encoding.startswith("utf-8")
    assert batch.totals == {
        "JPY": {"count": 1, "amount_minor": 1500},
        "KWD": {"count": 1, "amount_minor": 1005},
        "USD": {"count": 2, "amount_minor": 123451},
    }
    payment = payments_of(batch).get(reference="A-1")
    assert (payment.status, payment.amount_minor, payment.gateway) == ("created", 123450, "sandbox")
    assert payment.metadata == {"batch_line": 2}
    assert payment.created_by == batch.uploaded_by
    assert payment.public_id.startswith("pay_") and len(payment.public_id) == 28


def test_utf8_with_bom_is_read_and_its_encoding_shown(send):
    batch = send(b"\xef\xbb\xbf" + csv_bytes(rows(2)))
    assert batch.status == "validated"
    assert batch.valid_count == 2
    assert batch.encoding == "utf-8-sig"


def test_gb18030_file_from_excel_in_china_keeps_the_chinese_names(send):
    data = csv_bytes([("CN-1", "88.00", "CNY", "alipay", "王芳", "alipay-user-8821")], encoding="gb18030")
    batch = send(data)
    assert batch.status == "validated", batch.rejection_reason
    assert batch.encoding == "gb18030"
    assert payments_of(batch).get().beneficiary_name == "王芳"


def test_utf16_unicode_text_with_tabs_is_read(send):
    data = csv_bytes(
        [("U-1", "5.00", "EUR", "bank_transfer", "Zoë Ärger", ACCOUNT)], encoding="utf-16", delimiter="\t"
    )
    batch = send(data, name="unicode.txt")
    assert batch.status == "validated", batch.rejection_reason
    assert batch.encoding.startswith("utf-16")
    assert payments_of(batch).get().beneficiary_name == "Zoë Ärger"


def test_file_in_no_supported_encoding_is_rejected_with_the_line_and_stores_nothing(send):
    data = csv_bytes(rows(1)) + b"B-2,3.00,EUR,bank_transfer,Ren\xe9,GB29NWBK60161331926819\r\n"
    batch = send(data)
    assert batch.status == "rejected"
    assert batch.rejection_code == "encoding_error"
    assert batch.rejection_line == 3
    assert_nothing_stored(batch)


# XLSX ---------------------------------------------------------------------------------------


def test_xlsx_first_sheet_becomes_payments(send):
    batch = send(xlsx_bytes([("X-1", "12.50", "USD", "card", "Ann", "4000000000001234")]), name="pay.xlsx")
    assert batch.status == "validated", batch.rejection_reason
    assert batch.source_format == "xlsx"
    assert payments_of(batch).get().amount_minor == 1250


def test_zip_bomb_xlsx_is_rejected_and_stores_nothing(send):
    batch = send(zip_bomb_xlsx(), name="bomb.xlsx")
    assert batch.status == "rejected"
    assert batch.rejection_code == "zip_bomb"
    assert_nothing_stored(batch)


# pain.001 -----------------------------------------------------------------------------------

TXS = [
    ("E2E-1", "100.10", "EUR", "Jean Dupont", "FR7630006000011234567890189"),
    ("E2E-2", "200.20", "EUR", "Anna Muller", "DE89370400440532013000"),
]


@pytest.mark.parametrize("version", ["pain.001.001.03", "pain.001.001.09"])
def test_pain001_maps_end_to_end_ids_to_references(send, version):
    batch = send(pain001(TXS, version=version, msg_id=f"MSG-{version}"), name="sepa.xml")
    assert batch.status == "validated", batch.rejection_reason
    assert batch.source_format == "pain.001"
    assert batch.message_id == f"MSG-{version}"
    assert batch.control == {"version": version, "nb_of_txs": 2, "ctrl_sum": "300.30"}
    assert batch.totals == {"EUR": {"count": 2, "amount_minor": 30030}}
    payment = payments_of(batch).get(reference="E2E-2")
    assert (payment.method, payment.beneficiary_account) == ("bank_transfer", "DE89370400440532013000")
    assert payment.metadata["pmt_inf_id"] == "PMT-1"


def test_pain001_with_a_wrong_ctrlsum_is_rejected_whole_with_nothing_half_applied(send, monkeypatch):
    # Small blocks: the valid transactions are written before the control sum is checked at the end.
    monkeypatch.setattr(batch_ingest, "BLOCK_ROWS", 1)
    batch = send(pain001(TXS, ctrl_sum="300.31"), name="sepa.xml")
    assert batch.status == "rejected"
    assert batch.rejection_code == "control_sum_mismatch"
    assert batch.valid_count == 0 and batch.totals == {}
    assert_nothing_stored(batch)
    assert not Payment.objects.filter(reference__startswith="E2E-").exists()


def test_pain001_with_a_wrong_nboftxs_is_rejected(send):
    batch = send(pain001(TXS, nb_of_txs="3"), name="sepa.xml")
    assert (batch.status, batch.rejection_code) == ("rejected", "count_mismatch")
    assert_nothing_stored(batch)


def test_xml_entity_bomb_is_rejected_without_expanding(send):
    batch = send(pain001(TXS, prolog=BILLION_LAUGHS), name="bomb.xml")
    assert (batch.status, batch.rejection_code) == ("rejected", "dtd_forbidden")
    assert_nothing_stored(batch)


def test_same_msgid_within_30_days_is_rejected_with_a_link_to_the_first_batch(send):
    first = send(pain001(TXS, msg_id="MSG-SAME"), name="a.xml")
    again = [("E2E-9", "1.00", "EUR", "Other", "DE89370400440532013000")]
    second = send(pain001(again, msg_id="MSG-SAME"), name="b.xml")
    assert first.status == "validated"
    assert (second.status, second.rejection_code) == ("rejected", "duplicate_message_id")
    assert second.duplicate_of == first
    assert first.public_id in second.rejection_reason
    assert_nothing_stored(second)


def test_same_msgid_after_30_days_is_accepted(send):
    first = send(pain001(TXS, msg_id="MSG-OLD"), name="a.xml")
    PaymentBatch.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(days=31))
    again = [("E2E-9", "1.00", "EUR", "Other", "DE89370400440532013000")]
    assert send(pain001(again, msg_id="MSG-OLD"), name="b.xml").status == "validated"


# Rows ---------------------------------------------------------------------------------------


def test_file_with_only_bad_rows_is_rejected_and_keeps_every_row_error(send):
    data = csv_bytes(
        [
            ("B-1", "12.345", "USD", "card", "Ann", "4000000000001234"),
            ("B-2", "10.00", "XXX", "card", "Bo", "4000000000001234"),
            ("B-3", "10.00", "USD", "cheque", "", "4000000000001234"),
        ]
    )
    batch = send(data)
    assert batch.status == "rejected"
    assert batch.rejection_code == "no_valid_rows"
    assert (batch.row_count, batch.valid_count, batch.error_count) == (3, 0, 3)
    assert errors_of(batch) == [
        (2, "amount", "too_many_decimals"),
        (3, "currency", "invalid_currency"),
        (4, "beneficiary_name", "required"),
        (4, "method", "invalid_method"),
    ]
    assert not payments_of(batch).exists()


def test_rows_get_the_real_time_rules_merchant_limits_and_currencies(send, merchant_a):
    merchant_a.allowed_currencies = ["USD"]
    merchant_a.per_payment_limit_minor = 100_000
    merchant_a.save()
    data = csv_bytes(
        [
            ("L-1", "999.99", "USD", "card", "Ann", "4000000000001234"),
            ("L-2", "1000.01", "USD", "card", "Bo", "4000000000001234"),
            ("L-3", "5.00", "EUR", "card", "Cy", "4000000000001234"),
        ]
    )
    batch = send(data)
    assert batch.status == "validated"
    assert batch.valid_count == 1
    assert errors_of(batch) == [(3, "amount", "over_limit"), (4, "currency", "currency_not_allowed")]


def test_a_reference_twice_in_the_file_is_an_error_on_the_second_line(send):
    data = csv_bytes(rows(2) + [("PAY-00001", "7.00", "USD", "card", "Again", "4000000000001234")])
    batch = send(data)
    assert batch.status == "validated"
    assert batch.valid_count == 2
    assert errors_of(batch) == [(4, "reference", "duplicate_reference")]
    assert payments_of(batch).get(reference="PAY-00001").amount_minor == 1000
    assert batch.totals == {"USD": {"count": 2, "amount_minor": 2000}}


def test_a_reference_already_used_by_the_merchant_is_an_error_across_files(
    send, merchant_a, merchant_b, alice
):
    PaymentFactory(merchant=merchant_a, reference="PAY-00002")
    PaymentFactory(merchant=merchant_b, reference="PAY-00003")  # another merchant's reference is free
    first = send(csv_bytes(rows(3)))
    assert first.valid_count == 2
    assert errors_of(first) == [(3, "reference", "duplicate_reference")]
    second = send(csv_bytes(rows(4)))  # a different file repeating the first's references
    assert second.status == "validated"
    assert second.valid_count == 1
    assert [e[0] for e in errors_of(second)] == [2, 3, 4]
    assert payments_of(second).get().reference == "PAY-00004"


def test_extra_values_beyond_the_header_are_row_errors(send):
    data = csv_bytes(rows(1)) + b"PAY-9,1.00,USD,card,Ann,4000000000001234,surprise\r\n"
    batch = send(data)
    assert batch.valid_count == 1
    assert errors_of(batch) == [(3, "", "extra_values")]


def test_more_rows_than_the_limit_rejects_the_file(send, settings):
    settings.PAYDESK_BATCH_MAX_ROWS = 3
    batch = send(csv_bytes(rows(4)))
    assert (batch.status, batch.rejection_code, batch.rejection_line) == ("rejected", "too_many_rows", 5)
    assert_nothing_stored(batch)


def test_a_file_with_a_header_only_is_rejected(send):
    batch = send(csv_bytes([]))
    assert (batch.status, batch.rejection_code) == ("rejected", "no_rows")


# Duplicates of whole files --------------------------------------------------------------------


def test_the_same_file_within_30_days_is_refused_with_the_first_batch(send, merchant_a, alice):
    data = csv_bytes(rows(2))
    first = send(data)
    with pytest.raises(DuplicateBatch) as exc:
        batch_upload(merchant=merchant_a, upload=store_bytes(data, "again.csv"), user=alice)
    assert exc.value.extra["duplicate_of"] == first
    assert exc.value.code == "duplicate_file"
    assert PaymentBatch.objects.count() == 1


def test_the_same_file_is_accepted_again_after_30_days(send):
    data = csv_bytes(rows(2, prefix="OLD"))
    first = send(data)
    PaymentBatch.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(days=31))
    second = send(data)
    assert second.pk != first.pk
    # Taken as a new file; its rows then meet the references the first batch already used.
    assert (second.status, second.rejection_code) == ("rejected", "no_valid_rows")
    assert {e[2] for e in errors_of(second)} == {"duplicate_reference"}


def test_the_same_file_is_accepted_again_once_the_first_batch_was_cancelled(send, carol):
    data = csv_bytes(rows(2, prefix="CXL"))
    first = send(data)
    batch_cancel(batch=first, user=carol)
    second = send(data)
    assert second.pk != first.pk
    assert second.duplicate_of is None


def test_the_same_file_at_another_merchant_is_not_a_duplicate(send, merchant_b, mallory):
    data = csv_bytes(rows(1))
    send(data)
    assert send(data, merchant=merchant_b, user=mallory).status == "validated"


def test_a_nul_character_is_a_row_error_and_the_other_rows_go_in(send):
    data = csv_bytes(rows(2) + [("N-1", "1.00", "USD", "card", "Ann\x00Lee", "4000000000001234")])
    batch = send(data)
    assert batch.status == "validated"
    assert batch.valid_count == 2
    assert errors_of(batch) == [(4, "beneficiary_name", "nul")]


def test_a_reference_with_a_nul_is_kept_in_its_row_error_shown_with_a_replacement_character(send):
    batch = send(csv_bytes(rows(1) + [("R\x00X", "1.00", "USD", "card", "Ann", "4000000000001234")]))
    assert batch.status == "validated"
    shown = batch.row_errors.values_list("line", "column", "code", "reference")
    assert sorted(shown) == [(3, "reference", "nul", "R\ufffdX")]


# JSON items and re-runs -----------------------------------------------------------------------


def test_json_items_are_validated_like_a_file(merchant_a, key_a, django_capture_on_commit_callbacks):
    from merchants.models import ApiKey

    key = ApiKey.objects.get(merchant=merchant_a)
    items = [
        {
            "reference": "J-1",
            "amount": "3.10",
            "currency": "USD",
            "method": "card",
            "beneficiary_name": "A",
            "beneficiary_account": "4000000000001234",
            "metadata": {"order": "7"},
        },
        {
            "reference": "J-2",
            "amount": 3.1,
            "currency": "USD",
            "method": "card",
            "beneficiary_name": "B",
            "beneficiary_account": "4000000000001234",
        },
        "not an object",
    ]
    with django_capture_on_commit_callbacks(execute=True):
        batch = batch_create_from_items(merchant=merchant_a, items=items, api_key=key)
    batch.refresh_from_db()
    assert batch.status == "validated"
    assert batch.source_format == "json"
    assert batch.uploaded_by_key == key
    assert errors_of(batch) == [(2, "amount", "invalid_amount"), (3, "", "invalid_item")]
    assert payments_of(batch).get().metadata == {"order": "7", "batch_line": 1}


def test_validation_runs_once_however_often_its_task_runs(send):
    batch = send(csv_bytes(rows(2)))
    assert batch_ingest.batch_validate(batch_id=batch.pk) is None
    assert payments_of(batch).count() == 2
    assert batch.validation_attempts == 1


def test_a_validation_whose_worker_died_is_taken_over_after_its_lease(merchant_a, alice, settings):
    batch = batch_upload(merchant=merchant_a, upload=store_bytes(csv_bytes(rows(2)), "p.csv"), user=alice)
    PaymentBatch.objects.filter(pk=batch.pk).update(
        validation_attempts=1, validation_started_at=timezone.now() - timedelta(seconds=30)
    )
    settings.PAYDESK_BATCH_VALIDATION_LEASE = settings.PAYDESK_BATCH_TASK_TIMEOUT = 3600
    assert batch_ingest.batch_validate(batch_id=batch.pk) is None  # still leased to the first worker
    settings.PAYDESK_BATCH_VALIDATION_LEASE = settings.PAYDESK_BATCH_TASK_TIMEOUT = 10
    batch = batch_ingest.batch_validate(batch_id=batch.pk)
    assert (batch.status, batch.validation_attempts, batch.valid_count) == ("validated", 2, 2)


def test_a_validation_that_keeps_killing_its_worker_is_rejected(merchant_a, alice, settings):
    batch = batch_upload(merchant=merchant_a, upload=store_bytes(csv_bytes(rows(2)), "p.csv"), user=alice)
    PaymentBatch.objects.filter(pk=batch.pk).update(validation_attempts=settings.PAYDESK_MAX_ATTEMPTS)
    batch = batch_ingest.batch_validate(batch_id=batch.pk)
    assert (batch.status, batch.rejection_code) == ("rejected", "validation_failed")
    assert_nothing_stored(batch)


def test_json_items_with_a_nul_in_metadata_get_a_row_error(
    merchant_a, key_a, django_capture_on_commit_callbacks
):
    from merchants.models import ApiKey

    good = {
        "reference": "JN-1",
        "amount": "3.10",
        "currency": "USD",
        "method": "card",
        "beneficiary_name": "A",
        "beneficiary_account": "4000000000001234",
    }
    items = [good, {**good, "reference": "JN-2", "metadata": {"note": "a\x00b"}}]
    with django_capture_on_commit_callbacks(execute=True):
        batch = batch_create_from_items(
            merchant=merchant_a, items=items, api_key=ApiKey.objects.get(merchant=merchant_a)
        )
    batch.refresh_from_db()
    assert batch.status == "validated"
    assert errors_of(batch) == [(2, "metadata", "nul")]
    assert payments_of(batch).get().reference == "JN-1"
