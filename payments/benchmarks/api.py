"""api: POST /api/v1/payments against a bare DRF insert endpoint, both under gunicorn on PostgreSQL.

Creates its own PostgreSQL database (on the server of DATABASE_URL, or
127.0.0.1:5432), migrates it, seeds a merchant and an API key, and starts
gunicorn as PayDesk is served (config/gunicorn.py when present: gthread
workers; PAYDESK_DB_POOL connection pool) with payments.benchmarks.api_settings,
which adds the bare endpoint.

With `--gateway-latency-ms L` the sandbox runs as its own process
(`manage.py sandbox_gateway`, PAYDESK_SANDBOX_URL), twice: answering at once
and after L ms (+- `--jitter-ms`), each with a gunicorn of its own that
receives its callbacks. Three figures, in alternating rounds: ours at 0 ms
against the bare insert (target TARGET_BARE_RATIO), ours at L ms against ours at
0 ms with `--latency-clients` clients (target TARGET_HIDDEN: the latency is
hidden), and p50/p99 at L ms (target p99 < L + TARGET_P99_MARGIN_MS). Server CPU
per request (gunicorn workers and sandbox, from /proc) is printed beside them.

Without it: in alternating rounds, N concurrent clients drive each
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
# Targets of issue 15 (--gateway-latency-ms).
TARGET_BARE_RATIO = 0.3
TARGET_HIDDEN = 0.8
TARGET_P99_MARGIN_MS = 150.0
GUNICORN_CONFIG = Path(settings.BASE_DIR) / "config" / "gunicorn.py"
BASE_DIR = Path(settings.BASE_DIR)


def add_arguments(parser) -> None:
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--seconds", type=float, default=6.0, help="duration of one round per endpoint")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each figure is the median")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=32, help="threads per gthread worker (default 32)")
    parser.add_argument(
        "--worker-class",
        default="gthread",
        choices=("gthread", "sync"),
        help="gunicorn worker (default gthread)",
    )
    parser.add_argument(
        "--db-pool", type=int, default=8, help="PAYDESK_DB_POOL per process (0: one connection per thread)"
    )
    parser.add_argument(
        "--gateway-latency-ms",
        type=float,
        default=None,
        help="run the remote sandbox (manage.py sandbox_gateway) and measure ours at this latency",
    )
    parser.add_argument("--jitter-ms", type=float, default=None, help="latency jitter (default: a tenth)")
    parser.add_argument("--latency-clients", type=int, default=64, help="clients of the latency figures")
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


def _gunicorn_command(python: str, options, port: int) -> list[str]:
    """gunicorn as PayDesk is served: config/gunicorn.py when present, with the benchmark's counts."""
    gunicorn = str(Path(python).with_name("gunicorn"))
    command = [gunicorn]
    if GUNICORN_CONFIG.exists():
        command += ["-c", str(GUNICORN_CONFIG)]
    command += ["config.wsgi", "-w", str(options["workers"]), "-b", f"127.0.0.1:{port}"]
    if options["worker_class"] == "sync":
        command += ["--worker-class", "sync", "--threads", "1"]
    else:
        if not GUNICORN_CONFIG.exists():
            command += ["--worker-class", "gthread"]
        command += ["--threads", str(options["threads"])]
    return command + ["--log-level", "warning", "--timeout", "60"]


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their children (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # the process ended meanwhile
    return total


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


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
    if options["db_pool"]:
        env["PAYDESK_DB_POOL"] = str(options["db_pool"])
    python = sys.executable
    server_execute(server, f'CREATE DATABASE "{name}"')
    procs: list[subprocess.Popen] = []
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
        bench_env = {**env, "DJANGO_SETTINGS_MODULE": "payments.benchmarks.api_settings"}

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

        serving = (
            f"gunicorn {options['workers']} {options['worker_class']} workers"
            + (f" x {options['threads']} threads" if options["worker_class"] == "gthread" else "")
            + (
                f", PAYDESK_DB_POOL {options['db_pool']}"
                if options["db_pool"]
                else f", CONN_MAX_AGE {conn_max_age}"
            )
        )
        broker = "Redis" if env.get("REDIS_URL") else "ORM (database)"
        if options["gateway_latency_ms"] is not None:
            _run_latency(cmd, options, procs, python, bench_env, port, ours, bare, serving, name)
            return
        proc = subprocess.Popen(  # noqa: S603 - the venv's gunicorn
            _gunicorn_command(python, options, port), cwd=BASE_DIR, env=bench_env
        )
        procs.append(proc)
        _wait_until_up(port, proc)
        cmd.stdout.write(
            f"api benchmark: {serving} on PostgreSQL ({name}), {clients} clients, "
            f"{rounds} rounds x {seconds:g} s per endpoint; task broker {broker}; in-process sandbox"
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
        for proc in procs:
            _stop(proc)
        server_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_latency(cmd, options, procs, python, bench_env, port, ours, bare, serving, name) -> None:
    """The three figures of issue 15 against two remote sandboxes (0 ms and L ms), in alternating rounds."""
    latency = options["gateway_latency_ms"]
    jitter = options["jitter_ms"] if options["jitter_ms"] is not None else latency / 10
    clients, many, seconds, rounds = (
        options["clients"],
        options["latency_clients"],
        options["seconds"],
        options["rounds"],
    )
    # Two PayDesks, each with its sandbox sending its callbacks back to it.
    setups = {}
    for label, web_port, sandbox_port, delay, spread in (
        ("0 ms", port, port + 1, 0.0, 0.0),
        (f"{latency:g} ms", port + 2, port + 3, latency, jitter),
    ):
        public = f"http://127.0.0.1:{web_port}"
        sandbox = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
            [python, "manage.py", "sandbox_gateway", "--port", str(sandbox_port)]
            + ["--latency-ms", str(delay), "--jitter-ms", str(spread)],
            cwd=BASE_DIR,
            env={
                **bench_env,
                "PAYDESK_PUBLIC_URL": public,
                "PAYDESK_DB_POOL": str(options["db_pool"]),
            },
            stdout=subprocess.DEVNULL,
        )
        procs.append(sandbox)
        web = subprocess.Popen(  # noqa: S603 - the venv's gunicorn
            _gunicorn_command(python, options, web_port),
            cwd=BASE_DIR,
            env={
                **bench_env,
                "PAYDESK_PUBLIC_URL": public,
                "PAYDESK_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
            },
        )
        procs.append(web)
        setups[label] = (web_port, web, sandbox)
    for web_port, web, _sandbox in setups.values():
        _wait_until_up(web_port, web)
    zero, slow = list(setups)
    cmd.stdout.write(
        f"api benchmark: {serving} on PostgreSQL ({name}); remote sandbox (manage.py sandbox_gateway) "
        f"at 0 ms and at {latency:g} +- {jitter:g} ms; {rounds} rounds x {seconds:g} s; "
        f"{clients} clients against the bare insert, {many} for the latency"
    )
    for label in setups:  # warm-up: connections, imports, caches
        _drive(setups[label][0], many, min(2.0, seconds), ours)
    _drive(port, clients, min(2.0, seconds), bare)

    def measured(label: str, n: int, make) -> tuple[Round, float]:
        web_port, web, sandbox = setups[label]
        before = _cpu_seconds([web.pid, sandbox.pid])
        result = _drive(web_port, n, seconds, make)
        cpu_ms = (_cpu_seconds([web.pid, sandbox.pid]) - before) * 1000 / max(result.requests, 1)
        return result, cpu_ms

    figures: dict[str, list[tuple[Round, float]]] = {"bare": [], "ours0": [], "ours0_many": [], "slow": []}
    for number in range(1, rounds + 1):
        figures["bare"].append(measured(zero, clients, bare))
        figures["ours0"].append(measured(zero, clients, ours))
        figures["ours0_many"].append(measured(zero, many, ours))
        figures["slow"].append(measured(slow, many, ours))
        parts = []
        for key, label in (
            ("bare", "bare"),
            ("ours0", "ours 0 ms"),
            ("ours0_many", f"ours 0 ms/{many}"),
            ("slow", f"ours {latency:g} ms/{many}"),
        ):
            r, cpu = figures[key][-1]
            parts.append(
                f"{label} {r.throughput:6.1f} req/s p99 {r.percentile(0.99):6.0f} ms "
                f"cpu {cpu:4.1f} ms/req ({r.errors} err)"
            )
        cmd.stdout.write(f"  round {number}: " + " | ".join(parts))

    def med(key: str, figure) -> float:
        return statistics.median(figure(r, cpu) for r, cpu in figures[key])

    bare_rps, ours_rps = med("bare", lambda r, c: r.throughput), med("ours0", lambda r, c: r.throughput)
    zero_many = med("ours0_many", lambda r, c: r.throughput)
    slow_rps = med("slow", lambda r, c: r.throughput)
    slow_p50 = med("slow", lambda r, c: r.percentile(0.5))
    slow_p99 = med("slow", lambda r, c: r.percentile(0.99))
    zero_p99 = med("ours0_many", lambda r, c: r.percentile(0.99))
    errors = sum(r.errors for rounds_ in figures.values() for r, _cpu in rounds_)
    first, hidden = ours_rps / bare_rps if bare_rps else 0.0, slow_rps / zero_many if zero_many else 0.0
    p99_target = latency + TARGET_P99_MARGIN_MS
    cmd.stdout.write(ratio_line(f"POST at 0 ms vs bare ({clients} clients)", ours_rps, bare_rps, "req/s"))
    cmd.stdout.write(
        ratio_line(f"POST at {latency:g} ms vs 0 ms ({many} clients)", slow_rps, zero_many, "req/s")
    )
    cmd.stdout.write(
        ratio_line(
            f"POST p99 at {latency:g} ms vs 0 ms ({many})", slow_p99, zero_p99, "ms", higher_is_better=False
        )
    )
    cmd.stdout.write(
        f"server CPU per request: bare {med('bare', lambda r, c: c):.1f} ms, ours at 0 ms "
        f"{med('ours0', lambda r, c: c):.1f} ms, at {latency:g} ms {med('slow', lambda r, c: c):.1f} ms "
        "(gunicorn workers and the sandbox process)"
    )
    if errors:
        cmd.stdout.write(f"WARNING: {errors} requests failed (non-2xx or connection errors)")

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    cmd.stdout.write(
        f"api --gateway-latency-ms {latency:g}: ours/bare {first:.2f}x (target >= {TARGET_BARE_RATIO}x: "
        f"{verdict(first >= TARGET_BARE_RATIO)}); {latency:g} ms/0 ms at {many} clients {hidden:.2f}x "
        f"(target >= {TARGET_HIDDEN}x: {verdict(hidden >= TARGET_HIDDEN)}); p50 {slow_p50:.0f} ms, "
        f"p99 {slow_p99:.0f} ms (target < {p99_target:.0f} ms: {verdict(slow_p99 < p99_target)})"
    )


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
