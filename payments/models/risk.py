from django.db import models
from django.utils.translation import gettext_lazy as _


class RiskModel(models.Model):
    """Parameters of P(r) = 1 / (1 + exp(-k (r - theta))) fitted from reviewed history (DESIGN section 11).

    Append-only: the latest row is the model in force; with no row, payments/risk.py's
    defaults are. Written by `manage.py fit_risk_model` (payments/services/risk_model.py).
    """

    k = models.DecimalField(max_digits=12, decimal_places=6)
    theta = models.DecimalField(max_digits=12, decimal_places=6)
    samples = models.PositiveIntegerField(help_text=_("Reviewed payments the fit used."))
    positives = models.PositiveIntegerField(help_text=_("Of those, payments rejected after review."))
    log_likelihood = models.DecimalField(max_digits=20, decimal_places=6)
    fitted_at = models.DateTimeField(auto_now_add=True)
    fitted_by = models.CharField(max_length=200, blank=True)

    class Meta:
        get_latest_by = ["fitted_at", "id"]

    def __str__(self) -> str:
        return f"k={self.k} theta={self.theta} ({self.samples} samples, {self.fitted_at:%Y-%m-%d %H:%M})"
