"""Notify: callback intake and webhook delivery, each against a bare baseline measured in the same run.

1. Callbacks accepted per second: signed sandbox callbacks POSTed to
   /callbacks/sandbox/ (verify the HMAC, store in the inbox, enqueue the apply
   task on commit, answer) against a bare Django view that stores the raw body
   in a bare table with one INSERT. Both are served by the same gunicorn (2 sync
   workers, the default) through the full middleware stack, loaded by client
   threads with one keep-alive session each; `--client` uses Django's test
   client in-process instead.
2. Webhook deliveries per second: Delivery rows sent by `deliveries_send` (the
   chunk task a worker runs: claim with the attempt counter committed, sign
   with Standard Webhooks, POST over the process's session, record the outcome)
   to a threaded HTTP server on 127.0.0.1, against a plain loop of the same
   signed POSTs with one requests.Session and no database.

Each figure is the median of `--rounds` rounds; everything the benchmark
writes is deleted at the end. The receiver is on loopback, so
PAYDESK_WEBHOOK_ALLOW_PRIVATE is switched on inside this process.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BENCH_TABLE = "bench_notify_inbox"
BENCH_SLUG = "bench-notify"
# Every callback comes from 127.0.0.1: counted per address like any other, but never refused.
UNTHROTTLED = "100000000/min"


def add_arguments(parser) -> None:
    parser.add_argument("--callbacks", type=int, default=2000, help="callbacks per round (default 2000)")
    parser.add_argument(
        "--deliveries", type=int, default=500, help="webhook deliveries per round (default 500)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per figure; the median counts (default 3)"
    )
    parser.add_argument("--threads", type=int, default=4, help="client threads against gunicorn (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument(
        "--port", type=int, default=8054, help="port for the benchmark's gunicorn (default 8054)"
    )
    parser.add_argument("--client", action="store_true", help="use Django's test client instead of gunicorn")


# URLs served by the benchmark's own gunicorn: the real callback view beside the bare baseline.


def bare_store(request):
    """The baseline: store the raw request body in a bare table and answer 200."""
    from django.db import connection
    from django.http import HttpResponse

    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {BENCH_TABLE} (body) VALUES (%s)", [request.body.decode()])  # noqa: S608
    return HttpResponse("ok")


def ping(request):
    from django.http import HttpResponse

    return HttpResponse("pong")


def __getattr__(name: str):
    # ROOT_URLCONF of the benchmark's server; built lazily so gunicorn can import this module before setup.
    if name == "urlpatterns":
        from django.urls import path
        from django.views.decorators.csrf import csrf_exempt

        from payments.views.callbacks import gateway_callback

        return [
            path("callbacks/<slug:gateway>/", gateway_callback),
            path("bench/store/", csrf_exempt(bare_store)),
            path("bench/ping", ping),
        ]
    raise AttributeError(name)


def bench_wsgi():
    """gunicorn entry point (`payments.benchmarks.notify:bench_wsgi()`): PayDesk with the URLs above."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    settings.ROOT_URLCONF = __name__
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


# Callback intake --------------------------------------------------------------------------------


def _signed_callbacks(count: int, run_id: str) -> list[tuple[bytes, dict[str, str]]]:
    from payments.gateways.sandbox import SIGNATURE_HEADER, sign

    requests_ = []
    now = int(time.time())
    for i in range(count):
        body = json.dumps(
            {
                "id": f"sbxevt_bench_{run_id}_{i}",
                "type": "payment.succeeded",
                "created": now,
                "data": {"attempt_key": f"bench-{run_id}-{i}", "gateway_reference": "sbx_bench"},
            }
        ).encode()
        requests_.append((body, {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, now)}))
    return requests_


def _create_bench_table() -> None:
    from django.db import connection

    column = "id bigserial PRIMARY KEY" if connection.vendor == "postgresql" else "id integer PRIMARY KEY"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {BENCH_TABLE}")
        cursor.execute(f"CREATE TABLE {BENCH_TABLE} ({column}, body text NOT NULL)")


def _drop_bench_table() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {BENCH_TABLE}")


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/bench/ping", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start in time")


def _load_http(url: str, batch: list[tuple[bytes, dict]], threads: int) -> float:
    """POST every request of `batch` with `threads` keep-alive clients; return requests per second."""
    import requests

    parts = [batch[i::threads] for i in range(threads)]
    failures: list[str] = []

    def client(part):
        with requests.Session() as session:
            for body, headers in part:
                response = session.post(url, data=body, headers=headers, timeout=30)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    workers = [threading.Thread(target=client, args=(part,)) for part in parts]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return len(batch) / elapsed


