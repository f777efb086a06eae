"""Risk model of DESIGN section 11: P(r) = 1 / (1 + exp(-k (r - theta))).

r is a score built from the payment: how far its amount sits above the
merchant's usual amounts, whether the beneficiary is new, and how many
payments the merchant made in the last hour, all taken from the merchant's
most recent payments (one bounded, indexed query on the hot path, its SQL
built once in payments/db.py). k and
theta are the latest RiskModel row, fitted by `manage.py fit_risk_model`
(payments/services/risk_model.py); with none, the
defaults below, which hold only clearly unusual payments. The parameters are
read through Django's cache (PARAMETERS_TTL seconds), so scoring a payment
adds no SQL statement; a fit replaces the cached entry on commit, and every
other process picks it up when its entry expires.
"""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

from django.core.cache import cache as shared_cache
from django.utils import timezone

from merchants.crypto import field_hash
from payments.db import recent_figures
from payments.models import Payment, RiskModel
from payments.rates import RateUnavailable, convert_minor

DEFAULT_K = 1.8
DEFAULT_THETA = 6.0

# Versioned: bump it if what is stored under it changes shape.
PARAMETERS_CACHE_KEY = "payments:risk-model:v1"
PARAMETERS_TTL = 60  # seconds: the longest a new fit waits to be used by every process


HISTORY = 200  # the merchant's most recent payments the score looks at


def risk_drivers(payment) -> dict:
    """What the score is made of, for a reviewer: each term and the figures behind it."""
    usual, known, last_hour = recent_figures(
        Payment,
        merchant_id=payment.merchant_id,
        exclude_pk=payment.pk,
        currency=payment.currency,
        account_hash=field_hash(payment.beneficiary_account),
        since=timezone.now() - timedelta(hours=1),
        limit=HISTORY,
    )
    usual = float(usual) if usual is not None else None  # NUMERIC on PostgreSQL, REAL on SQLite
    if usual:
        amount_ratio = math.log10(max(payment.amount_minor / usual, 1.0))
    else:
        amount_ratio = _base_currency_ratio(payment)
    return {"usual_amount_minor": usual, **score_terms(amount_ratio, not known, last_hour)}


def score_terms(amount_ratio: float, new_beneficiary: bool, last_hour: int) -> dict:
    """The terms of the score r, for a real-time payment and a batch row alike: the amount's log10
    ratio to the merchant's usual amounts, a beneficiary never paid before, the last hour's payments."""
    return {
        "amount": 2.5 * amount_ratio,
        "new_beneficiary": 1.0 * bool(new_beneficiary),
        "payments_last_hour": last_hour,
        "velocity": 0.5 * math.log10(1 + last_hour),
    }


def score_of(terms: dict) -> float:
    return terms["amount"] + terms["new_beneficiary"] + terms["velocity"]


def risk_score(payment) -> float:
    """Score a payment against the merchant's last HISTORY payments, in one aggregate query."""
    return score_of(risk_drivers(payment))


def _base_currency_ratio(payment) -> float:
    """The amount against the merchant's usual amounts when none of them is in its currency: both in the
    merchant's base currency through the reference rates (0 when a rate is missing or stale)."""
    base = payment.merchant.base_currency
    recent = (
        Payment.objects.filter(merchant_id=payment.merchant_id)
        .exclude(pk=payment.pk)
        .order_by("-created_at", "-id")
        .values_list("currency", "amount_minor")[:HISTORY]
    )
    memo: dict = {}
    try:
        amounts = [convert_minor(a, c, base, memo=memo) for c, a in recent]
        amount = convert_minor(payment.amount_minor, payment.currency, base, memo=memo)
    except RateUnavailable:
        return 0.0
    usual = sum(amounts) / len(amounts) if amounts else 0
    return math.log10(max(amount / usual, 1.0)) if usual else 0.0


class BatchScorer:
    """The risk score of a batch file's rows, with what it reads from the database read once, before
    the COPY stream opens (batch ingestion runs no query then): the merchant's usual amount in its
    base currency over its last HISTORY payments, how many of them were made in the last hour, and
    the model's parameters. Per row: the same terms as a real-time payment (`score_terms`)."""

    def __init__(self, merchant, memo: dict) -> None:
        self.base = merchant.base_currency
        self.memo = memo
        since = timezone.now() - timedelta(hours=1)
        recent = list(
            Payment.objects.filter(merchant_id=merchant.pk)
            .order_by("-created_at", "-id")
            .values_list("currency", "amount_minor", "created_at")[:HISTORY]
        )
        self.last_hour = sum(1 for _c, _a, at in recent if at >= since)
        try:
            amounts = [convert_minor(a, c, self.base, memo=memo) for c, a, _at in recent]
        except RateUnavailable:
            amounts = []  # as in real time: no amount term without the rates
        self.usual = sum(amounts) / len(amounts) if amounts else 0.0
        self.k, self.theta = risk_parameters()

    def score(self, amount_minor: int, currency: str, new_beneficiary: bool) -> tuple[Decimal, Decimal]:
        """(score, hold probability) of one row, both as stored (four decimals)."""
        ratio = 0.0
        if self.usual:
            try:
                amount = convert_minor(amount_minor, currency, self.base, memo=self.memo)
            except RateUnavailable:
                amount = 0
            if amount > self.usual:
                ratio = math.log10(amount / self.usual)
        score = score_of(score_terms(ratio, new_beneficiary, self.last_hour))
        return Decimal(f"{score:.4f}"), hold_probability(score, self.k, self.theta)


def risk_parameters() -> tuple[float, float]:
    """(k, theta) of the model in force: the latest RiskModel, else the defaults; cached."""
    parameters = shared_cache.get(PARAMETERS_CACHE_KEY)
    if parameters is None:
        latest = RiskModel.objects.order_by("-fitted_at", "-id").values_list("k", "theta").first()
        parameters = (DEFAULT_K, DEFAULT_THETA) if latest is None else (float(latest[0]), float(latest[1]))
        shared_cache.set(PARAMETERS_CACHE_KEY, parameters, PARAMETERS_TTL)
    return parameters


def hold_probability(score: float, k: float | None = None, theta: float | None = None) -> Decimal:
    """P(score) to four decimals, with the model in force unless k and theta are given."""
    if k is None or theta is None:
        k, theta = risk_parameters()
    exponent = -k * (score - theta)
    probability = 0.0 if exponent > 700 else 1.0 / (1.0 + math.exp(exponent))  # exp overflows past ~709
    return Decimal(f"{probability:.4f}")
