"""api: POST /api/v1/payments against a bare DRF insert endpoint, both under gunicorn on PostgreSQL.

Creates its own PostgreSQL database (on the server of DATABASE_URL, or
127.0.0.1:5432), migrates it, seeds a merchant and an API key, and starts
gunicorn (sync workers) with payments.benchmarks.api_settings, which adds the
bare endpoint. Then, in alternating rounds, N concurrent clients drive each
endpoint for a fixed time: ours with a fresh reference and a fresh
Idempotency-Key per request (the full path: auth, throttle, idempotency
claim, validation, risk score, gateway attempt, inline sandbox submission,
events, stored answer), the baseline with a plain serializer and one INSERT.
Prints the median throughput, p50 and p99 of each and their ratios; the last
line is a one-line summary. The database is dropped at the end.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from payments.benchmarks import ratio_line, server_execute, server_url, with_database

TARGET_RATIO = 0.4
TARGET_P99_MS = 100.0
BASE_DIR = Path(settings.BASE_DIR)


def add_arguments(parser) -> None:
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--seconds", type=float, default=6.0, help="duration of one round per endpoint")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each figure is the median")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument("--port", type=int, default=8031)
    parser.add_argument("--server", default="", help="PostgreSQL server URL (default: that of DATABASE_URL)")


@dataclass
class Round:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _env(database_url: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DEBUG="0",
        PAYDESK_WEBHOOK_ALLOW_PRIVATE="0",
        SILENCED_SYSTEM_CHECKS="paydesk.W001",  # the benchmarks measure the sandbox on purpose
        SECRET_KEY="benchmark-api-" + uuid.uuid4().hex,
        SANDBOX_GATEWAY_SECRET="benchmark-sandbox",  # noqa: S106 - a throw-away benchmark server
        FIELD_ENCRYPTION_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        ALLOWED_HOSTS="127.0.0.1",
        PAYDESK_PUBLIC_URL=f"http://127.0.0.1:{port}",
        # The benchmark measures the endpoint, not the rate limit (the counter stays on).
        PAYDESK_API_RATE="100000000/min",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


PREPARE = """
import django
django.setup()
from django.db import connection
from merchants.services import api_key_create, merchant_create
from payments.benchmarks.api_urls import BARE_TABLE
with connection.cursor() as cursor:
    cursor.execute(
        f"CREATE TABLE {BARE_TABLE} (id bigserial PRIMARY KEY, reference varchar(140) NOT NULL, "
        "amount numeric(18, 2) NOT NULL, currency varchar(3) NOT NULL, created_at timestamptz NOT NULL)"
    )
