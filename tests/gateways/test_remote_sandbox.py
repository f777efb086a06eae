"""The sandbox as a process of its own (manage.py sandbox_gateway), reached over HTTP (issue 15).

The server runs in threads of the test process, on the test database, with a
real PayDesk server (pytest-django's live_server) to receive its signed
callbacks: submission over HTTP, signed callback back, applied by the worker.
The end-to-end test runs on PostgreSQL (marker `postgres`).
"""

import json
import threading
import time

import pytest
import requests

from payments.gateways import GatewayError, get_gateway, sandbox
from payments.management.commands.sandbox_gateway import SandboxServer
from payments.models import GatewayAttempt, GatewayCallback, Payment, SandboxOperation
from tests.api.conftest import Api
from tests.factories import payment_input

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def remote_sandbox(settings):
    server = SandboxServer(("127.0.0.1", 0), latency_ms=30, jitter_ms=10)
    server.start()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.PAYDESK_SANDBOX_URL = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.stop()


def wait_for(predicate, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.postgres  # three threads writing at once: SQLite's shared in-memory test database locks tables
def test_submission_over_http_and_signed_callback_back(remote_sandbox, live_server, settings, key_a):
    settings.PAYDESK_PUBLIC_URL = live_server.url
    api = Api(key_a)
    answer = api.post("/api/v1/payments", payment_input(reference="REMOTE-1"), idem="remote-1")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["status"] == "processing"
    payment = Payment.objects.get(public_id=body["id"])
    attempt = GatewayAttempt.objects.get(payment=payment)
    # The remote sandbox recorded the operation under the attempt's key, and answered with its reference.
    op = SandboxOperation.objects.get(key=attempt.idempotency_key)
    assert op.gateway_reference == attempt.gateway_reference == payment.gateway_reference
    assert (op.payment_reference, op.amount_minor, op.currency) == (
        payment.public_id,
        payment.amount_minor,
        payment.currency,
    )
    # Its sender thread posts the signed callback to PayDesk, which applies it.
    wait_for(lambda: Payment.objects.get(pk=payment.pk).status == "succeeded")
    callback = GatewayCallback.objects.get(gateway="sandbox")
    assert callback.status == GatewayCallback.Status.APPLIED
    assert callback.payload["data"]["attempt_key"] == attempt.idempotency_key


def test_a_repeated_key_is_answered_from_the_remote_record(remote_sandbox, settings, merchant_a):
    settings.PAYDESK_PUBLIC_URL = "http://127.0.0.1:9"  # the callbacks' fate does not matter here
    operation = {
        "key": "pay_x-1",
        "kind": "payment",
        "payment_reference": "pay_x",
        "amount_minor": 100,
        "currency": "EUR",
        "account": "DE00000000000002",
        "first_try": True,
    }
    first = sandbox.remote_call("execute", operation)
    again = sandbox.remote_call("execute", operation)
    assert first == again and first["outcome"] == "processing"
    assert SandboxOperation.objects.filter(key="pay_x-1").count() == 1


def test_an_unsigned_request_is_refused(remote_sandbox):
    url = f"{remote_sandbox.server_address[0]}:{remote_sandbox.server_port}"
    body = json.dumps({"key": "k"}).encode()
    answer = requests.post(f"http://{url}/v1/execute", data=body, timeout=5)
    assert answer.status_code == 401
    forged = requests.post(
        f"http://{url}/v1/execute",
        data=body,
        headers={sandbox.SIGNATURE_HEADER: sandbox.sign(body, int(time.time()), secret="wrong")},  # noqa: S106
        timeout=5,
    )
    assert forged.status_code == 401
    assert not SandboxOperation.objects.exists()


def test_an_unreachable_remote_sandbox_is_a_gateway_error(settings, merchant_a):
    settings.PAYDESK_SANDBOX_URL = "http://127.0.0.1:9"
    with pytest.raises(GatewayError):
        get_gateway("sandbox").close(GatewayAttempt(idempotency_key="pay_y-1"))


def test_the_sweeper_leaves_a_remote_sandboxs_callbacks_to_it(settings, merchant_a, monkeypatch):
    """The remote sandbox sends its own callbacks; PayDesk's sweeper re-enqueues only the in-process one's."""
    from datetime import timedelta

    from django.utils import timezone

    from payments.models import SandboxNotice
    from payments.services import sweeper

    settings.PAYDESK_PUBLIC_URL = "http://127.0.0.1:9"
    sandbox.execute_operation(
        key="pay_z-1",
        kind="payment",
        payment_reference="pay_z",
        amount_minor=100,
        currency="EUR",
        account="DE00000000001234",
        first_try=True,
    )
    long_ago = timezone.now() - timedelta(minutes=5)
    SandboxNotice.objects.update(due_at=long_ago, last_attempt_at=long_ago)
    enqueued = []
    monkeypatch.setattr(sweeper, "enqueue", lambda func, *args: enqueued.append(func))
    settings.PAYDESK_SANDBOX_URL = "http://127.0.0.1:8090"
    assert sweeper.sweep()["sandbox_notices"] == 0
    settings.PAYDESK_SANDBOX_URL = ""
    assert sweeper.sweep()["sandbox_notices"] == 1
    assert "payments.tasks.sandbox_deliver_task" in enqueued
