"""Batch (d): writing a bank file, against a bare loop that writes the same XML, and its peak memory.

Run by `benchmark batch` in a child process on the benchmark's database
(`--step bankfile`): it creates a processing batch of `--rows` bank-rail
payments (EUR, one funding account), then, per round, times
`bank_file_write` (the service: aggregate query, streamed pain.001.001.09
through the writer to storage, with its control totals checked) against
a bare loop that reads the same rows with one cursor and writes the same
document with f-strings. The peak RSS of the writing alone is read from
VmHWM after resetting it (`/proc/self/clear_refs`), so the rows created for
the measurement do not count. `--bank-file-only` runs just this part on a
database of its own.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

from payments.benchmarks import ratio_line, server_execute, server_url, with_database

ROWS_PER_INSERT = 5000


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    """Reset VmHWM to the current resident set (Linux 4.0+), so what follows is measured alone."""
    Path("/proc/self/clear_refs").write_text("5")


def _make_batch(rows: int):
    from django.utils import timezone

    from merchants.ids import new_public_ids
    from merchants.models import Merchant
    from merchants.services import funding_account_create
    from payments.models import BankFile, Payment, PaymentBatch, PaymentStatus

    merchant, _ = Merchant.objects.get_or_create(slug="bench-bank-file", defaults={"name": "Bench Bank GmbH"})
    if not merchant.funding_accounts.exists():
        funding_account_create(
            merchant=merchant,
            name="Bench Bank GmbH",
            iban="DE44500105175407324931",
            bic="INGDDEFFXXX",
            currency="EUR",
        )
    batch = PaymentBatch.objects.create(merchant=merchant, name="bank file benchmark")
    PaymentBatch.objects.filter(pk=batch.pk).update(status="processing", started_at=timezone.now())
    tag = batch.public_id[-6:]
    made = 0
    while made < rows:
        n = min(ROWS_PER_INSERT, rows - made)
        ids = new_public_ids("pay", n)
        Payment.objects.bulk_create(
            [
                Payment(
                    public_id=ids[i],
                    merchant=merchant,
                    batch=batch,
                    reference=f"{tag}-{made + i:07d}",
                    amount_minor=(made + i) * 7919 % 999_999 + 100,
                    currency="EUR",
                    method="bank_transfer",
                    beneficiary_name=f"Employee {made + i} & Söhne",
                    beneficiary_account="GB29NWBK60161331926819",
                    description=f"Salary March {made + i}",
                    status=PaymentStatus.PROCESSING,
                    gateway="bank_file",
                )
                for i in range(n)
            ],
            batch_size=ROWS_PER_INSERT,
        )
        made += n
    BankFile.objects.create(batch=batch, merchant=merchant, msg_id="PD" + batch.public_id[4:])
    return batch


def _bare_loop(batch, out: Path) -> None:
    """The same document, written by the plainest loop: one cursor, f-strings, a file."""
    from django.db import connection

    from merchants.models import FundingAccount

    account = FundingAccount.objects.get(merchant_id=batch.merchant_id, is_default=True)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), sum(amount_minor) FROM payments_payment "
            "WHERE batch_id = %s AND status = 'processing'",
            [batch.pk],
        )
        count, total = cursor.fetchone()
    ctrl = format(Decimal(total).scaleb(-2), "f")
    with open(out, "w", encoding="utf-8") as f, connection.chunked_cursor() as cursor:
        f.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09">'
            f"<CstmrCdtTrfInitn><GrpHdr><MsgId>BARE</MsgId><CreDtTm>2026-01-05T10:00:00+00:00</CreDtTm>"
            f"<NbOfTxs>{count}</NbOfTxs><CtrlSum>{ctrl}</CtrlSum><InitgPty><Nm>Bench</Nm></InitgPty></GrpHdr>"
            f"<PmtInf><PmtInfId>BARE-1</PmtInfId><PmtMtd>TRF</PmtMtd><BtchBookg>false</BtchBookg>"
            f"<NbOfTxs>{count}</NbOfTxs><CtrlSum>{ctrl}</CtrlSum><ReqdExctnDt><Dt>2026-01-05</Dt></ReqdExctnDt>"
            f"<Dbtr><Nm>{escape(account.name)}</Nm></Dbtr><DbtrAcct><Id><IBAN>{account.iban}</IBAN></Id>"
            f"<Ccy>EUR</Ccy></DbtrAcct><DbtrAgt><FinInstnId><BICFI>{account.bic}</BICFI></FinInstnId></DbtrAgt>"
        )
        cursor.execute(
            "SELECT reference, amount_minor, beneficiary_name, beneficiary_account, description "
            "FROM payments_payment WHERE batch_id = %s AND status = 'processing' ORDER BY id",
            [batch.pk],
        )
        for reference, minor, name, iban, description in cursor:
            f.write(
                f"<CdtTrfTxInf><PmtId><EndToEndId>{escape(reference)}</EndToEndId></PmtId>"
                f'<Amt><InstdAmt Ccy="EUR">{minor // 100}.{minor % 100:02d}</InstdAmt></Amt>'
                f"<Cdtr><Nm>{escape(name)}</Nm></Cdtr><CdtrAcct><Id><IBAN>{iban}</IBAN></Id></CdtrAcct>"
                f"<RmtInf><Ustrd>{escape(description)}</Ustrd></RmtInf></CdtTrfTxInf>"
            )
        f.write("</PmtInf></CstmrCdtTrfInitn></Document>\n")


def bank_file_step(cmd, options) -> None:
    """In the benchmark's database: time the bank file against the bare loop; print one JSON line."""
    from django.conf import settings

    from payments.models import BankFile
    from payments.services.batches.bank_files import bank_file_write

    rows, rounds = options["rows"], options["rounds"] or 3
    batch = _make_batch(rows)
    tmp = Path(tempfile.mkdtemp(prefix="paydesk-bench-bankfile-"))
    settings.MEDIA_ROOT = tmp / "media"
    ours, bare, peak = [], [], 0.0
    _reset_peak()
    before = _status_mb("VmRSS")
    for _ in range(rounds):
        BankFile.objects.filter(batch=batch).update(status="pending", claimed_at=None)
        started = time.perf_counter()
        written = bank_file_write(batch_id=batch.pk)
        ours.append(rows / (time.perf_counter() - started))
        assert written is not None and written.nb_of_txs == rows
        peak = max(peak, _status_mb("VmHWM"))
        started = time.perf_counter()
        _bare_loop(batch, tmp / "bare.xml")
        bare.append(rows / (time.perf_counter() - started))
    size = (Path(settings.MEDIA_ROOT) / BankFile.objects.get(batch=batch).stored_file).stat().st_size
    cmd.stdout.write(
        json.dumps(
            {
                "ours": statistics.median(ours),
                "bare": statistics.median(bare),
                "peak_rss_mb": peak,
                "rss_before_mb": before,
                "size_mb": size / 1e6,
            }
        )
    )


