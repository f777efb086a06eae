"""The hot path of POST /payments written with fewer statements: same rows, same events, same guarantees."""

import math
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Avg, Count, Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from merchants.crypto import field_hash
from payments.gateways import GatewayResult, Outcome
from payments.models import Event, GatewayAttempt, Payment, SandboxNotice, SandboxOperation
from payments.risk import HISTORY, risk_score
from payments.services.lifecycle.outcomes import answer_apply
from payments.services.payments import payment_create
from tests.factories import payment_input

pytestmark = pytest.mark.django_db(transaction=True)


def reference_score(payment) -> float:
    """The risk score as the ORM aggregate computed it before the SQL was written by hand."""
    since = timezone.now() - timedelta(hours=1)
    recent = (
        Payment.objects.filter(merchant_id=payment.merchant_id)
        .exclude(pk=payment.pk)
        .order_by("-created_at", "-id")[:HISTORY]
    )
    stats = recent.aggregate(
        usual=Avg("amount_minor", filter=Q(currency=payment.currency)),
        known=Count("id", filter=Q(beneficiary_account_hash=field_hash(payment.beneficiary_account))),
        last_hour=Count("id", filter=Q(created_at__gte=since)),
    )
    usual = stats["usual"]
    amount_ratio = math.log10(max(payment.amount_minor / usual, 1.0)) if usual else 0.0
    return 2.5 * amount_ratio + 1.0 * (not stats["known"]) + 0.5 * math.log10(1 + stats["last_hour"])


def create(merchant, account="4000000000001234", **overrides):
    return payment_create(merchant=merchant, data=payment_input(beneficiary_account=account, **overrides))


