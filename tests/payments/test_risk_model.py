"""`manage.py fit_risk_model`: k and theta fitted by maximum likelihood from reviewed history (DESIGN 11)."""

import math
import random
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments.logistic import logistic_fit
from payments.models import Event, Payment, PaymentStatus, RiskModel
from payments.risk import (
    DEFAULT_K,
    DEFAULT_THETA,
    PARAMETERS_CACHE_KEY,
    hold_probability,
    risk_parameters,
    shared_cache,
)
from payments.services.payments import payment_create, payment_reject, payment_release
from payments.services.risk_model import RiskModelFitError, reviewed_history, risk_model_fit
from tests.factories import payment_input

pytestmark = pytest.mark.django_db

TRUE_K, TRUE_THETA = 1.5, 5.0


@pytest.fixture(autouse=True)
def _fresh_parameters():
    """Each test starts and ends with no cached parameters (the cache outlives the test database)."""
    shared_cache.delete(PARAMETERS_CACHE_KEY)
    yield
    shared_cache.delete(PARAMETERS_CACHE_KEY)


def draws(n: int, k: float = TRUE_K, theta: float = TRUE_THETA, seed: int = 7) -> list[tuple[float, int]]:
    """n (score, label) pairs with label ~ Bernoulli(1 / (1 + exp(-k (score - theta))))."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        score = rng.uniform(0.0, 10.0)
        out.append((score, int(rng.random() < 1.0 / (1.0 + math.exp(-k * (score - theta))))))
    return out


def reviewed(merchant, pairs: list[tuple[float, int]], prefix: str = "H") -> None:
    """Write reviewed payments: label 1 rejected after review, label 0 released (then succeeded)."""
    payments = Payment.objects.bulk_create(
        Payment(
            merchant=merchant,
            reference=f"{prefix}-{i}",
            amount_minor=1000,
            currency="USD",
            method="card",
            beneficiary_name="Ada Lovelace",
            beneficiary_account="4000000000001234",
            gateway="sandbox",
            risk_score=Decimal(f"{score:.4f}"),
            status=PaymentStatus.FAILED if label else PaymentStatus.SUCCEEDED,
            failure_code="rejected_after_review" if label else "",
        )
        for i, (score, label) in enumerate(pairs)
    )
    Event.objects.bulk_create(
        Event(merchant=merchant, payment=p, type="payment.released")
        for p, (_score, label) in zip(payments, pairs, strict=True)
        if not label
    )


def test_the_fit_recovers_known_parameters(merchant_a):
    reviewed(merchant_a, draws(2000))
    fit = risk_model_fit(min_samples=50, fitted_by="test")
    assert fit.k == pytest.approx(TRUE_K, abs=0.2)
    assert fit.theta == pytest.approx(TRUE_THETA, abs=0.15)
    assert fit.samples == 2000
    saved = RiskModel.objects.get()
    assert (saved.k, saved.theta, saved.samples, saved.positives) == (
        Decimal(f"{fit.k:.6f}"),
        Decimal(f"{fit.theta:.6f}"),
        2000,
        fit.positives,
    )
    assert saved.fitted_by == "test"
    assert float(saved.log_likelihood) == pytest.approx(fit.log_likelihood, abs=1e-5)


def test_the_estimate_is_a_maximum():
    pairs = draws(500, seed=11)
    xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
    a, b, ll, _iterations = logistic_fit(xs, ys)

    def ll_at(a_, b_):
        return sum(y * (a_ + b_ * x) - math.log1p(math.exp(a_ + b_ * x)) for x, y in pairs)

    assert ll == pytest.approx(ll_at(a, b), rel=1e-12)
    for da, db in [(0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)]:
        assert ll_at(a + da, b + db) < ll


def test_only_reviewed_payments_with_a_score_are_labelled(merchant_a, merchant_b):
    reviewed(merchant_a, [(7.0, 1), (2.0, 0)])
    merchant_b.risk_threshold = Decimal("0.5")
    merchant_b.save()
    reviewed(merchant_b, [(6.0, 1)], prefix="B")
    unscored = Payment.objects.create(
        merchant=merchant_a, reference="no-score", amount_minor=1, currency="USD", method="card"
    )
    Event.objects.create(merchant=merchant_a, payment=unscored, type="payment.released")
    Payment.objects.create(  # held, not yet reviewed
        merchant=merchant_a, reference="held", amount_minor=1, currency="USD", method="card",
        risk_score=Decimal("9"), status=PaymentStatus.ON_HOLD,
    )  # fmt: skip
    Payment.objects.create(  # declined by the gateway, never reviewed
        merchant=merchant_a, reference="declined", amount_minor=1, currency="USD", method="card",
        risk_score=Decimal("9"), status=PaymentStatus.FAILED, failure_code="card_declined",
    )  # fmt: skip
    with CaptureQueriesContext(connection) as ctx:
        history = reviewed_history()
    assert len(ctx.captured_queries) == 1
    assert sorted((p.score, p.label, p.threshold) for p in history) == [
        (2.0, 0, Decimal("0.950")),
        (6.0, 1, Decimal("0.500")),
        (7.0, 1, Decimal("0.950")),
    ]


def test_labels_come_from_the_review_services(merchant_a, alice, sandbox_wire):
    merchant_a.risk_threshold = 0
    merchant_a.save()
    first = payment_create(merchant=merchant_a, data=payment_input(reference="R-1"))
    second = payment_create(merchant=merchant_a, data=payment_input(reference="R-2", amount="900.00"))
    assert first.status == second.status == PaymentStatus.ON_HOLD
    assert first.risk_score is not None and second.risk_score is not None
    assert first.risk_probability == hold_probability(float(first.risk_score))
    payment_release(payment=first, user=alice)
    payment_reject(payment=second, user=alice)
    labels = {p.score: p.label for p in reviewed_history()}
    assert labels == {float(first.risk_score): 0, float(second.risk_score): 1}


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (draws(49), "needs at least 50"),
        ([(s, 0) for s, _ in draws(80)], "Only one class"),
        ([(s, 1) for s, _ in draws(80)], "Only one class"),
        ([(s, int(s > 5.0)) for s, _ in draws(80)], "perfectly separated"),
        ([(s, int(s < 5.0)) for s, _ in draws(80)], "perfectly separated"),
        ([(s, int(s < 5.0)) for s, _ in draws(80)] + [(6.0, 1)], "k = "),
    ],
    ids=["too-few", "all-released", "all-rejected", "separated", "separated-backwards", "negative-k"],
)
def test_unfit_history_is_refused_and_nothing_saved(merchant_a, pairs, message):
    reviewed(merchant_a, pairs)
    with pytest.raises(RiskModelFitError, match=message):
        risk_model_fit(min_samples=50)
    with pytest.raises(CommandError, match="Nothing saved"):
        call_command("fit_risk_model", stdout=StringIO())
    assert not RiskModel.objects.exists()
    assert risk_parameters() == (DEFAULT_K, DEFAULT_THETA)


def test_a_fit_is_in_force_for_new_payments(merchant_a, sandbox_wire, django_capture_on_commit_callbacks):
    reviewed(merchant_a, draws(300, k=3.0, theta=2.0))
    assert hold_probability(2.0) == hold_probability(2.0, DEFAULT_K, DEFAULT_THETA)
    with django_capture_on_commit_callbacks(execute=True):
        fit = risk_model_fit()
    # This process's cached entry is replaced on commit; another process reads the row on expiry.
    assert shared_cache.get(PARAMETERS_CACHE_KEY) == (fit.k, fit.theta)
    assert hold_probability(2.0) == hold_probability(2.0, fit.k, fit.theta)
    shared_cache.delete(PARAMETERS_CACHE_KEY)
    assert risk_parameters() == (fit.k, fit.theta)
    assert hold_probability(2.0) != hold_probability(2.0, DEFAULT_K, DEFAULT_THETA)

    # Ten times the usual amount, to a new beneficiary: r is about 4.7, held only under the new model.
    data = payment_input(reference="after-fit", amount="100.00", beneficiary_account="4000000000009999")
    payment = payment_create(merchant=merchant_a, data=data)
    # The probability comes from the unrounded score; risk_score keeps it to 4 decimals.
    expected = 1.0 / (1.0 + math.exp(-fit.k * (float(payment.risk_score) - fit.theta)))
    assert float(payment.risk_probability) == pytest.approx(expected, abs=fit.k * 1e-4 + 1e-4)
    assert payment.status == PaymentStatus.ON_HOLD  # P > 0.95 under the new model, not the default
    assert hold_probability(float(payment.risk_score), DEFAULT_K, DEFAULT_THETA) < merchant_a.risk_threshold


def statements_of_a_payment(merchant, reference: str) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        payment_create(merchant=merchant, data=payment_input(reference=reference))
    return [q["sql"] for q in ctx.captured_queries]


def test_no_statement_is_added_to_payment_create(
    merchant_a, sandbox_wire, django_capture_on_commit_callbacks
):
    sandbox_wire.hold = True
    payment_create(merchant=merchant_a, data=payment_input(reference="warm-up"))
    before = statements_of_a_payment(merchant_a, "before")
    reviewed(merchant_a, draws(300))
    with django_capture_on_commit_callbacks(execute=True):
        risk_model_fit()
    after = statements_of_a_payment(merchant_a, "after")
    assert len(after) == len(before)
    assert not any("payments_riskmodel" in s for s in before + after)
    # Only an expired entry costs a read, once per PARAMETERS_TTL per process.
    shared_cache.delete(PARAMETERS_CACHE_KEY)
    cold = statements_of_a_payment(merchant_a, "cold")
    assert len(cold) == len(before) + 1
    assert sum("payments_riskmodel" in s for s in cold) == 1


def test_the_command_prints_the_fit_and_saves_it(merchant_a):
    reviewed(merchant_a, draws(400))
    out = StringIO()
    call_command("fit_risk_model", "--min-samples", "100", "--note", "ops: weekly fit", stdout=out)
    saved = RiskModel.objects.get()
    text = out.getvalue()
    assert f"samples: 400 ({saved.positives} rejected after review)" in text
    assert f"k: {saved.k:.6f} (was {DEFAULT_K:.6f})" in text
    assert f"theta: {saved.theta:.6f} (was {DEFAULT_THETA:.6f})" in text
    assert f"log-likelihood: {saved.log_likelihood:.6f}" in text
    assert "held on the reviewed history: " in text and "with the new parameters" in text
    assert f"Saved risk model {saved.pk}" in text
    assert saved.fitted_by == "ops: weekly fit"


def test_the_command_dry_run_saves_nothing(merchant_a):
    reviewed(merchant_a, draws(400))
    out = StringIO()
    call_command("fit_risk_model", "--dry-run", stdout=out)
    assert "dry run: nothing saved." in out.getvalue()
    assert "k: " in out.getvalue()
    assert not RiskModel.objects.exists()
    assert risk_parameters() == (DEFAULT_K, DEFAULT_THETA)


def test_the_command_refuses_too_few_samples(merchant_a):
    reviewed(merchant_a, draws(60))
    with pytest.raises(CommandError, match="needs at least 100"):
        call_command("fit_risk_model", "--min-samples", "100", stdout=StringIO())
    assert not RiskModel.objects.exists()
