"""The pain.001.001.09 writer (valid against the official XSD, streamed) and the bank report readers."""

from __future__ import annotations

import io
import tracemalloc
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sepaxml
import xmlschema

from payments.formats import FormatError
from payments.formats.bank_reports import PENDING, REJECTED, RETURNED, SETTLED, BankReportReader
from payments.formats.pain001_writer import Party, PaymentBlock, Transfer, iter_pain001
from tests.formats.bank_builders import camt054, pain002

# The official ISO 20022 schema as the sepaxml package ships it (MIT; the schemas are ISO's, free to
# reproduce under ISO 20022's terms of use): nothing of it is copied into this repository.
XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"


@pytest.fixture(scope="module")
def schema():
    return xmlschema.XMLSchema(str(XSD))


def transfers(n: int, amount: str = "12.34") -> list[Transfer]:
    return [
        Transfer(f"E2E-{i}", amount, f"Payee {i} & <Co>", "DE89370400440532013000", f"Invoice {i}")
        for i in range(n)
    ]


def document(blocks, nb, total) -> bytes:
    return b"".join(
        iter_pain001(
            msg_id="PD123",
            created_at=datetime(2026, 1, 5, 10, tzinfo=UTC),
            initiating_party="ACME Ltd",
            nb_of_txs=nb,
            ctrl_sum=total,
            blocks=blocks,
        )
    )


def test_a_written_file_validates_against_the_iso_schema(schema):
    eur = PaymentBlock(
        "PD123-1",
        date(2026, 1, 6),
        Party("ACME GmbH", iban="DE44500105175407324931", bic="INGDDEFFXXX"),
        "EUR",
        2,
        Decimal("24.68"),
        transfers(2),
    )
    cny = PaymentBlock(
        "PD123-2",
        date(2026, 1, 7),
        Party("ACME 上海", account_number="6222021234567890", bank_code="102100099996"),
        "CNY",
        1,
        Decimal("100.00"),
        [Transfer("E2E-CN", "100.00", "王小明", "6217001234567890123", "")],
    )
    xml = document([eur, cny], 3, Decimal("124.68"))
    schema.validate(io.BytesIO(xml))
    text = xml.decode()
    assert "Payee 0 &amp; &lt;Co&gt;" in text
    assert "<Othr><Id>6217001234567890123</Id></Othr>" in text
    assert "<ClrSysMmbId><MmbId>102100099996</MmbId></ClrSysMmbId>" in text
    no_bank = PaymentBlock(
        "PD9-1",
        date(2026, 1, 7),
        Party("ACME Inc", iban="X1"),
        "USD",
        1,
        Decimal(1),
        [Transfer("E", "1.00", "P", "1")],
    )
    assert (
        "<FinInstnId><Othr><Id>NOTPROVIDED</Id></Othr></FinInstnId>"
        in b"".join(
            iter_pain001(
                msg_id="PD9",
                created_at=datetime(2026, 1, 5, tzinfo=UTC),
                initiating_party="A",
                nb_of_txs=1,
                ctrl_sum=Decimal(1),
                blocks=[no_bank],
            )
        ).decode()
    )


def test_totals_that_do_not_add_up_raise_instead_of_writing_a_lying_file():
    block = PaymentBlock(
        "B-1",
        date(2026, 1, 6),
        Party("A", iban="DE44500105175407324931"),
        "EUR",
        2,
        Decimal("24.68"),
        transfers(1),
    )
    with pytest.raises(ValueError, match="PmtInf B-1"):
        document([block], 2, Decimal("24.68"))


def test_a_block_without_transfers_is_refused(schema):
    empty = PaymentBlock(
        "B-0", date(2026, 1, 6), Party("A", iban="DE44500105175407324931"), "EUR", 0, Decimal(0), []
    )
    with pytest.raises(ValueError, match="no transaction"):
        document([empty], 0, Decimal(0))


def test_a_hundred_thousand_transfers_are_written_with_bounded_memory():
    def lazy(n):
        for i in range(n):
            yield Transfer(f"E2E-{i}", "1.00", "Payee", "DE89370400440532013000", "")

    n = 100_000
    block = PaymentBlock(
        "B-1", date(2026, 1, 6), Party("A", iban="DE44500105175407324931"), "EUR", n, Decimal(n), lazy(n)
    )
    tracemalloc.start()
    size = 0
    for piece in iter_pain001(
        msg_id="M",
        created_at=datetime(2026, 1, 5, tzinfo=UTC),
        initiating_party="A",
        nb_of_txs=n,
        ctrl_sum=Decimal(n),
        blocks=[block],
    ):
        size += len(piece)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert size > 20_000_000
    assert peak < 2_000_000  # the file is ~20 MB; what is held at once stays a few pieces


@pytest.mark.parametrize("version", ["pain.002.001.03", "pain.002.001.10"])
def test_pain002_entries_carry_status_and_iso_reason(version):
    data = pain002(
        [("A-1", "ACSC", ""), ("A-2", "RJCT", "AM04"), ("A-3", "ACSP", ""), ("A-4", "ACCC", "")],
        version=version,
        original_msg_id="PDX",
    )
    reader = BankReportReader(io.BytesIO(data))
    entries = [(e.end_to_end_id, e.outcome, e.reason_code) for e in reader]
    assert reader.header.kind == "pain.002" and reader.header.version == version
    assert reader.header.original_msg_ids == ["PDX"]
    assert entries == [
        ("A-1", SETTLED, ""),
        ("A-2", REJECTED, "AM04"),
        ("A-3", PENDING, ""),
        ("A-4", SETTLED, ""),
    ]


@pytest.mark.parametrize("version", ["camt.054.001.02", "camt.054.001.08"])
def test_camt054_gives_booked_debits_and_returns_and_skips_the_rest(version):
    data = camt054(
        [("A-1", "10.00", "DBIT", ""), ("A-2", "5.00", "CRDT", "AC04"), ("SALES-9", "99.00", "CRDT", "")],
        version=version,
    )
    entries = [(e.end_to_end_id, e.outcome, e.reason_code) for e in BankReportReader(io.BytesIO(data))]
    assert entries == [("A-1", SETTLED, ""), ("A-2", RETURNED, "AC04")]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"not xml", "xml_error"),
        (
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>',
            "dtd_forbidden",
        ),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"/>', "unsupported_format"),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.04"/>', "unsupported_version"),
    ],
)
def test_what_is_not_a_supported_report_is_refused(data, code):
    with pytest.raises(FormatError) as caught:
        list(BankReportReader(io.BytesIO(data)))
    assert caught.value.code == code
