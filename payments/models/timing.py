from django.db import models
from django.utils.translation import gettext_lazy as _


class TimingModel(models.Model):
    """Parameters of the seed's C(r) or N(r), `1 / (1 + e^{-k (r - theta)})`, fitted from history.

    C(r), per gateway (`subject` is its slug): the probability that a
    payment's callback has arrived r seconds after submission; it times
    reconciliation queries. N(r), per webhook endpoint (`subject` is its
    public id): the probability that delivery attempt r succeeds; shown to
    the merchant, it warns before the endpoint would be disabled.
    Append-only: the latest row per (kind, subject) is in force. Written by
    `manage.py fit_timing_models` (payments/services/timing_models.py).
    """

    class Kind(models.TextChoices):
        CALLBACK = "callback", _("Callback arrival C(r)")
        NOTIFICATION = "notification", _("Delivery success N(r)")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    subject = models.CharField(max_length=64)
    k = models.FloatField()
    theta = models.FloatField()
    samples = models.PositiveIntegerField(help_text=_("Observations the fit used."))
    positives = models.PositiveIntegerField(
        help_text=_("Of those: callbacks that arrived (C), attempts that succeeded (N).")
    )
    log_likelihood = models.FloatField()
    data_from = models.DateTimeField(null=True, blank=True)
    data_to = models.DateTimeField(null=True, blank=True)
    fitted_at = models.DateTimeField(auto_now_add=True)
    fitted_by = models.CharField(max_length=200, blank=True)

    class Meta:
        get_latest_by = ["fitted_at", "id"]
        indexes = [models.Index(fields=["kind", "subject", "-fitted_at", "-id"], name="timing_model_latest")]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}: k={self.k:.6g} theta={self.theta:.6g} ({self.samples} samples)"
