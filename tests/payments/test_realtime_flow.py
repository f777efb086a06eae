"""Real-time payments end to end: service -> sandbox -> signed callback -> real callback view -> worker."""

import pytest

from payments.models import Event, GatewayAttempt, GatewayCallback, Payment, SandboxOperation
from payments.services.payments import PaymentStateError, payment_cancel, payment_create, payment_retry
from payments.services.refunds import refund_create
from payments.validation import PaymentInvalid
from tests.factories import payment_input

pytestmark = pytest.mark.django_db(transaction=True)


def create(merchant, account, **overrides):
    return payment_create(merchant=merchant, data=payment_input(beneficiary_account=account, **overrides))


def event_types(payment):
    return list(Event.objects.filter(payment=payment).values_list("type", flat=True))


def test_ordinary_account_succeeds_through_the_callback(merchant_a, sandbox_wire):
    payment = create(merchant_a, "4000000000001234")
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.gateway_reference.startswith("sbx_")
    assert event_types(payment) == ["payment.created", "payment.processing", "payment.succeeded"]
    assert [m["type"] for m in sandbox_wire.sent] == ["payment.succeeded"]
    callback = GatewayCallback.objects.get()
    assert callback.status == "applied" and callback.payment_id == payment.pk


def test_payment_is_processing_until_the_callback_arrives(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    payment = create(merchant_a, "4000000000001234")
    assert payment.status == "processing"
    assert GatewayAttempt.objects.get(payment=payment).status == "answered"


def test_insufficient_funds_fails_with_its_code(merchant_a, sandbox_wire):
    payment = create(merchant_a, "4000000000000051")
    payment.refresh_from_db()
    assert payment.status == "failed"
    assert payment.failure_code == "insufficient_funds"
    assert payment.failure_message
    assert not payment.failure_retryable


def test_declined_card(merchant_a, sandbox_wire):
    payment = create(merchant_a, "4000000000000002")
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("failed", "card_declined")


def test_succeeds_then_is_reversed(merchant_a, sandbox_wire):
    payment = create(merchant_a, "4000000000000077")
    payment.refresh_from_db()
    assert payment.status == "reversed"
    assert event_types(payment)[-2:] == ["payment.succeeded", "payment.reversed"]


def test_requires_action_then_succeeds(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    payment = create(merchant_a, "4000000000003155")
    assert payment.status == "requires_action"
    assert payment.next_action["type"] == "redirect_to_url"
    sandbox_wire.hold = False
    from payments.gateways.sandbox import deliver_notices

    deliver_notices(SandboxOperation.objects.get().pk)
    payment.refresh_from_db()
    assert payment.status == "succeeded" and payment.next_action is None


def test_retryable_error_can_be_retried_with_a_new_attempt(merchant_a, sandbox_wire):
    payment = create(merchant_a, "4000000000000119")
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code, payment.failure_retryable) == (
        "failed",
        "processing_error",
        True,
    )
    payment = payment_retry(payment=payment)
    assert payment.status == "succeeded"
    keys = list(payment.attempts.order_by("number").values_list("idempotency_key", flat=True))
    assert keys == [f"{payment.public_id}-1", f"{payment.public_id}-2"]
    assert SandboxOperation.objects.count() == 2


def test_non_retryable_failure_cannot_be_retried(merchant_a, sandbox_wire):
    payment = create(merchant_a, "4000000000000051")
    payment.refresh_from_db()
    with pytest.raises(PaymentStateError):
        payment_retry(payment=payment)


def test_partial_then_full_refund(merchant_a, sandbox_wire):
    payment = create(merchant_a, "4000000000001234", amount="100.00")
    payment.refresh_from_db()
    refund_create(payment=payment, amount="30.00")
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == ("partially_refunded", "30.00")
    refund = refund_create(payment=payment)  # the rest
    assert refund.amount_minor == 7000 and refund.status == "succeeded"
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_minor) == ("refunded", 10000)
    with pytest.raises(PaymentStateError):
        refund_create(payment=payment, amount="0.01")


def test_refund_above_the_captured_amount_is_refused(merchant_a, sandbox_wire):
    payment = create(merchant_a, "4000000000001234", amount="10.00")
    payment.refresh_from_db()
    with pytest.raises(PaymentInvalid) as exc:
        refund_create(payment=payment, amount="10.01")
    assert exc.value.errors[0].code == "exceeds_refundable"
    assert payment.refunds.count() == 0


def test_cancel_only_before_submission(merchant_a, sandbox_wire):
    held = payment_create(merchant=merchant_a, data=payment_input(), submit=False)
    assert payment_cancel(payment=held).status == "cancelled"
    done = create(merchant_a, "4000000000001234", reference="ORDER-2")
    with pytest.raises(PaymentStateError):
        payment_cancel(payment=done)


def test_duplicate_reference_is_a_field_error(merchant_a, sandbox_wire):
    create(merchant_a, "4000000000001234")
    with pytest.raises(PaymentInvalid) as exc:
        create(merchant_a, "4000000000001234")
    assert exc.value.errors[0].code == "duplicate_reference"
    assert Payment.objects.count() == 1


def test_same_reference_is_allowed_for_another_merchant(merchant_a, merchant_b, sandbox_wire):
    create(merchant_a, "4000000000001234")
    create(merchant_b, "4000000000001234")
    assert Payment.objects.count() == 2


def test_unusual_payment_is_held_for_review(merchant_a, sandbox_wire):
    for i in range(5):
        create(merchant_a, f"400000000000{1000 + i}", reference=f"R{i}", amount="10.00")
    held = create(merchant_a, "GB29NWBK60161331926819", reference="BIG", amount="900000.00")
    assert held.status == "on_hold"
    assert held.attempts.count() == 0
    assert event_types(held) == ["payment.created", "payment.on_hold"]
