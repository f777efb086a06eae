"""A webhook request has a total deadline: a receiver that drips its answer cannot hold a worker.

The receivers here are real TCP servers on 127.0.0.1 that read the request and
then send their answer one byte at a time, each byte well within any per-read
timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from payments.models import DeliveryStatus
from payments.services.notifications.endpoints import webhook_endpoint_create
from payments.services.notifications.sending import delivery_send
from tests.channels.conftest import deliveries, final_payment, record

pytestmark = pytest.mark.django_db

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class Dripper:
    """Accepts connections; for each request, sends `prefix` at once, then `drip` one byte per `interval`.

    Requests before `drip_from` (counted across connections) get OK_HEAD at
    once, on a kept-alive connection. Gives up dripping after `max_seconds`.
    """

    def __init__(self, drip: bytes, *, interval: float, prefix: bytes = b"", drip_from: int = 0) -> None:
        self.drip, self.interval, self.prefix, self.drip_from = drip, interval, prefix, drip_from
        self.max_seconds = 20.0
        self.requests = 0
        self.connections = 0
        self.stop = threading.Event()
        self.accepted: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.threads = [threading.Thread(target=self._serve, daemon=True)]
        self.threads[0].start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/hooks"

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _addr = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self.accepted.append(conn)
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _read_request(self, conn: socket.socket, buffered: bytes) -> bytes | None:
        while b"\r\n\r\n" not in buffered:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buffered += chunk
        head, _, rest = buffered.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        while len(rest) < length:
            rest += conn.recv(65536)
        return rest[length:]

    def _handle(self, conn: socket.socket) -> None:
        buffered = b""
        with conn:
            while not self.stop.is_set():
                buffered = self._read_request(conn, buffered)
                if buffered is None:
                    return
                self.requests += 1
                if self.requests <= self.drip_from:
                    conn.sendall(OK_HEAD)
                    continue
                try:
                    conn.sendall(self.prefix)
                    started = time.monotonic()
                    for byte in self.drip:
                        if self.stop.is_set() or time.monotonic() - started > self.max_seconds:
                            return
                        conn.sendall(bytes([byte]))
                        time.sleep(self.interval)
                except OSError:
                    return  # the client cut the connection: what the deadline is for
                return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for conn in self.accepted:
            # Wakes a handler waiting for a next request; ENOTCONN: the client closed it already.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(timeout=5)


@pytest.fixture
def dripper_factory():
    made: list[Dripper] = []

    def make(drip: bytes, **kwargs) -> Dripper:
        made.append(Dripper(drip, **kwargs))
        return made[-1]

    yield make
    for dripper in made:
        dripper.close()


def _endpoint(merchant, url: str):
    endpoint, _secret = webhook_endpoint_create(merchant=merchant, url=url)
    return endpoint


def _send_one(merchant) -> tuple[str, float]:
    event = record(final_payment(merchant))
    [delivery] = deliveries(event=event)
    started = time.monotonic()
    status = delivery_send(delivery_id=delivery.pk)
    return status, time.monotonic() - started


def test_a_receiver_dripping_its_headers_is_cut_at_the_total_deadline(settings, merchant_a, dripper_factory):
    """The case seen in review: one header byte every 0.8 s held a worker for 28 s at a 2 s setting."""
    settings.PAYDESK_WEBHOOK_TIMEOUT = 2
    headers = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 40 + b"\r\nContent-Length: 2\r\n\r\nok"
    dripper = dripper_factory(headers, interval=0.8)
    _endpoint(merchant_a, dripper.url)

    status, elapsed = _send_one(merchant_a)

    assert status == DeliveryStatus.PENDING, "a failed attempt, retried later"
    assert 1.9 <= elapsed < 3.5
    [delivery] = deliveries(channel="webhook")
    assert delivery.last_response_code is None
    assert delivery.error == "No answer within 2 s."


def test_a_receiver_dripping_its_body_is_cut_at_the_deadline_and_its_status_decides(
    settings, merchant_a, dripper_factory
):
    settings.PAYDESK_WEBHOOK_TIMEOUT = 1
    dripper = dripper_factory(
        b"y" * 1000, interval=0.05, prefix=b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    )
    _endpoint(merchant_a, dripper.url)

    status, elapsed = _send_one(merchant_a)

    assert status == DeliveryStatus.SUCCEEDED
    assert 0.9 <= elapsed < 2.5
    [delivery] = deliveries(channel="webhook")
    assert delivery.last_response_code == 200
    assert delivery.response_excerpt.endswith("[body unreadable: deadline]")


def test_a_kept_alive_connection_is_under_the_deadline_too(settings, merchant_a, dripper_factory):
    """The second request reuses the first one's connection from the pool; its answer drips."""
    settings.PAYDESK_WEBHOOK_TIMEOUT = 1
    dripper = dripper_factory(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", interval=0.5, drip_from=1)
    _endpoint(merchant_a, dripper.url)

    assert _send_one(merchant_a)[0] == DeliveryStatus.SUCCEEDED
    status, elapsed = _send_one(merchant_a)

    assert dripper.connections == 1, "the second request went over the kept-alive connection"
    assert dripper.requests == 2
    assert status == DeliveryStatus.PENDING
    assert 0.9 <= elapsed < 2.5


def test_a_fast_receiver_is_not_cut(settings, merchant_a, dripper_factory):
    settings.PAYDESK_WEBHOOK_TIMEOUT = 1
    dripper = dripper_factory(b"", interval=0, drip_from=10)
    _endpoint(merchant_a, dripper.url)

    results = [_send_one(merchant_a) for _ in range(3)]

    assert [status for status, _elapsed in results] == [DeliveryStatus.SUCCEEDED] * 3
    time.sleep(1.2)  # past every deadline: the watchdog must not cut the pooled connection's next use
    assert _send_one(merchant_a)[0] == DeliveryStatus.SUCCEEDED
    assert dripper.connections == 1
