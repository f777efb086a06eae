"""The streaming XLSX writer (payments/formats/xlsx_writer.py), read back with openpyxl."""

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import openpyxl

from payments.formats.xlsx_writer import iter_xlsx


def read(chunks) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(b"".join(chunks)))


def test_cells_are_typed_and_text_is_never_a_formula():
    rows = [
        ("=HYPERLINK(1)", "+1", "-2", "@SUM(A1)", "a <&> b", "x\x01y", Decimal("12.50")),
        (None, "", True, 3, 1.5, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), Decimal("1200")),
        (date(2026, 3, 4), Decimal("1.234"), "", "", "", "", Decimal("0.00")),
    ]
    sheet = read(iter_xlsx(rows, list("ABCDEFG"), sheet_title="Payments")).active
    assert sheet.title == "Payments"
    cells = list(sheet.iter_rows())
    assert [c.value for c in cells[0]] == list("ABCDEFG")
    first = cells[1]
    assert [c.value for c in first[:6]] == ["=HYPERLINK(1)", "+1", "-2", "@SUM(A1)", "a <&> b", "xy"]
    assert {c.data_type for c in first[:6]} == {"s"}
    assert (first[6].value, first[6].data_type, first[6].number_format) == (12.5, "n", "0.00")
    second = cells[2]
    assert second[0].value is None and second[1].value is None
    assert (second[2].value, second[3].value, second[4].value) == (True, 3, 1.5)
    assert (
        second[5].value == datetime(2026, 1, 2, 3, 4, 5) and second[5].number_format == "yyyy-mm-dd hh:mm:ss"
    )
    assert (second[6].value, second[6].number_format) == (1200, "0")
    third = cells[3]
    assert third[0].value == datetime(2026, 3, 4) and third[0].number_format == "yyyy-mm-dd"
    assert (third[1].value, third[1].number_format) == (1.234, "0.000")


def test_it_streams_the_first_bytes_before_reading_every_row():
    read_rows = 0

    def rows():
        nonlocal read_rows
        for i in range(100_000):
            read_rows += 1
            yield (f"REF-{i}", Decimal(i).scaleb(-2))

    chunks = iter_xlsx(rows(), ["reference", "amount"])
    first = next(chunks)
    assert first and read_rows < 5_000
    workbook = read([first, *chunks])
    values = list(workbook.active.iter_rows(values_only=True))
    assert len(values) == 100_001 and values[-1] == ("REF-99999", 999.99)


def test_past_a_sheets_rows_the_rows_go_on_in_a_new_sheet_with_the_header_again():
    rows = [(f"r{i}", i) for i in range(7)]
    workbook = read(iter_xlsx(rows, ["a", "b"], sheet_title="Pay:ments", rows_per_sheet=3))
    assert workbook.sheetnames == ["Pay_ments", "Pay_ments (2)", "Pay_ments (3)"]
    got = [list(ws.iter_rows(values_only=True)) for ws in workbook]
    assert got[0] == [("a", "b"), ("r0", 0), ("r1", 1), ("r2", 2)]
    assert got[2] == [("a", "b"), ("r6", 6)]


def test_no_rows_is_a_sheet_with_its_header():
    assert list(read(iter_xlsx([], ["a", "b"])).active.iter_rows(values_only=True)) == [("a", "b")]
