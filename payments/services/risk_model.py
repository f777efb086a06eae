"""Fit k and theta of the risk model (DESIGN section 11) by maximum likelihood from reviewed history.

The labelled history is every payment with a stored risk score that was held
and then reviewed: released by a reviewer (an Event `payment.released`) is
label 0, the payment should have gone through; rejected after review (failed
with `rejected_after_review`) is label 1, it should not. A payment rejected
after a release is labelled by its rejection.

P(r) = 1 / (1 + exp(-(a + b r))) is fitted by Newton-Raphson on the
log-likelihood, in floats (statistics over scores, no money), then
k = b and theta = -a / b. A fit is refused, and nothing saved, when the
history is too small, holds one class only, is perfectly separated (the
maximum-likelihood estimate does not exist), does not converge, or gives
k <= 0 (riskier payments would be held less).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from payments.models import Event, Payment, PaymentStatus, RiskModel
from payments.risk import (
    PARAMETERS_CACHE_KEY,
    PARAMETERS_TTL,
    hold_probability,
    risk_parameters,
    shared_cache,
)

REJECTED_AFTER_REVIEW = "rejected_after_review"  # the failure code of payment_reject
MAX_ITERATIONS = 100
TOLERANCE = 1e-10  # on the Newton step of the standardised parameters
PARAMETER_LIMIT = 1e6  # RiskModel stores k and theta with 6 integer digits


class RiskModelFitError(Exception):
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


def _softplus(z: float) -> float:
    """log(1 + e^z) without overflow."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def log_likelihood(xs: list[float], ys: list[int], a: float, b: float) -> float:
    """Sum of y log P + (1 - y) log(1 - P) with P = 1 / (1 + exp(-(a + b x)))."""
    total = 0.0
    for x, y in zip(xs, ys, strict=True):
        z = a + b * x
        total += y * z - _softplus(z)
    return total


def logistic_fit(xs: list[float], ys: list[int]) -> tuple[float, float, float, int]:
    """Maximum-likelihood (a, b, log-likelihood, iterations) of P = 1 / (1 + exp(-(a + b x))).

    Newton-Raphson with step halving, on x standardised (mean 0, deviation 1)
    for conditioning, then mapped back. Raise RiskModelFitError on one class,
    constant x, perfect separation or no convergence in MAX_ITERATIONS.
    """
    n = len(xs)
    positives = sum(ys)
    if positives in (0, n):
        raise RiskModelFitError(
            f"Only one class in the reviewed history ({positives} rejected, {n - positives} released): "
            "the fit needs both."
        )
    negative_scores = [x for x, y in zip(xs, ys, strict=True) if not y]
    positive_scores = [x for x, y in zip(xs, ys, strict=True) if y]
    if max(negative_scores) <= min(positive_scores) or max(positive_scores) <= min(negative_scores):
        raise RiskModelFitError(
            "The reviewed history is perfectly separated by the score: the maximum-likelihood "
            "estimate does not exist (k would grow without bound). Review more payments near the threshold."
        )
    mean = sum(xs) / n
    deviation = math.sqrt(sum((x - mean) ** 2 for x in xs) / n)
    zs = [(x - mean) / deviation for x in xs]  # deviation > 0: the classes overlap, so x varies
    share = positives / n
    a, b = math.log(share / (1 - share)), 0.0
    current = log_likelihood(zs, ys, a, b)
    for iteration in range(1, MAX_ITERATIONS + 1):
        g0 = g1 = i00 = i01 = i11 = 0.0
        for z, y in zip(zs, ys, strict=True):
            p = _sigmoid(a + b * z)
            w = p * (1.0 - p)
            g0 += y - p
            g1 += (y - p) * z
            i00 += w
            i01 += w * z
            i11 += w * z * z
        determinant = i00 * i11 - i01 * i01
        if not determinant > 0 or not math.isfinite(determinant):
            break
        da = (i11 * g0 - i01 * g1) / determinant
        db = (i00 * g1 - i01 * g0) / determinant
        step = 1.0
        while step > 1e-12:
            candidate = log_likelihood(zs, ys, a + step * da, b + step * db)
            if candidate >= current - 1e-12 * abs(current):
                break
            step /= 2
        else:
            break
        a, b, current = a + step * da, b + step * db, candidate
        if max(abs(step * da), abs(step * db)) < TOLERANCE:
            # a + b (x - mean) / deviation = (a - b mean / deviation) + (b / deviation) x
            return a - b * mean / deviation, b / deviation, current, iteration
    raise RiskModelFitError(f"The fit did not converge in {MAX_ITERATIONS} Newton iterations.")


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
    a, b, ll, iterations = logistic_fit([p.score for p in history], [p.label for p in history])
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
