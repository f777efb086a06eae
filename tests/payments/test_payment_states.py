"""The payment state machine of DESIGN section 4, as a full matrix."""

import pytest
from django_fsm import TransitionNotAllowed, can_proceed

from payments.models import Payment, PaymentStatus

S = PaymentStatus
TRANSITIONS = [
    "hold",
    "release",
    "submit",
    "require_action",
    "succeed",
    "fail",
    "cancel",
    "retry",
    "refund_partial",
    "refund_full",
    "reverse",
]
# For every state, exactly the transitions DESIGN section 4 allows.
ALLOWED = {
    S.CREATED: {"hold", "submit", "cancel"},
    S.ON_HOLD: {"release", "fail", "cancel"},
    S.PROCESSING: {"require_action", "succeed", "fail"},
    S.REQUIRES_ACTION: {"succeed", "fail", "cancel"},
    S.SUCCEEDED: {"refund_partial", "refund_full", "reverse"},
    S.FAILED: {"retry"},  # only when the failure is retryable
    S.CANCELLED: set(),
    S.PARTIALLY_REFUNDED: {"refund_partial", "refund_full", "reverse"},
    S.REFUNDED: set(),
    S.REVERSED: set(),
}
TARGETS = {
    "hold": S.ON_HOLD,
    "release": S.CREATED,
    "submit": S.PROCESSING,
    "require_action": S.REQUIRES_ACTION,
    "succeed": S.SUCCEEDED,
    "fail": S.FAILED,
    "cancel": S.CANCELLED,
    "retry": S.PROCESSING,
    "refund_partial": S.PARTIALLY_REFUNDED,
    "refund_full": S.REFUNDED,
    "reverse": S.REVERSED,
}


def payment_in(status: str, **fields) -> Payment:
    payment = Payment(amount_minor=1000, currency="USD", **fields)
    payment.__dict__["status"] = status  # the field is protected: set it as a loaded row would be
    return payment


def test_matrix_covers_every_state():
    assert set(ALLOWED) == set(S.values)


@pytest.mark.parametrize("state", S.values)
@pytest.mark.parametrize("name", TRANSITIONS)
def test_transition_matrix(state, name):
    payment = payment_in(state, failure_retryable=True)
    assert can_proceed(getattr(payment, name)) is (name in ALLOWED[state])


@pytest.mark.parametrize("state", S.values)
@pytest.mark.parametrize("name", TRANSITIONS)
def test_disallowed_transitions_raise_and_change_nothing(state, name):
    payment = payment_in(state, failure_retryable=True)
    if name in ALLOWED[state]:
        return
    with pytest.raises(TransitionNotAllowed):
        getattr(payment, name)(*([100] if name.startswith("refund") else []))
    assert payment.status == state


def test_allowed_transitions_reach_their_target():
    for state, names in ALLOWED.items():
        for name in names:
            payment = payment_in(state, failure_retryable=True)
            args = {"refund_partial": [100], "refund_full": [1000]}.get(name, [])
            getattr(payment, name)(*args)
            assert payment.status == TARGETS[name], (state, name)


def test_retry_needs_a_retryable_failure():
    assert not can_proceed(payment_in(S.FAILED, failure_retryable=False).retry)
    assert can_proceed(payment_in(S.FAILED, failure_retryable=True).retry)


def test_status_cannot_be_assigned_directly():
    payment = Payment.objects.model(amount_minor=1, currency="USD")
    with pytest.raises(AttributeError):
        payment.status = S.SUCCEEDED


def test_refund_transitions_guard_the_amount():
    payment = payment_in(S.SUCCEEDED)
    with pytest.raises(ValueError):
        payment.refund_partial(1000)  # would refund everything: that is refund_full
    assert payment.status == S.SUCCEEDED
    with pytest.raises(ValueError):
        payment.refund_full(999)
    payment.refund_partial(400)
    payment.refund_full(600)
    assert payment.status == S.REFUNDED and payment.refunded_minor == 1000


def test_fail_records_code_message_and_retryability():
    payment = payment_in(S.PROCESSING)
    payment.fail(code="processing_error", message="try again", retryable=True)
    assert (payment.failure_code, payment.failure_message, payment.failure_retryable) == (
        "processing_error",
        "try again",
        True,
    )
