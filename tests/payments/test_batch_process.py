"""Batches executed by real `manage.py qcluster` processes, killed mid-run, and by two clusters at once.

Each test starts, against the test database (committed data: transactional_db):
- gunicorn serving the app on a free port: the API the test uploads and
  approves through, and /callbacks/sandbox/ where the sandbox (run by the
  workers) sends its signed callbacks (PAYDESK_PUBLIC_URL points at it);
- one or two `manage.py qcluster` processes, each in its own process group so
  that SIGKILL takes the cluster and all its workers down at once.
The test process plays the periodic scheduler: it runs the sweeper every few
seconds (the production schedule runs it every minute), with short leases so
that recovery fits in a test run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.db.models import Count, Sum

from payments.models import BatchChunk, GatewayAttempt, Payment, PaymentBatch, SandboxOperation
from payments.services.batches.lifecycle import OPEN_STATES
from tests.factories import make_api_key

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = ["GB29NWBK60161331926819"] * 7 + ["4000000000000002", "4000000000003155", "4000000000000077"]
# A claimed chunk whose worker died is taken over after LEASE seconds; other lost work (a
# queued task that died with its cluster) after SWEEP_AFTER seconds without progress.
LEASE = 8
SWEEP_AFTER = 15
SWEEP_EVERY = 5
# Waits are on progress (rows in the database), never on a fixed time: a wait fails only after
# this long without progress, however slow a loaded CI machine makes the whole run.
PROGRESS_TIMEOUT = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    host = f"{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}"
    return f"postgres://{s.get('USER') or 'postgres'}{password}@{host}/{s['NAME']}"


class Stack:
    """The web server and the clusters of one test, with their logs; everything is killed at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = os.environ.copy()
        self.env.update(
            DATABASE_URL=database_url(),
            PAYDESK_PUBLIC_URL=self.url,
            MEDIA_ROOT=str(tmp / "media"),
            SANDBOX_CALLBACK_DELAY="0",
            SANDBOX_FOLLOWUP_DELAY="0",
            PAYDESK_SWEEP_AFTER=str(SWEEP_AFTER),
            PAYDESK_BATCH_CHUNK_LEASE=str(LEASE),
            PAYDESK_BATCH_VALIDATION_LEASE="15",
            PAYDESK_API_RATE="1000000/min",
            Q_WORKERS="2",
            LOG_LEVEL="INFO",
        )

    def start(self, name: str, args: list[str], **env) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed when the process ends
        proc = subprocess.Popen(  # noqa: S603
            args,
            cwd=ROOT,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def web(self) -> None:
        self.start(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{self.port}",
            ],
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code < 500:
                    return
            except requests.RequestException:
                time.sleep(0.3)
        pytest.fail("gunicorn did not start:\n" + self.log("web"))

    def cluster(self, name: str, node: str = "") -> None:
        log = self.tmp / f"{name}.log"
        start_size = log.stat().st_size if log.exists() else 0
        self.start(name, [sys.executable, "manage.py", "qcluster"], PAYDESK_NODE=node or name)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if log.exists() and b"running." in log.read_bytes()[start_size:]:
                return
            time.sleep(0.2)
        pytest.fail(f"qcluster {name} did not start:\n" + self.log(name))

    def kill(self, name: str) -> None:
        """SIGKILL the whole process group: the cluster's sentinel, pusher, monitor and workers."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_bytes()[-tail:].decode(errors="replace") if path.exists() else ""


@pytest.fixture
def stack(transactional_db, tmp_path, settings):
    from django_q.brokers import get_broker

    settings.PAYDESK_RUN_TASKS_INLINE = False  # this process enqueues for the clusters (the sweeper)
    settings.PAYDESK_SWEEP_AFTER = SWEEP_AFTER
    settings.PAYDESK_BATCH_CHUNK_LEASE = LEASE
    broker = get_broker()
    broker.purge_queue()
    stack = Stack(tmp_path)
    try:
        yield stack
    finally:
        stack.stop_all()
        broker.purge_queue()


def batch_file(n: int, tag: str) -> tuple[bytes, dict[str, int]]:
    lines = ["reference,amount,currency,method,beneficiary_name,beneficiary_account"]
    totals: dict[str, int] = {}
    for i in range(1, n + 1):
        currency = "EUR" if i % 4 == 0 else "USD"
        minor = (i * 7919) % 50_000 + 100
        totals[currency] = totals.get(currency, 0) + minor
        amount = f"{minor // 100}.{minor % 100:02d}"
        lines.append(
            f"{tag}-{i:06d},{amount},{currency},bank_transfer,Person {i},{ACCOUNTS[i % len(ACCOUNTS)]}"
        )
    return ("\r\n".join(lines) + "\r\n").encode(), totals


def upload_and_approve(
    stack: Stack, merchant, data: bytes, uploader_key: str, approver_key: str
) -> PaymentBatch:
    response = requests.post(
        f"{stack.url}/api/v1/batches",
        files={"file": ("payroll.csv", data, "text/csv")},
        headers={"Authorization": f"Bearer {uploader_key}"},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    batch_id = response.json()["id"]
    wait_for(
        stack,
        lambda: PaymentBatch.objects.get(public_id=batch_id).status in ("validated", "rejected"),
        PROGRESS_TIMEOUT,
    )
    batch = PaymentBatch.objects.get(public_id=batch_id)
    assert batch.status == "validated", batch.rejection_reason
    response = requests.post(
        f"{stack.url}/api/v1/batches/{batch_id}/approve",
        headers={"Authorization": f"Bearer {approver_key}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return batch


def settled(batch_pk: int) -> int:
    """How far a batch has got: payments past `processing` plus chunks done (never goes down)."""
    payments = Payment.objects.filter(batch_id=batch_pk).exclude(status__in=("created", "processing"))
    return payments.count() + BatchChunk.objects.filter(batch_id=batch_pk, status="done").count()


def wait_for(stack: Stack, done, timeout: float, sweep: bool = False, progress=None) -> None:
    """Wait until `done()`; fail after `timeout` seconds without progress.

    Without `progress`, `timeout` bounds the whole wait. With it, every change of
    `progress()` restarts the clock: a slow, loaded machine that still moves never
    fails, a run that has stalled does.
    """
    from payments.services.sweeper import sweep as run_sweep

    deadline = time.monotonic() + timeout
    last_sweep = 0.0
    seen = progress() if progress else None
    while time.monotonic() < deadline:
        if done():
            return
        if sweep and time.monotonic() - last_sweep > SWEEP_EVERY:
            run_sweep()
            last_sweep = time.monotonic()
        if progress:
            now = progress()
            if now != seen:
                seen, deadline = now, time.monotonic() + timeout
        time.sleep(0.25)
    logs = "\n".join(f"--- {name}\n{stack.log(name)}" for name in ("web", "q1", "q2", "qa", "qb"))
    pytest.fail(f"no progress for {timeout}s\n{logs}")


def assert_paid_exactly_once(batch: PaymentBatch, rows: int, totals: dict[str, int]) -> None:
    payments = Payment.objects.filter(batch=batch)
    assert not payments.filter(status__in=OPEN_STATES).exists()
    count = payments.count()
    assert count == rows
    public_ids = set(payments.values_list("public_id", flat=True))
    ops = SandboxOperation.objects.filter(kind="payment", payment_reference__in=public_ids)
    per_payment = ops.values("payment_reference").annotate(n=Count("id"))
    assert {row["n"] for row in per_payment} == {1}, "a payment was submitted to the sandbox twice"
    assert ops.count() == count
    assert GatewayAttempt.objects.filter(payment__batch=batch).count() == count
    sums = dict(payments.values_list("currency").annotate(s=Sum("amount_minor")).order_by())
    assert {k: int(v) for k, v in sums.items()} == totals
    batch.refresh_from_db()
    outcome_sums: dict[str, int] = {}
    for per_currency in batch.outcomes.values():
        for currency, t in per_currency.items():
            outcome_sums[currency] = outcome_sums.get(currency, 0) + t["amount_minor"]
    assert outcome_sums == totals
    assert {k: Decimal(v["amount_minor"]) for k, v in batch.totals.items()} == {
        k: Decimal(v) for k, v in totals.items()
    }


def test_a_batch_survives_its_workers_being_killed_three_times_and_pays_each_payment_once(
    stack, merchant_a, alice, carol
):
    uploader = make_api_key(merchant_a, ("read", "write"), alice)
    approver = make_api_key(merchant_a, ("read", "approve"), carol)
    stack.env["PAYDESK_BATCH_CHUNK_SIZE"] = "250"
    stack.web()
    stack.cluster("q1")
    data, totals = batch_file(10_000, "KILL")
    batch = upload_and_approve(stack, merchant_a, data, uploader, approver)

    kills = []
    for threshold in (0.15, 0.4, 0.65):

        def progressed(threshold=threshold):
            submitted = Payment.objects.filter(batch=batch).exclude(status="created").count()
            return submitted >= threshold * 10_000

        wait_for(stack, progressed, PROGRESS_TIMEOUT, sweep=True, progress=lambda: settled(batch.pk))
        done = BatchChunk.objects.filter(batch=batch, status="done").count()
        kills.append(done)
        stack.kill("q1")  # returns once the whole process group is gone
        stack.cluster("q1")
    wait_for(
        stack,
        lambda: PaymentBatch.objects.get(pk=batch.pk).status == "completed",
        PROGRESS_TIMEOUT,
        sweep=True,
        progress=lambda: settled(batch.pk),
    )

    total_chunks = BatchChunk.objects.filter(batch=batch).count()
    assert total_chunks == 40
    assert all(k < total_chunks for k in kills), kills  # every kill happened mid-run
    assert_paid_exactly_once(batch, 10_000, totals)
    assert not BatchChunk.objects.filter(batch=batch).exclude(status="done").exists()


def test_two_clusters_share_one_batch_and_never_run_a_chunk_twice(stack, merchant_a, alice, carol):
    uploader = make_api_key(merchant_a, ("read", "write"), alice)
    approver = make_api_key(merchant_a, ("read", "approve"), carol)
    stack.env["PAYDESK_BATCH_CHUNK_SIZE"] = "100"
    stack.env["PAYDESK_BATCH_CHUNK_LEASE"] = "120"  # no takeover: every claim is a first claim
    stack.web()
    stack.cluster("qa", node="node-a")
    stack.cluster("qb", node="node-b")
    data, totals = batch_file(4_000, "TWO")
    batch = upload_and_approve(stack, merchant_a, data, uploader, approver)
    wait_for(
        stack,
        lambda: PaymentBatch.objects.get(pk=batch.pk).status == "completed",
        PROGRESS_TIMEOUT,
        sweep=True,
        progress=lambda: settled(batch.pk),
    )

    chunks = BatchChunk.objects.filter(batch=batch)
    assert chunks.count() == 40
    assert set(chunks.values_list("status", "attempts")) == {("done", 1)}, "a chunk was executed twice"
    nodes = {claimed_by.split(":")[0] for claimed_by in chunks.values_list("claimed_by", flat=True)}
    assert nodes == {"node-a", "node-b"}, "both clusters should have done work"
    processes = set(chunks.values_list("claimed_by", flat=True))
    assert len(processes) >= 2
    assert_paid_exactly_once(batch, 4_000, totals)
