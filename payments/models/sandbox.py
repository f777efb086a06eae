from django.db import models
from django.utils.translation import gettext_lazy as _


class SandboxOperation(models.Model):
    """The sandbox gateway's own record: one row per idempotency key, executed once."""

    key = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=10)  # payment | refund
    gateway_reference = models.CharField(max_length=64, unique=True)
    payment_reference = models.CharField(max_length=140, blank=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    account = models.CharField(max_length=64, blank=True)
    answer = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("sandbox operation")
        verbose_name_plural = _("sandbox operations")

    def __str__(self) -> str:
        return self.key


class SandboxNotice(models.Model):
    """An outcome the sandbox owes the merchant platform, delivered as a signed callback."""

    operation = models.ForeignKey(SandboxOperation, on_delete=models.CASCADE, related_name="notices")
    seq = models.PositiveSmallIntegerField()
    event_id = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=40)
    data = models.JSONField()
    due_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = _("sandbox notice")
        verbose_name_plural = _("sandbox notices")
        ordering = ["operation_id", "seq"]
        indexes = [models.Index(fields=["sent_at", "due_at"], name="sandbox_notice_due")]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"
