from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

from merchants.ids import PublicIdField
from merchants.models import ApiKey, FundingAccount, Merchant


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
    """A file or list of payments validated, approved and executed together (DESIGN section 5).

    Counts and totals are exact: `totals` maps a currency to
    `{"count": n, "amount_minor": m}` for the valid rows, `outcomes` maps a
    final payment status to the same per-currency shape once completed.
    """

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

    # The stored upload: a path relative to MEDIA_ROOT, kept for audit and re-validation.
    stored_file = models.CharField(max_length=500, blank=True)
    file_size = models.BigIntegerField(default=0)
    # pain.001 group header: version, NbOfTxs and CtrlSum (a decimal string).
    control = models.JSONField(default=dict, blank=True)
    rejection_code = models.CharField(max_length=64, blank=True)
    rejection_line = models.PositiveIntegerField(null=True, blank=True)
    # The earlier batch this one repeats (same file or same MsgId within 30 days).
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Attempt counter of the validation task, committed before each attempt.
    validation_attempts = models.PositiveIntegerField(default=0)
    validation_started_at = models.DateTimeField(null=True, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    approved_by_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="approved_batches"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    # When the beneficiaries of a completed batch were told they were paid (merchants who opt in).
    beneficiaries_notified_at = models.DateTimeField(null=True, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    # Set when a processing batch is cancelled: what is not yet submitted is cancelled.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    outcomes = models.JSONField(default=dict, blank=True)
    # Payouts: the account the batch pays from (its rows in that currency; other currencies use
    # the merchant's default account for theirs) and the day the merchant asks it to be paid.
    funding_account = models.ForeignKey(
        FundingAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="batches"
    )
    execution_date = models.DateField(_("requested execution date"), null=True, blank=True)
    # "Retry failed": the finished batch whose retryable failures this batch pays again
    # (payments/services/batches/retry.py); a batch has at most one retry that is not cancelled or
    # rejected, so two clicks, or two people, make one.
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )

    class Meta:
        verbose_name = _("payment batch")
        verbose_name_plural = _("payment batches")
        indexes = [
            models.Index(fields=["merchant", "-created_at"], name="batch_merchant_recent"),
            models.Index(fields=["status", "updated_at"], name="batch_status_updated"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["retry_of"],
                condition=~models.Q(status__in=["cancelled", "rejected"]),
                name="batch_one_live_retry",
            )
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def is_final(self) -> bool:
        return self.status in (B.REJECTED, B.COMPLETED, B.CANCELLED)

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
    # The row's reference (EndToEndId) and pain.001 PmtInfId as read, for the status reports.
    reference = models.CharField(max_length=140, blank=True)
    pmt_inf_id = models.CharField(max_length=140, blank=True)
    # What the row held in the offending column, and whom it was for: shown beside the message.
    value = models.CharField(max_length=500, blank=True)
    beneficiary_name = models.CharField(max_length=140, blank=True)

    class Meta:
        verbose_name = _("batch row error")
        verbose_name_plural = _("batch row errors")
        indexes = [models.Index(fields=["batch", "line"], name="rowerror_batch_line")]

    def __str__(self) -> str:
        return f"line {self.line}: {self.code}"


class BatchChunk(models.Model):
    """A slice of a batch's payments (a range of primary keys) executed by one worker task.

    The chunk is the unit of pending work: a worker claims it with a
    conditional update that commits `attempts` before any payment is touched,
    so a chunk whose worker died is found by the sweeper and run again. A
    re-run submits with the same attempt keys, so nothing is paid twice.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        CLAIMED = "claimed", _("Claimed")
        DONE = "done", _("Done")
        DEAD = "dead", _("Dead-lettered")

    batch = models.ForeignKey(PaymentBatch, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    first_payment_id = models.BigIntegerField()
    last_payment_id = models.BigIntegerField()
    size = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Which node and process claimed it last ("<node>:<pid>"), for audit and the scale-out test.
    claimed_by = models.CharField(max_length=120, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    submitted_count = models.PositiveIntegerField(default=0)
    cancelled_count = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = _("batch chunk")
        verbose_name_plural = _("batch chunks")
        constraints = [
            models.UniqueConstraint(fields=["batch", "number"], name="chunk_unique_number"),
        ]
        indexes = [models.Index(fields=["batch", "status"], name="chunk_batch_status")]

    def __str__(self) -> str:
        return f"{self.batch_id}#{self.number} ({self.status})"
