from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from merchants.models import Merchant
from payments.money import format_minor


class Incident(models.Model):
    """Money that moved where we did not expect it: one row per case, kept for review.

    A late success (the gateway took the customer's money for a payment we
    consider cancelled or failed, or for an attempt a retry superseded) is
    never silently ignored: it becomes an Incident, a `payment.late_success`
    Event and a notice to the merchant, and is refunded automatically when the
    merchant's setting asks for it.
    """

    class Kind(models.TextChoices):
        LATE_SUCCESS = "late_success", _("Paid after it was given up")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        REFUNDING = "refunding", _("Refunding")
        RESOLVED = "resolved", _("Resolved")

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="incidents")
    payment = models.ForeignKey("payments.Payment", on_delete=models.PROTECT, related_name="incidents")
    attempt = models.ForeignKey(
        "payments.GatewayAttempt", on_delete=models.PROTECT, related_name="incidents", null=True, blank=True
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    amount_minor = models.BigIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    gateway_reference = models.CharField(_("gateway reference"), max_length=128, blank=True)
    reason = models.CharField(_("what happened"), max_length=500)
    refund = models.ForeignKey(
        "payments.Refund", on_delete=models.PROTECT, related_name="incidents", null=True, blank=True
    )
    resolution = models.CharField(_("resolution"), max_length=500, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("incident")
        constraints = [
            models.UniqueConstraint(fields=["attempt", "kind"], name="incident_unique_attempt_kind"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="incident_status_recent")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.payment_id} ({self.status})"

    @property
    def amount(self) -> str:
        return format_minor(self.amount_minor, self.currency)
