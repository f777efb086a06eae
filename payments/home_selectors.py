"""The home page's figures, read from the daily rollup (never by counting payments).

Every query here is bounded by days x currencies x methods x outcomes, not by
the number of payments: at 10^6 payments the home page reads a few hundred
rollup rows, plus three small counts (batches awaiting approval, held payments
up to a cap, failing webhook endpoints).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Q, Sum
from django.utils import timezone

from merchants.models import Merchant, WebhookEndpoint
from payments.models import BatchStatus, Payment, PaymentBatch, PaymentDailyStat, PaymentStatus, RollupKind
from payments.representations import amount_text
from payments.selectors import amounts_in_base, count_at_most

WINDOWS = {"today": 1, "7d": 7, "30d": 30}
HELD_CAP = 1000


@dataclass
class HomeFigures:
    days: int
    start: date
    volume: dict[str, int] = field(default_factory=dict)  # succeeded amount per currency (minor units)
    created: int = 0
    succeeded: int = 0
    failed: int = 0
    reversed: int = 0
    refunds: dict[str, int] = field(default_factory=dict)
    refund_count: int = 0
    failures_by_code: list[tuple[str, int]] = field(default_factory=list)
    failures_by_method: list[tuple[str, int]] = field(default_factory=list)
    by_method: dict[str, dict[str, int]] = field(default_factory=dict)  # method -> currency -> amount
    per_day: dict[str, list[tuple[date, int]]] = field(default_factory=dict)  # currency -> [(day, amount)]
    batches_awaiting: int = 0
    held: int = 0
    failing_endpoints: int = 0
    base_currency: str = ""
    volume_base: int | None = None  # the volume in the merchant's base currency, when rates allow
    volume_base_problem: str = ""  # why there is no such total (a missing or stale rate)

    @property
    def settled(self) -> int:
        """Payments that reached an outcome in the period (succeeded or failed)."""
        return self.succeeded + self.failed

    @property
    def success_rate(self) -> float | None:
        finished = self.succeeded + self.failed
        return round(100 * self.succeeded / finished, 1) if finished else None

    def volume_display(self) -> list[tuple[str, str]]:
        return [(c, amount_text(v, c)) for c, v in sorted(self.volume.items(), key=lambda cv: -cv[1])]

    def volume_base_display(self) -> str:
        return "" if self.volume_base is None else amount_text(self.volume_base, self.base_currency)

    def refunds_display(self) -> list[tuple[str, str]]:
        return [(c, amount_text(v, c)) for c, v in sorted(self.refunds.items())]


def home_figures(*, merchant: Merchant, days: int) -> HomeFigures:
    """The figures of the last `days` days (1 = today), from the rollup and three bounded counts."""
    today = timezone.localdate()
    start = today - timedelta(days=days - 1)
    figures = HomeFigures(days=days, start=start)
    rows = (
        PaymentDailyStat.objects.filter(merchant=merchant, day__gte=start)
        .values("day", "currency", "method", "kind", "failure_code")
        .annotate(n=Sum("count"), amount=Sum("amount_minor"))
        .order_by()
    )
    codes: dict[str, int] = defaultdict(int)
    failed_methods: dict[str, int] = defaultdict(int)
    by_method: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    daily: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        kind, n, amount, currency = row["kind"], row["n"], row["amount"], row["currency"]
        if kind == RollupKind.CREATED:
            figures.created += n
        elif kind == RollupKind.SUCCEEDED:
            figures.succeeded += n
            figures.volume[currency] = figures.volume.get(currency, 0) + amount
            by_method[row["method"]][currency] += amount
            daily[currency][row["day"]] += amount
        elif kind == RollupKind.FAILED:
            figures.failed += n
            codes[row["failure_code"] or "unknown"] += n
            failed_methods[row["method"]] += n
        elif kind == RollupKind.REVERSED:
            figures.reversed += n
        elif kind == RollupKind.REFUNDED:
            figures.refund_count += n
            figures.refunds[currency] = figures.refunds.get(currency, 0) + amount
    figures.failures_by_code = sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))
    figures.failures_by_method = sorted(failed_methods.items(), key=lambda kv: (-kv[1], kv[0]))
    figures.by_method = {m: dict(c) for m, c in sorted(by_method.items())}
    all_days = [start + timedelta(days=i) for i in range(days)]
    figures.per_day = {c: [(d, per[d]) for d in all_days] for c, per in daily.items()}
    figures.base_currency = merchant.base_currency
    if set(figures.volume) - {merchant.base_currency}:
        base = merchant.base_currency
        figures.volume_base, figures.volume_base_problem = amounts_in_base(figures.volume, base)
    figures.batches_awaiting = PaymentBatch.objects.filter(
        merchant=merchant, status=BatchStatus.VALIDATED
    ).count()
    figures.held = count_at_most(
        Payment.objects.filter(merchant=merchant, status=PaymentStatus.ON_HOLD), HELD_CAP
    )
    figures.failing_endpoints = WebhookEndpoint.objects.filter(
        Q(status=WebhookEndpoint.Status.DISABLED) | Q(first_failure_at__isnull=False), merchant=merchant
    ).count()
    return figures
