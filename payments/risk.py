"""Risk model of DESIGN section 11: P(r) = 1 / (1 + exp(-k (r - theta))).

r is a score built from the payment: how far its amount sits above the
merchant's usual amounts, whether the beneficiary is new, and how many
payments the merchant made in the last hour. k and theta default to values
that hold only clearly unusual payments.
"""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

from django.db.models import Avg
from django.utils import timezone

DEFAULT_K = 1.8
DEFAULT_THETA = 6.0


def risk_score(payment) -> float:
    from payments.models import Payment

    history = Payment.objects.filter(merchant_id=payment.merchant_id, currency=payment.currency)
    history = history.exclude(pk=payment.pk)
    usual = history.order_by("-id")[:200].aggregate(avg=Avg("amount_minor"))["avg"]
    amount_ratio = math.log10(max(payment.amount_minor / usual, 1.0)) if usual else 0.0
    new_beneficiary = not history.filter(beneficiary_account=payment.beneficiary_account).exists()
    recent = history.filter(created_at__gte=timezone.now() - timedelta(hours=1)).count()
    velocity = math.log10(1 + recent)
    return 2.5 * amount_ratio + 1.0 * new_beneficiary + 0.5 * velocity


def hold_probability(score: float, k: float = DEFAULT_K, theta: float = DEFAULT_THETA) -> Decimal:
    probability = 1.0 / (1.0 + math.exp(-k * (score - theta)))
    return Decimal(f"{probability:.4f}")
