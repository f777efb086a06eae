from django.db import models
from django.utils.translation import gettext_lazy as _

from merchants.models import Merchant


class RollupKind(models.TextChoices):
    CREATED = "created", _("Created")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    REVERSED = "reversed", _("Reversed")
    REFUNDED = "refunded", _("Refunded")


class PaymentDailyStat(models.Model):
    """The home page's figures, kept as payments change: counts and amounts per day and outcome.

    Written by the lifecycle core (payments/services/lifecycle/rollups.py) in the
    transaction that writes the Events, so the figures are exactly those of
    committed changes. `slot` (the writing process's) spreads one day's hot row over a
    few rows so that concurrent workers do not queue on one row lock; readers sum
    over it. A payment that fails and then succeeds on retry counts once in each.
    """

    SLOTS = 8

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=20)
    kind = models.CharField(max_length=10, choices=RollupKind.choices)
    failure_code = models.CharField(max_length=64, blank=True)
    slot = models.PositiveSmallIntegerField(default=0)
    count = models.BigIntegerField(default=0)
    amount_minor = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "day", "currency", "method", "kind", "failure_code", "slot"],
                name="payment_daily_stat_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.merchant_id} {self.day} {self.kind} {self.currency} {self.count}"
