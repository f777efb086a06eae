"""The COPY path of batch validation on PostgreSQL: rows formatted by us arrive exactly as sent."""

import pytest
from django.db import DataError, transaction

from payments.models import Payment, PaymentBatch
from payments.services.batches import writers as batch_writers
from payments.services.batches.writers import CopyWriter
from tests.payments.test_batch_support import ACCOUNT, HEADER, csv_bytes, media, upload  # noqa: F401

pytestmark = [pytest.mark.postgres, pytest.mark.django_db, pytest.mark.usefixtures("media")]

NASTY_TEXT = [
    "tab\there",
    "back\\slash",
    "\\N",
    "\\.",
    "line\nfeed",
    "carriage\rreturn",
    "\r\n",
    "bell\x07, backspace\x08, vtab\x0b, formfeed\x0c, escape\x1b",
    "trailing backslash\\",
    "\\\\t not a tab",
    "李雷 ünïcödé 🙂 \u200b zero-width \u00a0 nbsp \u2028 separator",
    "",
    " ",
    "'quotes' \"double\" ,comma; semicolon",
]


@pytest.fixture
def batch(merchant_a, alice):
    return PaymentBatch.objects.create(merchant=merchant_a, uploaded_by=alice, file_name="x.csv")


def clean_row(i: int, text: str, **extra) -> dict:
    """A validated row as ingest_rows hands it to the writer, with `text` in every free-text field."""
    row = {
        "reference": f"C-{i:04d}",
        "method": "bank_transfer",
        "beneficiary_name": text,
        "beneficiary_account": ACCOUNT,
        "beneficiary_email": text,
        "beneficiary_phone": text[:32],
        "description": text,
        "currency": "USD",
        "amount_minor": 10**15 - i,
        "metadata": {"batch_line": i + 1, "note": text},
        "gateway": "sandbox",
    }
    row.update(extra)
    return row


STORED = (
    "reference",
    "beneficiary_name",
    "beneficiary_email",
    "beneficiary_phone",
    "description",
    "currency",
    "amount_minor",
    "metadata",
    "gateway",
    "method",
    "status",
    "failure_code",
    "failure_retryable",
    "next_action",
    "refunded_minor",
    "risk_probability",
    "completed_at",
    "api_key_id",
    "created_by_id",
    "batch_id",
    "merchant_id",
)


def write(batch, rows, *, text_rows: bool, streaming: bool) -> list[tuple]:
    with transaction.atomic():
        writer = CopyWriter(batch, streaming=streaming)
        try:
            assert writer._text_rows  # Django's connections are UTF-8: the fast path is the one in use
            writer._text_rows = text_rows
            writer.payments(rows)
            writer.finish()
        finally:
            writer.close()
    return list(Payment.objects.filter(batch=batch).order_by("reference").values_list(*STORED))


@pytest.mark.parametrize("streaming", [True, False])
def test_nasty_values_round_trip_through_copy_exactly_as_through_psycopg_write_row(batch, streaming):
    rows = [clean_row(i, text) for i, text in enumerate(NASTY_TEXT)]
    ours = write(batch, rows, text_rows=True, streaming=streaming)
    Payment.objects.filter(batch=batch).delete()
    psycopgs = write(batch, rows, text_rows=False, streaming=streaming)

    assert ours == psycopgs
    assert [(r[1], r[2], r[3], r[4]) for r in ours] == [(t, t, t[:32], t) for t in NASTY_TEXT]
    assert [r[7] for r in ours] == [{"batch_line": i + 1, "note": t} for i, t in enumerate(NASTY_TEXT)]
    assert ours[0][6] == 10**15
    # Fixed columns: defaults and NULLs as the model has them.
    assert {r[10:18] for r in ours} == {("created", "", False, None, 0, None, None, None)}


