"""Risk model of DESIGN section 11: P(r) = 1 / (1 + exp(-k (r - theta))).

r is a score built from the payment: how far its amount sits above the
merchant's usual amounts, whether the beneficiary is new, and how many
payments the merchant made in the last hour, all taken from the merchant's
most recent payments (one bounded, indexed query on the hot path). k and theta default to values
that hold only clearly unusual payments.
"""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

from django.db.models import Avg, Count, Q
from django.utils import timezone

DEFAULT_K = 1.8
DEFAULT_THETA = 6.0


HISTORY = 200  # the merchant's most recent payments the score looks at


def risk_score(payment) -> float:
    """Score a payment against the merchant's last HISTORY payments, in one aggregate query."""
    from payments.models import Payment

    since = timezone.now() - timedelta(hours=1)
    recent = (
        Payment.objects.filter(merchant_id=payment.merchant_id)
        .exclude(pk=payment.pk)
        .order_by("-created_at", "-id")[:HISTORY]
    )
    stats = recent.aggregate(
        usual=Avg("amount_minor", filter=Q(currency=payment.currency)),
        known=Count("id", filter=Q(beneficiary_account=payment.beneficiary_account)),
        last_hour=Count("id", filter=Q(created_at__gte=since)),
    )
    usual = stats["usual"]
    amount_ratio = math.log10(max(payment.amount_minor / usual, 1.0)) if usual else 0.0
    velocity = math.log10(1 + stats["last_hour"])
    return 2.5 * amount_ratio + 1.0 * (not stats["known"]) + 0.5 * velocity


def hold_probability(score: float, k: float = DEFAULT_K, theta: float = DEFAULT_THETA) -> Decimal:
    probability = 1.0 / (1.0 + math.exp(-k * (score - theta)))
    return Decimal(f"{probability:.4f}")
