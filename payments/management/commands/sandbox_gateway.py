"""manage.py sandbox_gateway: the sandbox gateway as a process of its own, reached over HTTP.

PayDesk uses it instead of the in-process sandbox when PAYDESK_SANDBOX_URL
points at it. It keeps the sandbox's record (SandboxOperation, in the
configured database) and sends its signed callbacks to
PAYDESK_PUBLIC_URL/callbacks/sandbox/ from its own sender threads, as a real
gateway does. `--latency-ms` and `--jitter-ms` make every answer take that
long (uniformly L - J .. L + J), so PayDesk can be measured against a gateway
that answers in hundreds of milliseconds (manage.py benchmark api
--gateway-latency-ms).
"""

from __future__ import annotations

import heapq
import json
import logging
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connections
from django.utils import timezone

from payments.gateways import CallbackRejected, sandbox

logger = logging.getLogger(__name__)
SWEEP_EVERY = 5.0  # seconds between two looks for callbacks whose sending was lost


class SandboxServer(ThreadingHTTPServer):
    """A threaded HTTP server answering POST /v1/<action> with the sandbox's record."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], *, latency_ms: float = 0, jitter_ms: float = 0) -> None:
        super().__init__(address, SandboxHandler)
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.senders = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-callbacks")
        self._due: list[tuple[float, int]] = []
        self._due_changed = threading.Condition()
        self._scheduler = threading.Thread(target=self._schedule_loop, name="sandbox-scheduler", daemon=True)
        self._stopping = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="sandbox-sweeper", daemon=True)

    def delay(self) -> float:
        """Seconds the next answer waits (the configured latency with its jitter)."""
        jitter = random.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0  # noqa: S311
        return max(0.0, self.latency_ms + jitter) / 1000

    def deliver(self, operation_id: int) -> None:
        """Send an operation's callbacks from a sender thread once they are due (the sandbox's deliverer).

        Called on commit of a new operation: its first callback is due
        SANDBOX_CALLBACK_DELAY seconds later, waited for here without a thread
        or a database connection held.
        """
        due = time.monotonic() + settings.SANDBOX_CALLBACK_DELAY
        with self._due_changed:
            heapq.heappush(self._due, (due, operation_id))
            self._due_changed.notify()

    def _schedule_loop(self) -> None:
        while not self._stopping.is_set():
            with self._due_changed:
                while not self._due or self._due[0][0] > time.monotonic():
                    if self._stopping.is_set():
                        return
                    timeout = self._due[0][0] - time.monotonic() if self._due else 1.0
                    self._due_changed.wait(max(timeout, 0.0))
                _due, operation_id = heapq.heappop(self._due)
            self.senders.submit(self._send, operation_id)

    def _send(self, operation_id: int) -> None:
        try:
            sandbox.deliver_notices(operation_id)
        except Exception:
            logger.exception("sending the callbacks of sandbox operation %s failed", operation_id)
        finally:
            connections.close_all()

    def _sweep_loop(self) -> None:
        while not self._stopping.wait(SWEEP_EVERY):
            now = timezone.now()
            try:
                for op_id in sandbox.overdue_operations(
                    now=now, stale=now - timedelta(seconds=30), limit=500
                ):
                    self.senders.submit(self._send, op_id)
            except Exception:
                logger.exception("the sandbox's sweep failed")
            finally:
                connections.close_all()

    def start(self) -> None:
        sandbox.set_deliverer(self.deliver)
        self._sweeper.start()
        self._scheduler.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._due_changed:
            self._due_changed.notify()
        sandbox.set_deliverer(None)
        self.shutdown()
        self.server_close()
        self.senders.shutdown(wait=False, cancel_futures=True)


class SandboxHandler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        action = self.path.removeprefix("/v1/").strip("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if action not in sandbox.REMOTE_ACTIONS:
            return self._answer(404, {"error": "unknown action"})
        try:
            payload = sandbox.remote_verify(body, self.headers.get(sandbox.SIGNATURE_HEADER, ""))
        except CallbackRejected as exc:
            return self._answer(401, {"error": str(exc)})
        time.sleep(self.server.delay())
        close_old_connections()
        try:
            answer = sandbox.remote_serve(action, payload)
        except (KeyError, TypeError, ValueError) as exc:
            return self._answer(400, {"error": f"malformed request: {exc}"})
        finally:
            connections.close_all()
        self._answer(200, answer)

    def _answer(self, status: int, data: dict) -> None:
        body = json.dumps(data, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        logger.debug("sandbox %s " + format, self.address_string(), *args)


class Command(BaseCommand):
    help = "Run the sandbox gateway as its own HTTP server (PayDesk reaches it through PAYDESK_SANDBOX_URL)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8090)
        parser.add_argument("--latency-ms", type=float, default=0.0, help="time every answer takes")
        parser.add_argument("--jitter-ms", type=float, default=0.0, help="uniform +- jitter on the latency")

    def handle(self, *args, **options) -> None:
        server = SandboxServer(
            (options["host"], options["port"]),
            latency_ms=options["latency_ms"],
            jitter_ms=options["jitter_ms"],
        )
        server.start()
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        thread = threading.Thread(target=server.serve_forever, name="sandbox-http", daemon=True)
        thread.start()
        self.stdout.write(
            f"sandbox gateway on http://{options['host']}:{server.server_port}/ "
            f"(latency {options['latency_ms']:g} ms +- {options['jitter_ms']:g} ms), "
            f"callbacks to {settings.PAYDESK_PUBLIC_URL}/callbacks/sandbox/"
        )
        stop.wait()
        server.stop()