def test_the_copy_text_of_a_block_is_byte_for_byte_what_write_row_sends(batch):
    """The common case (printable text, ints, the usual metadata) needs no psycopg adapter per value."""
    from psycopg._copy_base import format_row_text
    from psycopg.adapt import Transformer

    rows = [clean_row(i, f"Employee {i} 李") for i in range(50)]
    rows += [clean_row(100 + i, text) for i, text in enumerate(NASTY_TEXT)]
    rows[0]["metadata"] = {"batch_line": 2}
    with transaction.atomic():
        writer = CopyWriter(batch, streaming=False)
        try:
            template, slots, id_slot, meta_slot = writer._layout(rows[0])
            ids = [f"pay_{i:026d}" for i in range(len(rows))]
            ours = writer._copy_block(template, ids, rows, slots, id_slot, meta_slot)

            tx = Transformer.from_context(writer._pg_cursor)
            expected = bytearray()
            for public_id, row in zip(ids, rows, strict=True):
                values = template.copy()
                values[id_slot] = public_id
                for slot, name in slots:
                    values[slot] = row[name]
                values[meta_slot] = batch_writers._metadata_json(row["metadata"])
                format_row_text(values, tx, expected)
        finally:
            writer.close()
    assert ours == bytes(expected)


@pytest.mark.parametrize("text_rows", [True, False])
def test_a_nul_character_is_refused_by_both_paths_alike(batch, text_rows):
    with pytest.raises(DataError, match="NUL"):
        write(batch, [clean_row(1, "nul\x00byte")], text_rows=text_rows, streaming=False)


def test_existing_finds_references_by_one_string_and_falls_back_to_a_list_for_commas(batch, merchant_a):
    write(
        batch, [clean_row(1, "a"), clean_row(2, "b", reference="with,comma")], text_rows=True, streaming=False
    )
    writer = CopyWriter(batch, streaming=False)
    try:
        assert writer.existing(["C-0001", "C-0404"]) == {"C-0001"}
        assert writer.existing(["C-0001"]) == {"C-0001"}
        assert writer.existing(["with,comma", "C-0001", "with"]) == {"with,comma", "C-0001"}
        assert writer.existing([""]) == set()
    finally:
        writer.close()


def test_a_csv_with_tabs_backslashes_and_unicode_is_stored_as_written(send_csv):
    data = csv_bytes(
        [
            ("R-1", "1.50", "usd", "bank_transfer", '"Tab\there, back\\slash"', ACCOUNT, "\\N"),
            ("R-2", "2", "EUR", "bank_transfer", "李雷", ACCOUNT, '"two\nlines"'),
        ],
        header=(*HEADER, "description"),
    )
    batch = send_csv(data)
    assert batch.status == "validated"
    assert list(
        Payment.objects.filter(batch=batch)
        .order_by("reference")
        .values_list("beneficiary_name", "description", "amount_minor", "currency", "metadata")
    ) == [
        ("Tab\there, back\\slash", "\\N", 150, "USD", {"batch_line": 2}),
        ("李雷", "two\nlines", 200, "EUR", {"batch_line": 3}),
    ]


@pytest.fixture
def send_csv(merchant_a, alice, django_capture_on_commit_callbacks):
    def send(data: bytes):
        return upload(merchant_a, data, user=alice, name="p.csv", capture=django_capture_on_commit_callbacks)

    return send


def test_a_query_while_the_copy_streams_is_refused_not_a_hang(batch):
    """Seen: a batch of Alipay transfer rows hung its worker forever on PostgreSQL, because row
    validation asked the database for the merchant's Alipay account on the connection that was
    streaming the COPY. What validation needs is now read before the stream opens, and a query
    during it raises at once instead of waiting for ever."""
    from django.db import connection

    from payments.services.batches.ingest import _no_query_while_streaming

    with transaction.atomic():
        writer = CopyWriter(batch, streaming=True)
        try:
            assert writer.streaming
            with connection.execute_wrapper(_no_query_while_streaming(writer)):
                with pytest.raises(RuntimeError, match="streaming a COPY"):
                    PaymentBatch.objects.filter(pk=batch.pk).exists()
            writer.finish()  # ends the (empty) stream cleanly
            assert not writer.streaming
            assert PaymentBatch.objects.filter(pk=batch.pk).exists()
        finally:
            writer.close()
