from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

from merchants.ids import PublicIdField
from merchants.models import ApiKey, Merchant


class BatchStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    VALIDATING = "validating", _("Validating")
    VALIDATED = "validated", _("Validated")
    REJECTED = "rejected", _("Rejected")
    APPROVED = "approved", _("Approved")
    PROCESSING = "processing", _("Processing")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


B = BatchStatus


class PaymentBatch(FSMModelMixin, models.Model):
    """A file or list of payments validated, approved and executed together (DESIGN section 5)."""

    public_id = PublicIdField(prefix="bat")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="batches")
    name = models.CharField(max_length=200, blank=True)
    status = FSMField(default=B.UPLOADED, choices=BatchStatus.choices, protected=True)
    source_format = models.CharField(max_length=20, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    message_id = models.CharField(max_length=64, blank=True, db_index=True)
    encoding = models.CharField(max_length=20, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    valid_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    totals = models.JSONField(default=dict, blank=True)
    rejection_reason = models.CharField(max_length=500, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="uploaded_batches",
    )
    uploaded_by_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="approved_batches",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("payment batch")
        verbose_name_plural = _("payment batches")
        indexes = [models.Index(fields=["merchant", "-created_at"], name="batch_merchant_recent")]

    def __str__(self) -> str:
        return self.public_id

    @transition(field=status, source=B.UPLOADED, target=B.VALIDATING)
    def start_validation(self) -> None:
        pass

    @transition(field=status, source=B.VALIDATING, target=B.VALIDATED)
    def mark_validated(self) -> None:
        pass

    @transition(field=status, source=[B.UPLOADED, B.VALIDATING], target=B.REJECTED)
    def reject(self, reason: str = "") -> None:
        self.rejection_reason = reason[:500]

    @transition(field=status, source=B.VALIDATED, target=B.APPROVED)
    def approve(self, user=None) -> None:
        self.approved_by = user

    @transition(field=status, source=B.APPROVED, target=B.PROCESSING)
    def start_processing(self) -> None:
        pass

    @transition(field=status, source=B.PROCESSING, target=B.COMPLETED)
    def complete(self) -> None:
        pass

    @transition(field=status, source=[B.UPLOADED, B.VALIDATED, B.APPROVED], target=B.CANCELLED)
    def cancel(self) -> None:
        pass


class BatchRowError(models.Model):
    batch = models.ForeignKey(PaymentBatch, on_delete=models.CASCADE, related_name="row_errors")
    line = models.PositiveIntegerField()
    column = models.CharField(max_length=64, blank=True)
    code = models.CharField(max_length=64)
    message = models.CharField(max_length=500)

    class Meta:
        indexes = [models.Index(fields=["batch", "line"], name="rowerror_batch_line")]

    def __str__(self) -> str:
        return f"line {self.line}: {self.code}"