def _load_client(path: str, batch: list[tuple[bytes, dict]]) -> float:
    from django.test import Client

    client = Client()
    started = time.perf_counter()
    for body, headers in batch:
        extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items() if k != "Content-Type"}
        response = client.post(path, data=body, content_type="application/json", **extra)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.content[:200]!r}")
    return len(batch) / (time.perf_counter() - started)


def measure_callbacks(cmd, options, rounds: int) -> tuple[float, float, str]:
    from payments.models import GatewayCallback

    run_id = secrets.token_hex(4)
    count = options["callbacks"]
    _create_bench_table()
    process = None
    try:
        if options["client"]:
            from django.test.utils import override_settings

            how = "Django test client, in-process"
            with override_settings(ROOT_URLCONF=__name__, PAYDESK_CALLBACK_RATE=UNTHROTTLED):
                _load_client("/bench/store/", _signed_callbacks(50, run_id + "w"))
                ours, base = _rounds(
                    rounds,
                    lambda r: _load_client("/callbacks/sandbox/", _signed_callbacks(count, f"{run_id}{r}")),
                    lambda r: _load_client("/bench/store/", _signed_callbacks(count, f"{run_id}b{r}")),
                )
        else:
            port = options["port"]
            how = (
                f"gunicorn, {options['workers']} sync workers, {options['threads']} keep-alive client threads"
            )
            process = subprocess.Popen(  # noqa: S603 (fixed argv)
                [
                    str(Path(sys.executable).with_name("gunicorn")),
                    "--workers",
                    str(options["workers"]),
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--log-level",
                    "warning",
                    "payments.benchmarks.notify:bench_wsgi()",
                ],
                env={
                    **os.environ,
                    "DJANGO_SETTINGS_MODULE": "config.settings",
                    "PAYDESK_CALLBACK_RATE": UNTHROTTLED,
                },
            )
            _wait_for_port(port, process)
            base_url = f"http://127.0.0.1:{port}"
            threads = options["threads"]
            _load_http(f"{base_url}/callbacks/sandbox/", _signed_callbacks(100, run_id + "w"), threads)
            _load_http(f"{base_url}/bench/store/", _signed_callbacks(100, run_id + "v"), threads)
            ours, base = _rounds(
                rounds,
                lambda r: _load_http(
                    f"{base_url}/callbacks/sandbox/", _signed_callbacks(count, f"{run_id}{r}"), threads
                ),
                lambda r: _load_http(
                    f"{base_url}/bench/store/", _signed_callbacks(count, f"{run_id}b{r}"), threads
                ),
            )
        stored = GatewayCallback.objects.filter(event_id__startswith=f"sbxevt_bench_{run_id}")
        accepted = stored.exclude(status=GatewayCallback.Status.REJECTED).count()
        expected = count * rounds + (100 if process is not None else 0)
        if accepted < expected:
            raise RuntimeError(f"only {accepted} of {expected} callbacks were accepted")
        return ours, base, how
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        GatewayCallback.objects.filter(event_id__startswith=f"sbxevt_bench_{run_id}").delete()
        _drop_bench_table()


# Webhook delivery -------------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without it the status line and the body go out as two segments and Nagle adds 40 ms per request.
    disable_nagle_algorithm = True
    count = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with _Receiver.lock:
            _Receiver.count += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


def _start_receiver() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _bench_merchant():
    from merchants.models import Merchant

    merchant, _created = Merchant.objects.get_or_create(
        slug=BENCH_SLUG, defaults={"name": "Benchmark (notify)"}
    )
    return merchant


def _bench_deliveries(endpoint, payment, count: int) -> list[int]:
    from django.db import transaction

    from payments.models import Channel, Delivery, Event
    from payments.representations import payment_data
    from payments.services.notifications.fanout import new_delivery

    data = {"object": payment_data(payment)}
    with transaction.atomic():
        events = Event.objects.bulk_create(
            Event(merchant_id=endpoint.merchant_id, type="payment.succeeded", payment=payment, data=data)
            for _ in range(count)
        )
        rows = Delivery.objects.bulk_create(
            new_delivery(
                merchant_id=endpoint.merchant_id,
                type=e.type,
                channel=Channel.WEBHOOK,
                event=e,
                endpoint=endpoint,
                recipient=endpoint.url,
            )
            for e in events
        )
    return [d.pk for d in rows]


