"""What a batch reports: live progress, the error CSV, the result CSV and the pain.002 status report."""

import csv
import io
import xml.etree.ElementTree as ET  # noqa: S405 - parsing our own output

import pytest

from payments.services.batches.lifecycle import batch_approve
from payments.services.batches.reports import (
    batch_progress,
    iter_errors_csv,
    iter_pain002_report,
    iter_results_csv,
)
from tests.payments.test_batch_support import csv_bytes, media, pain001, rows, upload  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


@pytest.fixture
def send(merchant_a, alice, django_capture_on_commit_callbacks):
    def send(data: bytes, name: str = "p.csv"):
        return upload(merchant_a, data, user=alice, name=name, capture=django_capture_on_commit_callbacks)

    return send


@pytest.fixture
def run(carol, sandbox_wire, django_capture_on_commit_callbacks):
    def run(batch):
        with django_capture_on_commit_callbacks(execute=True):
            batch_approve(batch=batch, user=carol)
        batch.refresh_from_db()
        assert batch.status == "completed"
        return batch

    return run


def read_csv(chunks) -> list[dict]:
    text = "".join(chunks)
    assert text.startswith("\ufeff")  # Excel opens UTF-8 with a BOM correctly
    return list(csv.DictReader(io.StringIO(text[1:])))


def pain002(batch):
    root = ET.fromstring(b"".join(iter_pain002_report(batch)))  # noqa: S314
    ns = {"p": root.tag.split("}")[0][1:]}
    group = root.find(".//p:OrgnlGrpInfAndSts", ns)
    txs = {
        tx.findtext("p:OrgnlEndToEndId", namespaces=ns): (
            tx.findtext("p:TxSts", namespaces=ns),
            tx.findtext(".//p:Rsn/p:Prtry", namespaces=ns),
        )
        for tx in root.iterfind(".//p:TxInfAndSts", ns)
    }
    return group, ns, txs


def test_result_csv_has_every_line_in_file_order_and_neutralises_formulas(send, run):
    data = csv_bytes(
        [
            ("-CMD", "1.00", "USD", "card", '=HYPERLINK("http://x")', "4000000000001234"),
            ("=1+1", "1.00", "USD", "card", "Bad reference", "4000000000001234"),
            ("OK-2", "2.00", "USD", "card", "@Home", "4000000000000002"),
        ]
    )
    batch = run(send(data))
    lines = read_csv(iter_results_csv(batch))
    assert [r["line"] for r in lines] == ["2", "3", "4"]
    first, invalid, declined = lines
    assert first["reference"] == "'-CMD"
    assert first["beneficiary_name"] == '\'=HYPERLINK("http://x")'
    assert first["status"] == "succeeded" and first["payment_id"].startswith("pay_")
    assert (invalid["reference"], invalid["status"], invalid["failure_code"]) == (
        "'=1+1",
        "invalid",
        "invalid_reference",
    )
    assert (declined["beneficiary_name"], declined["status"], declined["failure_code"]) == (
        "'@Home",
        "failed",
        "card_declined",
    )


def test_error_csv_lists_line_column_code_and_message(send):
    batch = send(csv_bytes(rows(1) + [("E-1", "1.234", "USD", "card", "A", "4000000000001234")]))
    assert read_csv(iter_errors_csv(batch)) == [
        {
            "line": "3",
            "column": "amount",
            "code": "too_many_decimals",
            "message": "USD amounts allow at most 2 decimal places.",
        }
    ]


def test_pain002_reports_a_partly_settled_batch_per_transaction(send, run):
    txs = [
        ("E2E-OK", "10.00", "EUR", "Jean", "FR7630006000011234567890189"),
        ("E2E-NO", "20.00", "EUR", "Anna", "DE89370400440532010002"),
        ("E2E-BAD", "1.001", "EUR", "Bad", "DE89370400440532013000"),
    ]
    batch = run(send(pain001(txs, msg_id="MSG-P002"), name="sepa.xml"))
    group, ns, per_tx = pain002(batch)
    assert group.findtext("p:OrgnlMsgId", namespaces=ns) == "MSG-P002"
    assert group.findtext("p:OrgnlNbOfTxs", namespaces=ns) == "3"
    assert group.findtext("p:GrpSts", namespaces=ns) == "PART"
    assert per_tx == {
        "E2E-OK": ("ACSC", None),
        "E2E-NO": ("RJCT", "card_declined"),
        "E2E-BAD": ("RJCT", "too_many_decimals"),
    }


def test_pain002_of_a_fully_settled_batch_is_accepted(send, run):
    batch = run(
        send(pain001([("E2E-1", "5.00", "EUR", "Jean", "FR7630006000011234567890189")]), name="a.xml")
    )
    group, ns, per_tx = pain002(batch)
    assert group.findtext("p:GrpSts", namespaces=ns) == "ACCP"
    assert per_tx == {"E2E-1": ("ACSC", None)}


def test_pain002_of_a_file_rejected_whole_says_why(send):
    batch = send(
        pain001([("E2E-1", "5.00", "EUR", "Jean", "FR7630006000011234567890189")], ctrl_sum="9"), "a.xml"
    )
    group, ns, per_tx = pain002(batch)
    assert group.findtext("p:GrpSts", namespaces=ns) == "RJCT"
    assert group.findtext(".//p:Rsn/p:Prtry", namespaces=ns) == "control_sum_mismatch"
    assert per_tx == {}


def test_progress_counts_exactly_from_the_payments(send, settings, carol, django_capture_on_commit_callbacks):
    settings.PAYDESK_BATCH_CHUNK_SIZE = 2
    batch = send(csv_bytes(rows(5)))
    assert batch_progress(batch)["by_status"] == {"created": 5}
    from payments.models import BatchChunk
    from payments.services.batches.execute import batch_chunk_execute
    from payments.services.batches.lifecycle import batch_start

    with django_capture_on_commit_callbacks():
        batch_approve(batch=batch, user=carol)
        batch_start(batch_id=batch.pk)
        batch_chunk_execute(chunk_id=BatchChunk.objects.get(batch=batch, number=1).pk)
    batch.refresh_from_db()
    progress = batch_progress(batch)
    assert progress["status"] == "processing"
    assert progress["by_status"] == {"created": 3, "processing": 2}
    assert (progress["total"], progress["submitted"], progress["final"], progress["percent"]) == (
        5,
        2,
        0,
        0.0,
    )
    assert progress["chunks"] == {"total": 3, "pending": 2, "claimed": 0, "done": 1, "dead": 0}
