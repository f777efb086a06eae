"""Risk model of DESIGN section 11: P(r) = 1 / (1 + exp(-k (r - theta))).

r is a score built from the payment: how far its amount sits above the
merchant's usual amounts, whether the beneficiary is new, and how many
payments the merchant made in the last hour, all taken from the merchant's
most recent payments (one bounded, indexed query on the hot path, its SQL
built once). k and theta default to values that hold only clearly unusual
payments.
"""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from functools import cache

from django.db import connection
from django.utils import timezone

DEFAULT_K = 1.8
DEFAULT_THETA = 6.0


HISTORY = 200  # the merchant's most recent payments the score looks at


def risk_score(payment) -> float:
    """Score a payment against the merchant's last HISTORY payments, in one aggregate query."""
    since = timezone.now() - timedelta(hours=1)
    params = [
        payment.currency,
        payment.beneficiary_account,
        connection.ops.adapt_datetimefield_value(since),
        payment.merchant_id,
        *([] if payment.pk is None else [payment.pk]),
        HISTORY,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_history_sql(exclude=payment.pk is not None), params)
        usual, known, last_hour = cursor.fetchone()
    usual = float(usual) if usual is not None else None  # NUMERIC on PostgreSQL, REAL on SQLite
    amount_ratio = math.log10(max(payment.amount_minor / usual, 1.0)) if usual else 0.0
    velocity = math.log10(1 + last_hour)
    return 2.5 * amount_ratio + 1.0 * (not known) + 0.5 * velocity


# The merchant's last HISTORY payments (other than the one scored, when it is saved), newest
# first through the (merchant, -created_at, -id) index, and three aggregates over them.
_HISTORY_SQL = """
SELECT AVG(CASE WHEN {currency} = %s THEN {amount_minor} END),
       COUNT(CASE WHEN {beneficiary_account} = %s THEN 1 END),
       COUNT(CASE WHEN {created_at} >= %s THEN 1 END)
FROM (
    SELECT {amount_minor}, {currency}, {beneficiary_account}, {created_at} FROM {table}
    WHERE {merchant} = %s{exclude}
    ORDER BY {created_at} DESC, {id} DESC
    LIMIT %s
) AS recent
"""


@cache
def _history_sql(exclude: bool) -> str:
    from payments.models import Payment

    q = connection.ops.quote_name
    return _HISTORY_SQL.format(
        table=q(Payment._meta.db_table),
        exclude=f" AND {q(Payment._meta.pk.column)} <> %s" if exclude else "",
        **{f.name: q(f.column) for f in Payment._meta.concrete_fields},
    )


def hold_probability(score: float, k: float = DEFAULT_K, theta: float = DEFAULT_THETA) -> Decimal:
    probability = 1.0 / (1.0 + math.exp(-k * (score - theta)))
    return Decimal(f"{probability:.4f}")
