"""One merchant whose endpoint hangs cannot occupy every worker of a real `manage.py qcluster`.

DESIGN section 8: one qcluster process (here with its default 2 workers) runs
all of a node's work. Merchant A's endpoint accepts connections and never
answers; A's deliveries are queued first, then one of merchant B's and a
payment submission. B's webhook and the payment must go through while A's
endpoint is still hanging, and A must have held at most one worker.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from payments.models import Delivery, DeliveryStatus, Payment, PaymentStatus
from payments.queue import enqueue
from payments.services.notifications.endpoints import webhook_endpoint_create
from payments.services.payments import payment_create
from tests.channels.conftest import final_payment, record
from tests.factories import payment_input
from tests.payments.test_batch_process import Stack

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DEADLINE = 6  # PAYDESK_WEBHOOK_TIMEOUT of the cluster, seconds
A_DELIVERIES = 6


class HangingReceiver:
    """Accepts connections, reads what comes, never answers; knows which connections the client gave up."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.connections: list[socket.socket] = []
        self.given_up = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._serve, daemon=True)]
        self.threads[0].start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/hooks"

    def open_connections(self) -> int:
        with self.lock:
            return len(self.connections) - self.given_up

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _addr = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.connections.append(conn)
            thread = threading.Thread(target=self._read_until_closed, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _read_until_closed(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass  # reset by the client: it gave up all the same
        with self.lock:
            self.given_up += 1

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(timeout=5)
        for conn in self.connections:
            conn.close()


@pytest.fixture
def cluster(transactional_db, tmp_path, settings):
    from django_q.brokers import get_broker

    settings.PAYDESK_RUN_TASKS_INLINE = False  # this process enqueues; the cluster works
    broker = get_broker()
    broker.purge_queue()
    stack = Stack(tmp_path)
    stack.env.update(
        PAYDESK_WEBHOOK_TIMEOUT=str(DEADLINE),
        PAYDESK_WEBHOOK_ALLOW_PRIVATE="1",
        SANDBOX_CALLBACK_DELAY="30",  # the sandbox's callback has no web server to go to here
    )
    try:
        stack.cluster("q1")
        yield stack
    finally:
        stack.stop_all()
        broker.purge_queue()


@pytest.fixture
def hanging():
    server = HangingReceiver()
    yield server
    server.close()


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_a_hanging_merchant_leaves_workers_for_other_merchants_and_payments(
    cluster, hanging, receiver, merchant_a, merchant_b
):
    payment = payment_create(merchant=merchant_b, data=payment_input(reference="B-1"), submit=False)
    webhook_endpoint_create(merchant=merchant_a, url=hanging.url)
    webhook_endpoint_create(merchant=merchant_b, url=receiver.url)
    a_payment = final_payment(merchant_a)
    for _ in range(A_DELIVERIES):
        record(a_payment)  # each enqueues its delivery on commit: A's work is first in the queue
    assert _wait(lambda: len(hanging.connections) >= 1, 15), cluster.log("q1")
    queued_at = time.monotonic()
    b_event = record(final_payment(merchant_b))
    enqueue("payments.tasks.payment_submit_task", payment.pk)

    assert _wait(lambda: b_event.public_id in receiver.ids, DEADLINE - 2), (
        "merchant B's webhook waited behind merchant A's hanging endpoint\n" + cluster.log("q1")
    )
    assert _wait(lambda: Payment.objects.get(pk=payment.pk).status != PaymentStatus.CREATED, DEADLINE - 2), (
        "the payment task waited behind merchant A's webhooks\n" + cluster.log("q1")
    )
    assert time.monotonic() - queued_at < DEADLINE, "both ran while A's endpoint was still hanging"
    assert hanging.open_connections() == 1, "merchant A held one worker, not both"

    # A's one attempt ends at the deadline; the rest of A's deliveries stay due, never attempted.
    assert _wait(lambda: hanging.open_connections() == 0, DEADLINE + 5)
    a_rows = Delivery.objects.filter(merchant=merchant_a)
    assert _wait(lambda: sorted(a_rows.values_list("attempts", flat=True)) == [0] * 5 + [1], 10), list(
        a_rows.values_list("attempts", "status", "error")
    )
    assert set(a_rows.values_list("status", flat=True)) == {DeliveryStatus.PENDING}
    assert len(hanging.connections) == 1
