"""Batch: ingestion against a raw PostgreSQL COPY, execution against the naive loop, peak memory.

Runs on PostgreSQL in a database of its own (created, migrated and dropped
here), with the real pieces: gunicorn serving the API and the sandbox's
callbacks, and a `manage.py qcluster` (2 workers) doing the work.

(a) Ingestion: a CSV of `--rows` rows is uploaded to POST /api/v1/batches;
    rows/s is counted from the start of the upload until the batch is
    `validated`. Baseline: COPY of the same file into a bare table (no
    indexes), the physical limit of getting the rows into PostgreSQL. For
    reference, a COPY of the same rows into the payments table (with its
    indexes) is printed too.
(b) Execution: the batch is approved through the API; payments/s is counted
    from the approval until the batch is `completed` (every payment final,
    the sandbox's callbacks applied). Baseline: the naive way, a loop that
    creates, submits and saves each payment one by one (`payment_create`),
    timed until all its payments are final, on the same workers.
(c) Peak memory: the highest peak RSS (VmHWM) of the worker processes, i.e.
    of the worker that validated the file. Target: under 300 MB for
    1,000,000 rows (`--rows 1000000 --skip-execution`).
(d) Bank file: writing the pain.001 of `--rows` bank-rail payments against a
    bare loop writing the same XML, and the peak RSS of that writing
    (payments/benchmarks/bank_file.py; `--bank-file-only` runs just this).

Every figure is the median of `--rounds` rounds.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from payments.benchmarks import bank_file, ratio_line

TARGET_INGEST_RATIO = 0.4
TARGET_EXEC_RATIO = 20.0
TARGET_RSS_MB = 300
ACCOUNTS = ["GB29NWBK60161331926819"] * 17 + ["4000000000000002", "4000000000000051", "4000000000003155"]
BARE_TABLE = "bench_batch_bare"


def add_arguments(parser) -> None:
    parser.add_argument("--rows", type=int, default=100_000, help="rows per batch file (default 100000)")
    parser.add_argument(
        "--rounds", type=int, default=0, help="rounds per figure (default 3; 1 from 500k rows)"
    )
    parser.add_argument("--naive", type=int, default=400, help="payments in a naive-loop round (default 400)")
    parser.add_argument("--workers", type=int, default=2, help="qcluster workers (default 2)")
    parser.add_argument(
        "--port", type=int, default=8071, help="port of the benchmark's gunicorn (default 8071)"
    )
    parser.add_argument("--skip-execution", action="store_true", help="measure ingestion and memory only")
    parser.add_argument(
        "--bank-file-only",
        action="store_true",
        help="measure only (d), writing the bank file of --rows payments",
    )
    parser.add_argument("--keep-db", action="store_true", help="leave the benchmark database behind")
    parser.add_argument("--step", default="", help="(internal) run one step in a child process")
    parser.add_argument("--slug", default="", help="(internal)")
    parser.add_argument("--tag", default="", help="(internal)")


def run(cmd, options) -> None:
    if options["step"] == "naive":
        _naive_step(cmd, options)
        return
    if options["step"] == "bankfile":
        bank_file.bank_file_step(cmd, options)
        return
    from django.db import connection

    if connection.vendor != "postgresql":
        cmd.stderr.write("The batch benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
        sys.exit(2)
    if options["bank_file_only"]:
        bank_file.run_alone(cmd, options, _root())
        return
    rounds = options["rounds"] or (1 if options["rows"] >= 500_000 else 3)
    bench = _Bench(cmd, options)
    try:
        bench.setup()
        bench.measure(rounds)
    finally:
        bench.teardown()


def _free_port(preferred: int) -> int:
    for port in [preferred, *range(preferred + 1, preferred + 50)]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _peak_rss_mb(pid: int) -> float:
    """The highest VmHWM (peak resident set) among a process and its descendants, in MB."""
    peak = 0
    for p in _descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak / 1024


class _Bench:
    def __init__(self, cmd, options) -> None:
        from django.db import connection

        self.cmd = cmd
        self.options = options
        self.rows = options["rows"]
        self.tmp = Path(tempfile.mkdtemp(prefix="paydesk-bench-batch-"))
        base = dict(connection.settings_dict)
        self.server = base
        self.db_name = f"paydesk_bench_batch_{os.getpid()}"
        self.procs: list[subprocess.Popen] = []
        self.port = _free_port(options["port"])
        user = base.get("USER") or "postgres"
        password = f":{base['PASSWORD']}" if base.get("PASSWORD") else ""
        host = f"{base.get('HOST') or '127.0.0.1'}:{base.get('PORT') or 5432}"
        url = f"postgres://{user}{password}@{host}/{self.db_name}"
        self.env = os.environ.copy()
        self.env.update(
            DATABASE_URL=url,
            DEBUG="0",
            PAYDESK_WEBHOOK_ALLOW_PRIVATE="0",
            SILENCED_SYSTEM_CHECKS="paydesk.W001",  # the benchmarks measure the sandbox on purpose
            SECRET_KEY=secrets.token_urlsafe(40),
            SANDBOX_GATEWAY_SECRET=secrets.token_urlsafe(20),
            FIELD_ENCRYPTION_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            PAYDESK_PUBLIC_URL=f"http://127.0.0.1:{self.port}",
            SANDBOX_CALLBACK_DELAY="0",
            SANDBOX_FOLLOWUP_DELAY="0",
            Q_CLUSTER_NAME=f"benchbatch{os.getpid()}",
            Q_WORKERS=str(options["workers"]),
            MEDIA_ROOT=str(self.tmp / "media"),
            PAYDESK_API_RATE="1000000/min",
            LOG_LEVEL="WARNING",
        )

    def say(self, text: str) -> None:
        self.cmd.stdout.write(text)
        self.cmd.stdout.flush()

    # Setup ---------------------------------------------------------------------------------

    def _admin(self):
        import psycopg

        s = self.server
        return psycopg.connect(
            host=s.get("HOST") or "127.0.0.1",
            port=s.get("PORT") or 5432,
            user=s.get("USER") or "postgres",
            password=s.get("PASSWORD") or None,
            dbname="postgres",
            autocommit=True,
        )

    def setup(self) -> None:
        from django.db import connection

        self.say(f"Creating database {self.db_name} and starting gunicorn + qcluster on port {self.port}…")
        with self._admin() as admin:
            admin.execute(f'CREATE DATABASE "{self.db_name}"')
        self.created = True
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            env=self.env,
            check=True,
            cwd=_root(),
        )
        connection.close()
        connection.settings_dict["NAME"] = self.db_name
        self._fixtures()
        log = open(self.tmp / "gunicorn.log", "wb")  # noqa: SIM115 - closed with the process
        self.web = self._spawn(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "600",
            ],
            log,
        )
        self.qcluster = self._spawn(
            [sys.executable, "manage.py", "qcluster"],
            open(self.tmp / "qcluster.log", "wb"),  # noqa: SIM115
        )
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        time.sleep(2)  # let the cluster's workers start

    def _spawn(self, args: list[str], log) -> subprocess.Popen:
        proc = subprocess.Popen(  # noqa: S603
            args, env=self.env, cwd=_root(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def _fixtures(self) -> None:
        from django.contrib.auth import get_user_model

        from merchants.models import Membership, Merchant
        from merchants.services import api_key_create

        User = get_user_model()
        self.merchant = Merchant.objects.create(name="Benchmark Ltd", slug="bench-batch")
        # The naive loop pays from a merchant of its own, so that the batches' history does not
        # slow its per-payment checks (risk scoring looks at the merchant's recent payments).
        Merchant.objects.create(name="Benchmark naive", slug="bench-naive")
        uploader = User.objects.create_user("uploader@bench.local", "uploader@bench.local")
        approver = User.objects.create_user("approver@bench.local", "approver@bench.local")
        Membership.objects.create(user=uploader, merchant=self.merchant, role=Membership.Role.OPERATOR)
        Membership.objects.create(user=approver, merchant=self.merchant, role=Membership.Role.APPROVER)
        _k, self.upload_key = api_key_create(
            merchant=self.merchant, scopes=["read", "write"], created_by=uploader
        )
        _k, self.approve_key = api_key_create(
            merchant=self.merchant, scopes=["read", "approve"], created_by=approver
        )

    def teardown(self) -> None:
        from django.db import connection

        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        connection.close()
        if getattr(self, "created", False) and not self.options["keep_db"]:
            with self._admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        elif getattr(self, "created", False):
            self.say(f"Kept database {self.db_name}; files in {self.tmp}")
        if not self.options["keep_db"]:
            subprocess.run(["rm", "-rf", str(self.tmp)], check=False)  # noqa: S603, S607

    # Files and HTTP ----------------------------------------------------------------------------

    def make_csv(self, tag: str) -> Path:
        path = self.tmp / f"{tag}.csv"
        with open(path, "w", encoding="utf-8", newline="") as out:
            out.write("reference,amount,currency,method,beneficiary_name,beneficiary_account,description\r\n")
            for i in range(1, self.rows + 1):
                amount = f"{(i * 7919) % 99_999 + 1}.{i % 100:02d}"
                out.write(
                    f"{tag}-{i:07d},{amount},{'EUR' if i % 5 == 0 else 'USD'},bank_transfer,"
                    f"Employee {i},{ACCOUNTS[i % len(ACCOUNTS)]},Salary {tag}\r\n"
                )
        return path

    def upload(self, path: Path) -> str:
        import requests

        boundary = "bench" + secrets.token_hex(8)
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        body = self.tmp / "body.bin"
        with open(body, "wb") as out, open(path, "rb") as src:
            out.write(head)
            while block := src.read(1 << 20):
                out.write(block)
            out.write(tail)
        with open(body, "rb") as data:
            response = requests.post(
                f"http://127.0.0.1:{self.port}/api/v1/batches",
                data=data,
                headers={
                    "Authorization": f"Bearer {self.upload_key}",
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Content-Length": str(body.stat().st_size),
                },
                timeout=600,
            )
        if response.status_code != 201:
            raise RuntimeError(f"upload failed: {response.status_code} {response.text[:500]}")
        return response.json()["id"]

    def approve(self, batch_id: str) -> None:
        import requests

        response = requests.post(
            f"http://127.0.0.1:{self.port}/api/v1/batches/{batch_id}/approve",
            headers={"Authorization": f"Bearer {self.approve_key}"},
            timeout=60,
        )
        if response.status_code != 200:
            raise RuntimeError(f"approve failed: {response.status_code} {response.text[:500]}")

    def wait_for(self, batch_id: str, statuses: set[str], timeout: float = 3600) -> str:
        from payments.models import PaymentBatch

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = PaymentBatch.objects.filter(public_id=batch_id).values_list("status", flat=True).first()
            if status in statuses:
                return status
            time.sleep(0.05)
        raise RuntimeError(f"batch {batch_id} still not {statuses} after {timeout}s")

    # Measurements ----------------------------------------------------------------------------

    def copy_bare(self, path: Path) -> float:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {BARE_TABLE}")
            cursor.execute(
                f"CREATE TABLE {BARE_TABLE} (reference text, amount text, currency text, method text, "
                "beneficiary_name text, beneficiary_account text, description text)"
            )
        started = time.perf_counter()
        with connection.cursor() as cursor, open(path, "rb") as src:
            with cursor.copy(f"COPY {BARE_TABLE} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:  # noqa: S608
                while block := src.read(1 << 20):
                    copy.write(block)
        seconds = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {BARE_TABLE}")
        return self.rows / seconds

    def copy_payments(self, tag: str) -> float:
        """COPY the same rows, as payment rows, into the payments table (all its indexes), rolled back."""
        from django.db import connection, transaction
        from django.utils import timezone

        from merchants.crypto import encrypt_many, field_hashes
        from merchants.ids import new_public_ids

        now = timezone.now()
        ids = new_public_ids("pay", self.rows)
        # The rows as the table stores them (accounts encrypted, hashed, cut to the last four),
        # prepared before the clock starts: the bound is getting them into PostgreSQL.
        accounts = [ACCOUNTS[i % len(ACCOUNTS)] for i in range(1, self.rows + 1)]
        tokens, hashes = encrypt_many(accounts), field_hashes(accounts)
        columns = (
            "public_id, merchant_id, reference, amount_minor, currency, method, beneficiary_name, "
            "beneficiary_account, beneficiary_account_hash, beneficiary_account_last4, "
            "beneficiary_email, beneficiary_phone, description, metadata, status, "
            "failure_code, failure_message, failure_retryable, refunded_minor, gateway, gateway_reference, "
            "created_at, updated_at"
        )
        started = time.perf_counter()
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                with cursor.copy(f"COPY payments_payment ({columns}) FROM STDIN") as copy:  # noqa: S608
                    for i in range(1, self.rows + 1):
                        copy.write_row(
                            (
                                ids[i - 1],
                                self.merchant.pk,
                                f"{tag}-{i:07d}",
                                100 + i,
                                "USD",
                                "bank_transfer",
                                f"Employee {i}",
                                tokens[i - 1],
                                hashes[i - 1],
                                accounts[i - 1][-4:],
                                "",
                                "",
                                f"Salary {tag}",
                                "{}",
                                "created",
                                "",
                                "",
                                False,
                                0,
                                "sandbox",
                                "",
                                now,
                                now,
                            )
                        )
                seconds = time.perf_counter() - started
                raise _Rollback
        except _Rollback:
            pass
        return self.rows / seconds

    def naive(self, tag: str) -> float:
        result = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "manage.py",
                "benchmark",
                "batch",
                "--step",
                "naive",
                "--naive",
                str(self.options["naive"]),
                "--slug",
                "bench-naive",
                "--tag",
                tag,
            ],
            env=self.env,
            cwd=_root(),
            check=True,
            capture_output=True,
            text=True,
        )
        return float(json.loads(result.stdout.strip().splitlines()[-1])["payments_per_second"])

    def measure(self, rounds: int) -> None:
        from payments.models import PaymentBatch

        ingest, bare, into_payments, execute, naive = [], [], [], [], []
        batches = []
        self.say(
            f"{rounds} round(s) of {self.rows:,} rows; naive loop rounds of {self.options['naive']} payments."
        )
        for r in range(rounds):
            tag = f"R{r}{secrets.token_hex(2).upper()}"
            path = self.make_csv(tag)
            started = time.perf_counter()
            batch_id = self.upload(path)
            status = self.wait_for(batch_id, {"validated", "rejected"})
            seconds = time.perf_counter() - started
            if status != "validated":
                batch = PaymentBatch.objects.get(public_id=batch_id)
                raise RuntimeError(f"batch rejected: {batch.rejection_code} {batch.rejection_reason}")
            ingest.append(self.rows / seconds)
            batches.append(batch_id)
            self.say(f"  round {r + 1}: ingestion {self.rows / seconds:,.0f} rows/s ({seconds:.1f} s)")
            bare.append(self.copy_bare(path))
            into_payments.append(self.copy_payments(tag + "C"))
            path.unlink()
        peak_mb = _peak_rss_mb(self.qcluster.pid)
        if not self.options["skip_execution"]:
            for r, batch_id in enumerate(batches):
                valid = PaymentBatch.objects.get(public_id=batch_id).valid_count
                started = time.perf_counter()
                self.approve(batch_id)
                self.wait_for(batch_id, {"completed"})
                seconds = time.perf_counter() - started
                execute.append(valid / seconds)
                self.say(f"  round {r + 1}: execution {valid / seconds:,.0f} payments/s ({seconds:.1f} s)")
                naive.append(self.naive(f"N{r}{secrets.token_hex(2).upper()}"))
                self.say(f"  round {r + 1}: naive loop {naive[-1]:,.1f} payments/s")
            peak_mb = max(peak_mb, _peak_rss_mb(self.qcluster.pid))
        med = statistics.median
        lines = [
            ratio_line("(a) ingestion, upload to validated", med(ingest), med(bare), "rows/s"),
            ratio_line("    vs COPY into the payments table", med(ingest), med(into_payments), "rows/s"),
        ]
        if execute:
            lines.append(
                ratio_line("(b) execution, approval to completed", med(execute), med(naive), "pay/s")
            )
        lines.append(
            ratio_line(
                f"(c) peak RSS of a worker, {self.rows:,} rows",
                peak_mb,
                TARGET_RSS_MB,
                "MB",
                higher_is_better=False,
            )
        )
        figures = bank_file.measure(self.env, _root(), self.rows, rounds)
        lines += bank_file.lines(figures, self.rows)
        for line in lines:
            self.say(line)
        summary = (
            f"batch: ingestion {med(ingest):,.0f} rows/s = {med(ingest) / med(bare):.2f}x COPY "
            f"(target {TARGET_INGEST_RATIO}); "
        )
        if execute:
            summary += (
                f"execution {med(execute):,.0f} pay/s = {med(execute) / med(naive):.1f}x naive "
                f"(target {TARGET_EXEC_RATIO:g}x); "
            )
        summary += f"peak RSS {peak_mb:.0f} MB for {self.rows:,} rows (target < {TARGET_RSS_MB} MB); "
        summary += (
            f"bank file {figures['ours']:,.0f} pay/s = {figures['ours'] / figures['bare']:.2f}x "
            f"the bare loop, peak RSS {figures['peak_rss_mb']:.0f} MB"
        )
        self.say(summary)


class _Rollback(Exception):
    pass


def _root() -> str:
    return str(Path(__file__).resolve().parents[2])


def _naive_step(cmd, options) -> None:
    """Create, submit and save payments one by one; print the rate once all are final."""
    from merchants.models import Merchant
    from payments.models import FINAL_STATES, Payment
    from payments.services.payments import payment_create

    merchant = Merchant.objects.get(slug=options["slug"])
    n, tag = options["naive"], options["tag"]
    started = time.perf_counter()
    for i in range(1, n + 1):
        payment_create(
            merchant=merchant,
            data={
                "reference": f"{tag}-{i:07d}",
                "amount": f"{(i * 7919) % 99_999 + 1}.{i % 100:02d}",
                "currency": "USD",
                "method": "bank_transfer",
                "beneficiary_name": f"Employee {i}",
                "beneficiary_account": ACCOUNTS[i % len(ACCOUNTS)],
            },
        )
    pending = Payment.objects.filter(merchant=merchant, reference__startswith=f"{tag}-")
    while pending.exclude(status__in=FINAL_STATES).exists():
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    cmd.stdout.write(json.dumps({"payments_per_second": n / seconds, "seconds": seconds}))
