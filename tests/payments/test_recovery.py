"""Crash recovery: the database holds every pending unit of work and the sweeper resumes it."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from payments.gateways import GatewayError
from payments.gateways.sandbox import SandboxGateway
from payments.models import GatewayAttempt, GatewayCallback, Payment, SandboxNotice, SandboxOperation
from payments.services import payments as services
from payments.services.sweeper import sweep
from tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db(transaction=True)


def later(minutes=5):
    return timezone.now() + timedelta(minutes=minutes)


def test_worker_killed_after_the_gateway_call_never_pays_twice(merchant_a, sandbox_wire):
    """Claim, call the gateway, die before recording the answer; the rerun reuses the attempt key."""
    payment = PaymentFactory(merchant=merchant_a)
    attempt = services.payment_claim(payment_id=payment.pk, actor="test")
    sandbox_wire.hold = True
    SandboxGateway().submit_payment(attempt.payment, attempt)  # the call went out...
    # ...and the worker died here: nothing recorded on our side.
    assert GatewayAttempt.objects.get(pk=attempt.pk).status == "pending"
    assert SandboxOperation.objects.filter(key=attempt.idempotency_key).count() == 1

    sandbox_wire.hold = False
    counts = sweep(now=later())
    assert counts["attempts"] == 1

    attempt.refresh_from_db()
    assert attempt.status == "answered" and attempt.calls == 2
    assert SandboxOperation.objects.filter(payment_reference=payment.public_id).count() == 1
    assert GatewayAttempt.objects.filter(payment=payment).count() == 1
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"


def test_worker_killed_before_the_gateway_call_submits_once_on_resume(merchant_a, sandbox_wire):
    payment = PaymentFactory(merchant=merchant_a)
    attempt = services.payment_claim(payment_id=payment.pk, actor="test")
    assert not SandboxOperation.objects.exists()
    sweep(now=later())
    assert SandboxOperation.objects.get().key == attempt.idempotency_key
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"


def test_gateway_error_leaves_the_attempt_for_the_sweeper(merchant_a, sandbox_wire):
    payment = PaymentFactory(merchant=merchant_a)
    with mock.patch.object(SandboxGateway, "submit_payment", autospec=True, side_effect=GatewayError("down")):
        services.payment_submit(payment_id=payment.pk)
    attempt = GatewayAttempt.objects.get(payment=payment)
    assert attempt.status == "pending" and attempt.error == "down"
    assert Payment.objects.get(pk=payment.pk).status == "processing"
    sweep(now=later())
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"


def test_attempt_dead_lettered_after_max_calls(merchant_a, sandbox_wire, settings):
    settings.PAYDESK_MAX_ATTEMPTS = 2
    payment = PaymentFactory(merchant=merchant_a)
    with mock.patch.object(SandboxGateway, "submit_payment", autospec=True, side_effect=GatewayError("down")):
        services.payment_submit(payment_id=payment.pk)
        sweep(now=later(5))
        sweep(now=later(10))
    attempt = GatewayAttempt.objects.get(payment=payment)
    assert attempt.status == "dead" and attempt.calls == 3


def test_resume_claim_is_exclusive(merchant_a, sandbox_wire):
    payment = PaymentFactory(merchant=merchant_a)
    attempt = services.payment_claim(payment_id=payment.pk, actor="test")
    stale = later()
    assert services.attempt_resume(attempt_id=attempt.pk, stale_before=stale) is True
    assert services.attempt_resume(attempt_id=attempt.pk, stale_before=stale) is False


def test_lost_callback_task_is_reenqueued(merchant_a, sandbox_wire, settings):
    settings.PAYDESK_RUN_TASKS_INLINE = False
    with mock.patch("payments.queue.async_task", autospec=True) as queued:
        payment = services.payment_create(merchant=merchant_a, data=_data())
        # The sandbox's delivery task was queued but never ran (broker lost it).
        assert queued.call_count >= 1
    settings.PAYDESK_RUN_TASKS_INLINE = True
    assert payment.status == "processing"
    counts = sweep(now=later())
    assert counts["sandbox_notices"] == 1
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"


def test_stored_but_unapplied_callback_is_applied_by_the_sweeper(merchant_a, sandbox_wire, settings):
    sandbox_wire.hold = True
    payment = services.payment_create(merchant=merchant_a, data=_data())
    sandbox_wire.hold = False
    settings.PAYDESK_RUN_TASKS_INLINE = False
    with mock.patch("payments.queue.async_task", autospec=True):
        from payments.gateways.sandbox import deliver_notices

        deliver_notices(SandboxNotice.objects.get().operation_id)
    settings.PAYDESK_RUN_TASKS_INLINE = True
    assert GatewayCallback.objects.get().status == "received"
    sweep(now=later())
    assert GatewayCallback.objects.get().status == "applied"
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"


def test_broker_failure_does_not_fail_the_request(merchant_a, sandbox_wire, settings):
    settings.PAYDESK_RUN_TASKS_INLINE = False
    with mock.patch("payments.queue.async_task", autospec=True, side_effect=ConnectionError("broker down")):
        payment = services.payment_create(merchant=merchant_a, data=_data())
    assert payment.status == "processing"


def _data():
    from tests.factories import payment_input

    return payment_input()