merchant = merchant_create(name="Benchmark", owner_email="bench@paydesk.local")
merchant.per_payment_limit_minor = 0
merchant.save()
_key, raw = api_key_create(merchant=merchant, scopes=["read", "write"])
from django.conf import settings
print(settings.DATABASES["default"]["CONN_MAX_AGE"])
print(raw)
"""


def _post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        status = response.status
    finally:
        conn.close()
    return status, (time.perf_counter() - started) * 1000


def _drive(port: int, clients: int, seconds: float, make_request) -> Round:
    """Run `clients` threads POSTing for `seconds`; count 2xx answers and their latencies."""
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    deadline: list[float] = []

    def client() -> None:
        barrier.wait()
        mine, ok, errors = [], 0, 0
        while time.perf_counter() < deadline[0]:
            path, body, headers = make_request()
            try:
                status, ms = _post(port, path, body, headers)
            except OSError:
                errors += 1
                continue
            if 200 <= status < 300:
                ok += 1
                mine.append(ms)
            else:
                errors += 1
        with lock:
            latencies.extend(mine)
            counts["ok"] += ok
            counts["errors"] += errors

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    deadline.append(time.perf_counter() + seconds)
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return Round(counts["ok"], counts["errors"], elapsed, latencies)


def _wait_until_up(port: int, proc: subprocess.Popen) -> None:
    for _ in range(150):
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited during start-up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not answer within 15 s")


def run(cmd, options) -> None:
    port, clients, seconds, rounds = (
        options["port"],
        options["clients"],
        options["seconds"],
        options["rounds"],
    )
    server = server_url(options["server"])
    name = f"paydesk_api_bench_{os.getpid()}"
    database_url = with_database(server, name)
    env = _env(database_url, port)
    python = sys.executable
    gunicorn = str(Path(python).with_name("gunicorn"))
    server_execute(server, f'CREATE DATABASE "{name}"')
    proc = None
    try:
        subprocess.run(  # noqa: S603 - our own interpreter and manage.py
            [python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BASE_DIR, env=env, check=True
        )
        prepared = subprocess.run(  # noqa: S603 - our own interpreter and code
            [python, "-c", PREPARE],
            cwd=BASE_DIR,
            env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
            check=True,
            capture_output=True,
            text=True,
        )
        conn_max_age, api_key = prepared.stdout.strip().splitlines()[-2:]
        proc = subprocess.Popen(  # noqa: S603 - the venv's gunicorn
            [gunicorn, "config.wsgi", "-w", str(options["workers"]), "-b", f"127.0.0.1:{port}"]
            + ["--worker-class", "sync", "--log-level", "warning", "--timeout", "60"],
            cwd=BASE_DIR,
            env={**env, "DJANGO_SETTINGS_MODULE": "payments.benchmarks.api_settings"},
        )
        _wait_until_up(port, proc)

        def ours():
            body = {
                "reference": "BENCH-" + uuid.uuid4().hex,
                "amount": "125.00",
                "currency": "USD",
                "method": "card",
                "beneficiary_name": "Ada Lovelace",
                "beneficiary_account": "4000000000001234",
            }
            headers = {
                "Content-Type": "application/json",
                "Authorization": f"Bearer {api_key}",
                "Idempotency-Key": str(uuid.uuid4()),
            }
            return "/api/v1/payments", json.dumps(body).encode(), headers

        def bare():
            body = {"reference": "BENCH-" + uuid.uuid4().hex, "amount": "125.00", "currency": "USD"}
            return "/bench/bare", json.dumps(body).encode(), {"Content-Type": "application/json"}

        broker = "Redis" if env.get("REDIS_URL") else "ORM (database)"
        cmd.stdout.write(
            f"api benchmark: gunicorn {options['workers']} sync workers on PostgreSQL ({name}), "
            f"{clients} clients, {rounds} rounds x {seconds:g} s per endpoint; "
            f"task broker {broker}, CONN_MAX_AGE {conn_max_age}"
        )
        _drive(port, clients, min(2.0, seconds), bare)  # warm-up: connections, imports, caches
        _drive(port, clients, min(2.0, seconds), ours)
        results: dict[str, list[Round]] = {"ours": [], "bare": []}
        for number in range(1, rounds + 1):
            results["bare"].append(_drive(port, clients, seconds, bare))
            results["ours"].append(_drive(port, clients, seconds, ours))
            b, o = results["bare"][-1], results["ours"][-1]
            cmd.stdout.write(
                f"  round {number}: ours {o.throughput:7.1f} req/s p50 {o.percentile(0.5):6.1f} ms "
                f"p99 {o.percentile(0.99):6.1f} ms ({o.errors} errors) | bare {b.throughput:7.1f} req/s "
                f"p50 {b.percentile(0.5):6.1f} ms p99 {b.percentile(0.99):6.1f} ms ({b.errors} errors)"
            )
        _report(cmd, results, clients)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        server_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _report(cmd, results: dict[str, list[Round]], clients: int) -> None:
    def median(kind: str, figure) -> float:
        return statistics.median(figure(r) for r in results[kind])

    ours_rps, bare_rps = median("ours", lambda r: r.throughput), median("bare", lambda r: r.throughput)
    ours_p50, bare_p50 = (
        median("ours", lambda r: r.percentile(0.5)),
        median("bare", lambda r: r.percentile(0.5)),
    )
    ours_p99, bare_p99 = (
        median("ours", lambda r: r.percentile(0.99)),
        median("bare", lambda r: r.percentile(0.99)),
    )
    errors = sum(r.errors for rounds in results.values() for r in rounds)
    cmd.stdout.write(ratio_line(f"POST throughput ({clients} clients)", ours_rps, bare_rps, "req/s"))
    cmd.stdout.write(ratio_line("POST latency p50", ours_p50, bare_p50, "ms", higher_is_better=False))
    cmd.stdout.write(ratio_line("POST latency p99", ours_p99, bare_p99, "ms", higher_is_better=False))
    if errors:
        cmd.stdout.write(f"WARNING: {errors} requests failed (non-2xx or connection errors)")
    ratio = ours_rps / bare_rps if bare_rps else 0.0
    met = ratio >= TARGET_RATIO and ours_p99 < TARGET_P99_MS and not errors
    cmd.stdout.write(
        f"api: POST /api/v1/payments {ours_rps:.0f} req/s = {ratio:.2f}x bare DRF insert "
        f"({bare_rps:.0f} req/s), p99 {ours_p99:.1f} ms at {clients} clients; "
        f"target >= {TARGET_RATIO}x and p99 < {TARGET_P99_MS:.0f} ms: {'met' if met else 'NOT met'}"
    )