def test_risk_score_matches_the_orm_aggregate(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    new = Payment(merchant=merchant_a, amount_minor=12_345, currency="EUR", beneficiary_account="DE0001")
    assert risk_score(new) == reference_score(new)  # no history
    for i, (amount, currency) in enumerate([(1000, "EUR"), (2501, "EUR"), (999, "USD"), (77, "EUR")]):
        create(
            merchant_a,
            account=f"DE000{i}",
            amount=f"{amount / 100:.2f}",
            currency=currency,
            reference=f"R{i}",
        )
    Payment.objects.filter(beneficiary_account_hash=field_hash("DE0002")).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    for account, amount in [("DE0001", 12_345), ("XX9999", 10**9), ("DE0003", 1)]:
        new = Payment(merchant=merchant_a, amount_minor=amount, currency="EUR", beneficiary_account=account)
        assert risk_score(new) == pytest.approx(reference_score(new), rel=1e-12)
    saved = Payment.objects.filter(merchant=merchant_a).first()
    assert risk_score(saved) == pytest.approx(reference_score(saved), rel=1e-12)  # itself excluded


def test_created_then_processing_events_with_their_snapshots(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    payment = create(merchant_a)
    events = list(Event.objects.filter(payment=payment))
    assert [e.type for e in events] == ["payment.created", "payment.processing"]
    assert [e.data["object"]["status"] for e in events] == ["created", "processing"]
    assert events[0].data["object"]["id"] == payment.public_id
    assert events[0].created_at <= events[1].created_at
    payment.refresh_from_db()
    assert payment.status == "processing" and payment.gateway_reference.startswith("sbx_")
    attempt = GatewayAttempt.objects.get(payment=payment)
    assert (attempt.status, attempt.outcome, attempt.calls) == ("answered", "processing", 1)
    assert attempt.gateway_reference == payment.gateway_reference
    assert attempt.response["gateway_reference"] == payment.gateway_reference


def test_held_payment_is_written_held_with_its_two_events(merchant_a, sandbox_wire):
    merchant_a.risk_threshold = 0
    merchant_a.save()
    payment = create(merchant_a)
    assert Payment.objects.get(pk=payment.pk).status == "on_hold"
    events = list(Event.objects.filter(payment=payment).values_list("type", "actor", "data__object__status"))
    assert [(t, s) for t, _a, s in events] == [("payment.created", "created"), ("payment.on_hold", "on_hold")]
    assert events[1][1] == "system:risk"
    assert not GatewayAttempt.objects.filter(payment=payment).exists()


def _pending(merchant):
    """A processing payment whose attempt is still pending (as between the claim and the answer)."""
    payment = create(merchant, reference=f"R-{Payment.objects.count()}")
    attempt = GatewayAttempt.objects.get(payment=payment)
    GatewayAttempt.objects.filter(pk=attempt.pk).update(status="pending", outcome="", gateway_reference="")
    Payment.objects.filter(pk=payment.pk).update(gateway_reference="")
    return Payment.objects.get(pk=payment.pk), attempt


def test_answer_without_transition_is_applied_once(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    payment, attempt = _pending(merchant_a)
    answer = GatewayResult(Outcome.PROCESSING, gateway_reference="gw_1", raw={"outcome": "processing"})
    applied = answer_apply(attempt=attempt, result=answer)
    assert applied.pk == payment.pk and applied.gateway_reference == "gw_1"
    assert applied.status == "processing" and applied.updated_at >= payment.updated_at
    assert applied.metadata == payment.metadata and applied.risk_probability == payment.risk_probability
    attempt.refresh_from_db()
    assert (attempt.status, attempt.outcome, attempt.gateway_reference, attempt.error) == (
        "answered",
        "processing",
        "gw_1",
        "",
    )
    assert attempt.response == {"outcome": "processing"}
    # A second caller (a resumed worker) with the same answer changes nothing.
    again = GatewayResult(Outcome.PROCESSING, gateway_reference="gw_2", raw={})
    assert answer_apply(attempt=attempt, result=again) is None
    assert Payment.objects.get(pk=payment.pk).gateway_reference == "gw_1"
    assert GatewayAttempt.objects.get(pk=attempt.pk).gateway_reference == "gw_1"


def test_answer_keeps_an_existing_reference_and_returns_the_payment_as_it_is(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    payment, attempt = _pending(merchant_a)
    # A callback got there first: the payment moved on and has its reference.
    Payment.objects.filter(pk=payment.pk).update(status="succeeded", gateway_reference="gw_cb")
    answer = GatewayResult(Outcome.PROCESSING, gateway_reference="gw_1", raw={})
    applied = answer_apply(attempt=attempt, result=answer)
    assert (applied.status, applied.gateway_reference) == ("succeeded", "gw_cb")
    assert GatewayAttempt.objects.get(pk=attempt.pk).status == "answered"
    assert not Event.objects.filter(payment=payment, type="payment.succeeded").exists()


def test_answer_without_reference_leaves_the_payment_alone(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    payment, attempt = _pending(merchant_a)
    applied = answer_apply(
        attempt=attempt, result=GatewayResult(Outcome.PROCESSING, gateway_reference="", raw={})
    )
    assert applied.gateway_reference == "" and applied.updated_at == payment.updated_at


def test_sandbox_records_each_key_once_with_its_notices(merchant_a, sandbox_wire):
    sandbox_wire.hold = True
    payment = create(merchant_a, account="4000000000000077")
    op = SandboxOperation.objects.get(payment_reference=payment.public_id)
    notices = list(SandboxNotice.objects.filter(operation=op))
    assert [(n.seq, n.type) for n in notices] == [(0, "payment.succeeded"), (1, "payment.reversed")]
    assert all(n.data["attempt_key"] == op.key for n in notices)
    # The same key again is answered from the record, nothing new is written.
    from payments.gateways import get_gateway

    attempt = GatewayAttempt.objects.get(payment=payment)
    result = get_gateway("sandbox").submit_payment(payment, attempt)
    assert result.gateway_reference == op.gateway_reference
    assert SandboxOperation.objects.count() == 1 and SandboxNotice.objects.count() == 2


def test_statements_of_a_real_time_payment(merchant_a, sandbox_wire):
    """Guards the statement count of the hot path (PostgreSQL: no BEGIN/COMMIT around the answer).

    The in-process sandbox's own record (a transaction of its own, the gateway's side) is left out.
    """
    sandbox_wire.hold = True
    create(merchant_a, reference="warm-up")
    with CaptureQueriesContext(connection) as ctx:
        create(merchant_a)
    statements = [q["sql"] for q in ctx.captured_queries]
    if connection.vendor == "postgresql":
        # Ours: one transaction (create + claim), then the answer without one. The sandbox's own
        # record (the gateway's side) is written in a transaction of its own in between.
        sandbox = next(i for i, sql in enumerate(statements) if "payments_sandbox" in sql)
        sandbox_commit = statements.index("COMMIT", sandbox)
        assert statements[sandbox - 1] == "BEGIN"
        assert statements[: sandbox - 1].count("BEGIN") == 1
        assert "BEGIN" not in statements[sandbox_commit + 1 :], statements
    status_updates = [s for s in statements if s.startswith('UPDATE "payments_payment" SET "status"')]
    assert not status_updates  # inserted already claimed
    if connection.vendor == "postgresql":
        assert not any("FOR UPDATE" in s and "WITH p AS" not in s for s in statements)