def measure(env: dict, root: str, rows: int, rounds: int) -> dict:
    """Run the step in a child process on the database of `env`; return its figures."""
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "benchmark", "batch", "--step", "bankfile", "--rows", str(rows)]
        + ["--rounds", str(rounds)],
        env=env,
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def lines(figures: dict, rows: int) -> list[str]:
    return [
        ratio_line("(d) bank file, pain.001 writing", figures["ours"], figures["bare"], "pay/s"),
        f"    peak RSS of the process writing {rows:,} transfers ({figures['size_mb']:.0f} MB file): "
        f"{figures['peak_rss_mb']:.0f} MB ({figures['rss_before_mb']:.0f} MB before it started writing)",
    ]


def run_alone(cmd, options, root: str) -> None:
    """`--bank-file-only`: just (d), on a database of its own (created, migrated, dropped)."""
    url = server_url("")
    name = f"paydesk_bench_bankfile_{os.getpid()}"
    server_execute(url, f'CREATE DATABASE "{name}"')
    env = os.environ.copy()
    env.update(DATABASE_URL=with_database(url, name), LOG_LEVEL="WARNING")
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env=env, cwd=root, check=True
        )  # noqa: S603
        figures = measure(env, root, options["rows"], options["rounds"] or 3)
        for line in lines(figures, options["rows"]):
            cmd.stdout.write(line)
        cmd.stdout.write(
            f"batch (d): bank file {figures['ours']:,.0f} pay/s = {figures['ours'] / figures['bare']:.2f}x "
            f"the bare loop; peak RSS {figures['peak_rss_mb']:.0f} MB for {options['rows']:,} transfers"
        )
    finally:
        server_execute(url, f'DROP DATABASE IF EXISTS "{name}"')
