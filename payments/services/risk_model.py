"""Fit k and theta of the risk model (DESIGN section 11) by maximum likelihood from reviewed history.

The labelled history is every payment with a stored risk score that was held
and then reviewed: released by a reviewer (an Event `payment.released`) is
label 0, the payment should have gone through; rejected after review (failed
with `rejected_after_review`) is label 1, it should not. A payment rejected
after a release is labelled by its rejection.

P(r) = 1 / (1 + exp(-(a + b r))) is fitted by payments/logistic.py
(Newton-Raphson on the log-likelihood), then k = b and theta = -a / b.
A fit is refused, and nothing saved, when the history is too small,
holds one class only, is perfectly separated (the maximum-likelihood
estimate does not exist), does not converge, or gives k <= 0 (riskier
payments would be held less).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from payments.logistic import FitError, logistic_fit
from payments.models import Event, Payment, PaymentStatus, RiskModel
from payments.risk import (
    PARAMETERS_CACHE_KEY,
    PARAMETERS_TTL,
    hold_probability,
    risk_parameters,
    shared_cache,
)

REJECTED_AFTER_REVIEW = "rejected_after_review"  # the failure code of payment_reject
PARAMETER_LIMIT = 1e6  # RiskModel stores k and theta with 6 integer digits


class RiskModelFitError(FitError):
    """The history does not support a fit; nothing was saved."""


@dataclass(frozen=True)
class LabelledPayment:
    score: float
    label: int  # 1: should not have gone through
    threshold: Decimal  # the merchant's hold threshold


@dataclass(frozen=True)
class RiskFit:
    samples: int
    positives: int
    k: float
    theta: float
    log_likelihood: float
    iterations: int
    previous: tuple[float, float]  # (k, theta) in force before the fit
    held_share: float  # of the labelled payments, held under the new parameters
    previous_held_share: float  # the same under the previous ones
    saved: RiskModel | None  # None on a dry run


def reviewed_history() -> list[LabelledPayment]:
    """The labelled history, in one query."""
    released = Event.objects.filter(payment=OuterRef("pk"), type="payment.released")
    rejected = Q(status=PaymentStatus.FAILED, failure_code=REJECTED_AFTER_REVIEW)
    rows = (
        Payment.objects.filter(risk_score__isnull=False)
        .filter(rejected | Exists(released))
        .values_list("risk_score", "status", "failure_code", "merchant__risk_threshold")
        .order_by("id")
    )
    return [
        LabelledPayment(
            score=float(score),
            label=int(status == PaymentStatus.FAILED and code == REJECTED_AFTER_REVIEW),
            threshold=threshold,
        )
        for score, status, code, threshold in rows.iterator(chunk_size=5000)
    ]


def _held_share(history: list[LabelledPayment], k: float, theta: float) -> float:
    held = sum(hold_probability(p.score, k, theta) > p.threshold for p in history)
    return held / len(history)


def risk_model_fit(*, min_samples: int = 50, dry_run: bool = False, fitted_by: str = "") -> RiskFit:
    """Fit k and theta from the reviewed history and, unless dry_run, make them the model in force.

    The new RiskModel row is used by every process within PARAMETERS_TTL
    seconds: this process's cache entry is replaced when the row commits.
    Raise RiskModelFitError, with nothing saved, when the history does not
    support a fit.
    """
    history = reviewed_history()
    samples = len(history)
    positives = sum(p.label for p in history)
    if samples < min_samples:
        raise RiskModelFitError(
            f"Only {samples} reviewed payments with a risk score ({positives} rejected); "
            f"the fit needs at least {min_samples}."
        )
    try:
        a, b, ll, iterations = logistic_fit([p.score for p in history], [p.label for p in history])
    except FitError as exc:
        raise RiskModelFitError(f"Reviewed history: {exc}") from exc
    k, theta = b, -a / b
    if not k > 0:
        raise RiskModelFitError(
            f"The fit gives k = {k:.6f} <= 0: rejected payments do not score higher than released ones."
        )
    k_stored, theta_stored = Decimal(f"{k:.6f}"), Decimal(f"{theta:.6f}")
    if k_stored <= 0 or abs(k) >= PARAMETER_LIMIT or abs(theta) >= PARAMETER_LIMIT:
        raise RiskModelFitError(f"The fit gives k = {k:.6g}, theta = {theta:.6g}: outside what can be used.")
    previous = risk_parameters()
    saved = None
    if not dry_run:
        with transaction.atomic():
            saved = RiskModel.objects.create(
                k=k_stored,
                theta=theta_stored,
                samples=samples,
                positives=positives,
                log_likelihood=Decimal(f"{ll:.6f}"),
                fitted_by=fitted_by[:200],
            )
            parameters = (float(k_stored), float(theta_stored))
            transaction.on_commit(lambda: shared_cache.set(PARAMETERS_CACHE_KEY, parameters, PARAMETERS_TTL))
    return RiskFit(
        samples=samples,
        positives=positives,
        k=float(k_stored),
        theta=float(theta_stored),
        log_likelihood=ll,
        iterations=iterations,
        previous=previous,
        held_share=_held_share(history, float(k_stored), float(theta_stored)),
        previous_held_share=_held_share(history, *previous),
        saved=saved,
    )
