"""Refund reconciliation through the sandbox: a refund whose callback never came is queried and settled.

The sandbox answers a refund `processing` and owes a `refund.succeeded`
callback; here that callback is held back (the wire is down), so only
reconciliation, answering from the sandbox's own record, can settle the refund.
Time is moved with time-machine, never waited for.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from payments.models import Event, GatewayAttempt, GatewayCallback, Refund, SandboxNotice
from payments.services.payments import payment_create
from payments.services.reconcile import reconcile_due, refund_reconcile
from payments.services.refunds import refund_create
from payments.tasks import reconcile_task, refund_reconcile_task
from payments.validation import PaymentInvalid
from tests.factories import payment_input

pytestmark = pytest.mark.django_db(transaction=True)

QUERY_AFTER = 60


@pytest.fixture
def reconciled_sandbox(settings):
    settings.PAYDESK_RECONCILE = {
        **settings.PAYDESK_RECONCILE,
        "sandbox": {"query_after": QUERY_AFTER, "action_expires": 900},
    }


def pending_refund(merchant, wire, amount="40.00", on_hold=None):
    """A succeeded 100.00 sandbox payment and a refund whose callback is held back."""
    payment = payment_create(merchant=merchant, data=payment_input(amount="100.00"))
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    wire.hold = True
    if on_hold is not None:
        on_hold()
    refund = refund_create(payment=payment, amount=amount)
    assert refund.status == "pending"
    assert not [m for m in wire.sent if m["type"].startswith("refund.")]
    assert GatewayAttempt.objects.get(refund=refund).status == "answered"
    return payment, refund


def refund_events(refund):
    return list(Event.objects.filter(refund=refund).order_by("pk").values_list("type", flat=True))


@pytest.mark.usefixtures("reconciled_sandbox")
def test_a_pending_refund_past_query_after_is_queried_and_succeeds(merchant_a, sandbox_wire, clock):
    payment, refund = pending_refund(merchant_a, sandbox_wire)

    clock(seconds=QUERY_AFTER - 1)
    assert reconcile_task()["sandbox"] == 0
    refund.refresh_from_db()
    assert refund.status == "pending"

    clock(seconds=QUERY_AFTER + 1)
    assert reconcile_task()["sandbox"] == 1

    refund.refresh_from_db()
    payment.refresh_from_db()
    assert refund.status == "succeeded"
    assert (payment.status, payment.refunded_minor) == ("partially_refunded", 4000)
    assert refund_events(refund) == ["refund.created", "refund.succeeded"]
    assert Event.objects.get(refund=refund, type="refund.succeeded").actor == "gateway:sandbox"
    assert reconcile_due()["sandbox"] == 0
    assert refund_reconcile_task(refund.pk) == "settled"


@pytest.mark.usefixtures("reconciled_sandbox")
def test_a_refund_not_due_is_not_queried(merchant_a, sandbox_wire, clock):
    _, refund = pending_refund(merchant_a, sandbox_wire)
    last_call = GatewayAttempt.objects.get(refund=refund).last_call_at

    clock(seconds=QUERY_AFTER - 1)
    assert reconcile_due()["sandbox"] == 0
    assert refund_reconcile(refund_id=refund.pk) == "not due"

    attempt = GatewayAttempt.objects.get(refund=refund)
    assert attempt.last_call_at == last_call
    refund.refresh_from_db()
    assert refund.status == "pending"


@pytest.mark.usefixtures("reconciled_sandbox")
def test_a_second_run_does_nothing_and_the_held_callback_changes_nothing(merchant_a, sandbox_wire, clock):
    payment, refund = pending_refund(merchant_a, sandbox_wire)
    clock(minutes=2)

    outcomes = [refund_reconcile(refund_id=refund.pk), refund_reconcile(refund_id=refund.pk)]

    assert outcomes == ["applied refund.succeeded", "settled"]
    # The wire comes back: the sandbox's own callback arrives late and is ignored.
    sandbox_wire.hold = False
    url, body, headers = sandbox_wire.held[-1]
    assert sandbox_wire.post(url, body, headers) == 200
    callback = GatewayCallback.objects.latest("pk")
    assert callback.status == GatewayCallback.Status.IGNORED
    assert "refund already succeeded" in callback.reason
    payment.refresh_from_db()
    assert payment.refunded_minor == 4000
    assert refund_events(refund) == ["refund.created", "refund.succeeded"]


@pytest.mark.usefixtures("reconciled_sandbox")
def test_a_refund_the_sandbox_has_not_decided_yet_stays_pending(merchant_a, sandbox_wire, clock, settings):
    def slow_sandbox() -> None:
        settings.SANDBOX_CALLBACK_DELAY = 3600  # the refund's outcome is due in an hour

    _, refund = pending_refund(merchant_a, sandbox_wire, on_hold=slow_sandbox)

    clock(minutes=2)
    assert refund_reconcile(refund_id=refund.pk) == "pending"
    clock(minutes=2, seconds=30)  # queried 30 s ago
    assert refund_reconcile(refund_id=refund.pk) == "not due"
    clock(hours=1, minutes=1)
    assert refund_reconcile(refund_id=refund.pk) == "applied refund.succeeded"


@pytest.mark.usefixtures("reconciled_sandbox")
def test_a_failed_refund_found_by_query_releases_its_amount(merchant_a, sandbox_wire, clock):
    payment, refund = pending_refund(merchant_a, sandbox_wire, amount="100.00")
    with pytest.raises(PaymentInvalid):
        refund_create(payment=payment, amount="1.00")  # the whole amount is held
    # The sandbox's record of this refund says it failed (as a bank returning a refund would).
    SandboxNotice.objects.filter(operation__key=refund.attempts.get().idempotency_key).update(
        type="refund.failed", data={"failure_code": "account_closed"}
    )

    clock(minutes=2)
    assert refund_reconcile(refund_id=refund.pk) == "applied refund.failed"

    refund.refresh_from_db()
    payment.refresh_from_db()
    assert (refund.status, refund.failure_code) == ("failed", "account_closed")
    assert (payment.status, payment.refunded_minor) == ("succeeded", 0)
    assert refund_events(refund) == ["refund.created", "refund.failed"]
    sandbox_wire.hold = False
    again = refund_create(payment=payment, amount="100.00")
    assert again.amount_minor == 10000


def test_a_gateway_without_reconciliation_timings_is_not_queried(merchant_a, sandbox_wire, clock):
    _, refund = pending_refund(merchant_a, sandbox_wire)

    clock(hours=1)
    assert "sandbox" not in reconcile_due()
    assert refund_reconcile(refund_id=refund.pk) == "not reconciled"

    assert Refund.objects.get(pk=refund.pk).status == "pending"


@pytest.mark.postgres
@pytest.mark.usefixtures("reconciled_sandbox")
def test_two_concurrent_runs_settle_the_refund_once(merchant_a, sandbox_wire, clock):
    payment, refund = pending_refund(merchant_a, sandbox_wire)
    clock(minutes=2)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            outcomes.append(refund_reconcile(refund_id=refund.pk))
        except BaseException as exc:  # reported below, never swallowed
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert outcomes.count("applied refund.succeeded") == 1
    assert set(outcomes) <= {"applied refund.succeeded", "not due", "settled"}
    payment.refresh_from_db()
    assert payment.refunded_minor == 4000
    assert refund_events(refund) == ["refund.created", "refund.succeeded"]