def _plain_loop(url: str, secret: str, payment_json: dict, count: int) -> float:
    """The baseline: sign and POST the same messages in a loop over one requests.Session."""
    import requests

    from payments.channels.webhook import signature_header

    bodies = [
        (
            f"evt_plain_{i}",
            json.dumps(
                {"type": "payment.succeeded", "timestamp": "2030-01-01T00:00:00+00:00", "data": payment_json},
                separators=(",", ":"),
            ).encode(),
        )
        for i in range(count)
    ]
    with requests.Session() as session:
        started = time.perf_counter()
        for msg_id, body in bodies:
            ts = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(ts),
                "webhook-signature": signature_header([secret], msg_id, ts, body),
            }
            response = session.post(url, data=body, headers=headers, timeout=15)
            if response.status_code != 200:
                raise RuntimeError(f"receiver answered {response.status_code}")
        return count / (time.perf_counter() - started)


def measure_deliveries(cmd, options, rounds: int) -> tuple[float, float]:
    from django.conf import settings

    from merchants.models import WebhookEndpoint
    from payments.models import Delivery, Event, Payment
    from payments.representations import payment_data
    from payments.services.notifications.endpoints import webhook_endpoint_create
    from payments.services.notifications.sending import deliveries_send

    settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    server = _start_receiver()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    merchant = _bench_merchant()
    count = options["deliveries"]
    try:
        endpoint, secret = webhook_endpoint_create(merchant=merchant, url=url)
        payment = Payment.objects.create(
            merchant=merchant,
            reference=f"BENCH-NOTIFY-{secrets.token_hex(4)}",
            amount_minor=1250,
            currency="USD",
            method="card",
            beneficiary_name="Benchmark",
            beneficiary_account="4000000000001234",
            gateway="sandbox",
        )
        payment_json = json.loads(json.dumps(payment_data(payment)))

        def ours(_round: int) -> float:
            ids = _bench_deliveries(endpoint, payment, count)
            before = _Receiver.count
            started = time.perf_counter()
            result = deliveries_send(delivery_ids=ids, budget_seconds=3600)
            elapsed = time.perf_counter() - started
            sent = result.get("succeeded", 0)
            if sent != count or _Receiver.count - before != count:
                raise RuntimeError(
                    f"sent {sent} of {count} ({result}): is a worker cluster sweeping this database? "
                    "Stop it while the benchmark runs."
                )
            return count / elapsed

        _plain_loop(url, secret, payment_json, 50)
        ours(0)  # warm-up: one round each, not counted
        return _rounds(rounds, ours, lambda _r: _plain_loop(url, secret, payment_json, count))
    finally:
        server.shutdown()
        Delivery.objects.filter(merchant=merchant).delete()
        Event.objects.filter(merchant=merchant).delete()
        Payment.objects.filter(merchant=merchant).delete()
        WebhookEndpoint.objects.filter(merchant=merchant).delete()
        merchant.delete()


# Driver -----------------------------------------------------------------------------------------


def _rounds(rounds: int, ours, baseline) -> tuple[float, float]:
    """Alternate our measurement and the baseline's so drift on a noisy machine hits both; return medians."""
    import statistics

    ours_values, base_values = [], []
    for r in range(rounds):
        ours_values.append(ours(r))
        base_values.append(baseline(r))
    return statistics.median(ours_values), statistics.median(base_values)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def run(cmd, options) -> None:
    from django.db import connection

    from payments.benchmarks import ratio_line

    rounds = max(1, options["rounds"])
    if not options["client"] and not _free(options["port"]):
        raise RuntimeError(f"port {options['port']} is busy; pass --port")
    out = cmd.stdout
    out.write(f"database: {connection.vendor}; rounds: {rounds} (medians)")
    cb_ours, cb_base, how = measure_callbacks(cmd, options, rounds)
    out.write(f"callback intake via {how}; {options['callbacks']} signed callbacks per round")
    out.write(ratio_line("callbacks accepted", cb_ours, cb_base, "req/s"))
    wh_ours, wh_base = measure_deliveries(cmd, options, rounds)
    out.write(f"webhook delivery: {options['deliveries']} per round to a threaded receiver on 127.0.0.1")
    out.write(ratio_line("webhook deliveries", wh_ours, wh_base, "msg/s"))
    out.write(
        f"summary: callbacks {cb_ours:,.0f}/s = {cb_ours / cb_base:.2f}x a bare store-the-body view; "
        f"webhooks {wh_ours:,.0f}/s = {wh_ours / wh_base:.2f}x a plain signed-POST loop"
    )
