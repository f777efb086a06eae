"""Readers stream: peak Python memory stays flat however long the file is.

These are memory assertions (tracemalloc peaks), not timing ones. The bounds
are generous; reading everything into memory would exceed them many times.
"""

import tracemalloc
from collections.abc import Callable, Iterator

from payments.formats import open_reader
from tests.formats.builders import HEADER, PmtInf, Tx, excel_style_xlsx, pain001

MB = 1024 * 1024


def peak_while(consume: Callable[[], int]) -> tuple[int, int]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = consume()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_reading_200k_row_csv_keeps_memory_bounded(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join([*HEADER, "description"]) + "\r\n")
        for i in range(200_000):
            out.write(
                f"PAY-{i:07d},{i % 997}.{i % 100:02d},CNY,alipay,张伟 {i},62220202{i:011d},工资 {i}\r\n"
            )
    size = path.stat().st_size
    assert size > 10 * MB

    def consume() -> int:
        last = 0
        with path.open("rb") as raw, open_reader(raw, "big.csv") as reader:
            for row in reader:
                last = row.line
        return last

    last_line, peak = peak_while(consume)
    assert last_line == 200_001
    assert peak < 50 * MB
    assert peak < size / 4


def test_reading_a_large_pain001_keeps_memory_bounded(tmp_path):
    txs = [Tx(f"E2E-{i}", f"{i % 1000}.{i % 100:02d}", name=f"Name {i}") for i in range(20_000)]
    document = pain001([PmtInf("P1", txs[:10_000]), PmtInf("P2", txs[10_000:])])
    path = tmp_path / "big.xml"
    path.write_text(document, encoding="utf-8")

    def consume() -> int:
        with path.open("rb") as raw, open_reader(raw, "big.xml") as reader:
            return sum(1 for _ in reader)

    count, peak = peak_while(consume)
    assert count == 20_000
    assert peak < 10 * MB
    assert peak < path.stat().st_size / 2


def test_shared_strings_live_on_disk_not_in_memory(tmp_path):
    def rows() -> Iterator[list[object]]:
        for i in range(20_000):
            yield [f"PAY-{i:07d}", f"{i}.00", "EUR", "card", f"Beneficiary number {i}", f"DE{i:020d}"]

    path = tmp_path / "big.xlsx"
    path.write_bytes(excel_style_xlsx(rows()))

    def consume() -> int:
        with path.open("rb") as raw, open_reader(raw, "big.xlsx") as reader:
            return sum(1 for _ in reader)

    count, peak = peak_while(consume)
    assert count == 20_000
    # 60,000 unique strings held as Python objects would take ~5 MB.
    assert peak < 3 * MB
