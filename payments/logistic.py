"""The seed's logistic curve `1 / (1 + e^{-k(r - θ)})`, fitted by maximum likelihood (DESIGN section 11).

Two kinds of data, one curve:

- `logistic_fit`: binary outcomes y at values x (logistic regression): the
  risk model P(r) (held payments released or rejected after review) and
  N(r), the chance that delivery attempt r to a webhook endpoint succeeds.
- `arrival_fit`: times until something happened, some of them censored
  (not happened yet after so long): C(r), the chance that a payment's
  callback has arrived r seconds after submission, is the distribution
  function of the delay; an observed delay contributes its density
  k·C(1 - C), a censored one its survival 1 - C.

Both maximise the log-likelihood by Newton-Raphson with step halving on x
standardised (mean 0, deviation 1), in floats (statistics over scores and
seconds, no money), and return (a, b) of `1 / (1 + exp(-(a + b x)))`:
k = b and θ = -a / b. Both log-likelihoods are concave in (a, b), so
Newton converges from the moment estimate when the maximum exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_ITERATIONS = 100
TOLERANCE = 1e-10  # on the Newton step of the standardised parameters


class FitError(Exception):
    """The data do not support a fit."""


@dataclass(frozen=True)
class Fit:
    k: float
    theta: float
    log_likelihood: float
    iterations: int

    def at(self, r: float) -> float:
        """The fitted curve at r."""
        return sigmoid(self.k * (r - self.theta))

    def inverse(self, p: float) -> float:
        """The r at which the curve reaches p (0 < p < 1)."""
        return self.theta + math.log(p / (1 - p)) / self.k


def softplus(z: float) -> float:
    """log(1 + e^z) without overflow."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def log_likelihood(xs: list[float], ys: list[int], a: float, b: float) -> float:
    """Sum of y log P + (1 - y) log(1 - P) with P = 1 / (1 + exp(-(a + b x)))."""
    total = 0.0
    for x, y in zip(xs, ys, strict=True):
        z = a + b * x
        total += y * z - softplus(z)
    return total


def _standardised(xs: list[float]) -> tuple[list[float], float, float]:
    n = len(xs)
    mean = sum(xs) / n
    deviation = math.sqrt(sum((x - mean) ** 2 for x in xs) / n)
    if not deviation > 0:
        raise FitError("Every value is the same: the curve's slope cannot be estimated.")
    return [(x - mean) / deviation for x in xs], mean, deviation


def _newton(
    objective, derivatives, a: float, b: float, *, positive_b: bool = False
) -> tuple[float, float, float, int]:
    """Maximise a concave objective(a, b) with derivatives(a, b) -> (g0, g1, h00, h01, h11)."""
    current = objective(a, b)
    for iteration in range(1, MAX_ITERATIONS + 1):
        g0, g1, h00, h01, h11 = derivatives(a, b)
        # Newton step: solve (-H) d = g; -H is positive definite when the maximum exists.
        i00, i01, i11 = -h00, -h01, -h11
        determinant = i00 * i11 - i01 * i01
        if not determinant > 0 or not math.isfinite(determinant):
            break
        da = (i11 * g0 - i01 * g1) / determinant
        db = (i00 * g1 - i01 * g0) / determinant
        step = 1.0
        while step > 1e-12:
            na, nb = a + step * da, b + step * db
            if not positive_b or nb > 0:
                candidate = objective(na, nb)
                if candidate >= current - 1e-12 * abs(current):
                    break
            step /= 2
        else:
            break
        a, b, current = na, nb, candidate
        if max(abs(step * da), abs(step * db)) < TOLERANCE:
            return a, b, current, iteration
    raise FitError(f"The fit did not converge in {MAX_ITERATIONS} Newton iterations.")


def logistic_fit(xs: list[float], ys: list[int]) -> tuple[float, float, float, int]:
    """Maximum-likelihood (a, b, log-likelihood, iterations) of P(y=1 | x) = 1 / (1 + exp(-(a + b x))).

    Raise FitError on one class only, constant x, perfect separation (the
    estimate does not exist: k would grow without bound) or no convergence.
    """
    n = len(xs)
    positives = sum(ys)
    if positives in (0, n):
        raise FitError(f"Only one class in the data ({positives} of {n} positive): the fit needs both.")
    negative = [x for x, y in zip(xs, ys, strict=True) if not y]
    positive = [x for x, y in zip(xs, ys, strict=True) if y]
    if max(negative) <= min(positive) or max(positive) <= min(negative):
        raise FitError(
            "The data are perfectly separated: the maximum-likelihood estimate does not exist "
            "(k would grow without bound)."
        )
    zs, mean, deviation = _standardised(xs)
    share = positives / n

    def derivatives(a: float, b: float):
        g0 = g1 = h00 = h01 = h11 = 0.0
        for z, y in zip(zs, ys, strict=True):
            p = sigmoid(a + b * z)
            w = p * (1.0 - p)
            g0 += y - p
            g1 += (y - p) * z
            h00 -= w
            h01 -= w * z
            h11 -= w * z * z
        return g0, g1, h00, h01, h11

    a, b, ll, iterations = _newton(
        lambda a, b: log_likelihood(zs, ys, a, b), derivatives, math.log(share / (1 - share)), 0.0
    )
    # a + b (x - mean) / deviation = (a - b mean / deviation) + (b / deviation) x
    return a - b * mean / deviation, b / deviation, ll, iterations


def arrival_fit(observed: list[float], censored: list[float]) -> Fit:
    """Fit C(r) = 1 / (1 + e^{-k(r - θ)}) to delays: `observed` arrivals and `censored` waits.

    An observed delay d adds log(k C(d) (1 - C(d))); a wait c after which
    nothing had arrived yet adds log(1 - C(c)). Raise FitError when fewer
    than two delays were observed, they are all equal, or the fit does not
    converge.
    """
    if len(observed) < 2:
        raise FitError(f"Only {len(observed)} observed delays: the fit needs at least two.")
    zs, mean, deviation = _standardised(observed)
    cs = [(c - mean) / deviation for c in censored]

    def objective(a: float, b: float) -> float:
        total = len(zs) * math.log(b)
        for z in zs:
            u = a + b * z
            total -= softplus(-u) + softplus(u)
        for c in cs:
            total -= softplus(a + b * c)
        return total

    def derivatives(a: float, b: float):
        g0, g1 = 0.0, len(zs) / b
        h00, h01, h11 = 0.0, 0.0, -len(zs) / (b * b)
        for z in zs:
            p = sigmoid(a + b * z)
            w = p * (1.0 - p)
            g0 += 1.0 - 2.0 * p
            g1 += (1.0 - 2.0 * p) * z
            h00 -= 2.0 * w
            h01 -= 2.0 * w * z
            h11 -= 2.0 * w * z * z
        for c in cs:
            p = sigmoid(a + b * c)
            w = p * (1.0 - p)
            g0 -= p
            g1 -= p * c
            h00 -= w
            h01 -= w * c
            h11 -= w * c * c
        return g0, g1, h00, h01, h11

    # Start at the moments of a logistic distribution: deviation π / (b √3) = 1 on the standard scale.
    b0 = math.pi / math.sqrt(3)
    a, b, ll, iterations = _newton(objective, derivatives, 0.0, b0, positive_b=True)
    k = b / deviation
    theta = mean - a * deviation / b
    # The standardisation's Jacobian: each observed density is divided by the deviation.
    return Fit(k=k, theta=theta, log_likelihood=ll - len(zs) * math.log(deviation), iterations=iterations)
