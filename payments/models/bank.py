"""The bank-file rail's records: the pain.001 files written for batches and the bank reports read back."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from merchants.ids import PublicIdField
from merchants.models import ApiKey, Merchant


class BankFile(models.Model):
    """The pain.001.001.09 credit-transfer file of a batch's bank-rail payments.

    Created `pending` when the batch starts; a worker writes it (streamed, to
    MEDIA_ROOT) once every chunk has been submitted, claiming it with a
    conditional update so that two workers never write it twice. Its MsgId is
    what the bank's pain.002 names as OrgnlMsgId.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        WRITTEN = "written", _("Written")

    batch = models.OneToOneField("payments.PaymentBatch", on_delete=models.CASCADE, related_name="bank_file")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="bank_files")
    msg_id = models.CharField(max_length=35, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    stored_file = models.CharField(max_length=500, blank=True)
    size = models.BigIntegerField(default=0)
    nb_of_txs = models.PositiveIntegerField(default=0)
    # Per currency: {"EUR": {"count": n, "amount_minor": m}}.
    totals = models.JSONField(default=dict, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    written_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("bank file")
        indexes = [models.Index(fields=["status", "claimed_at"], name="bankfile_pending")]

    def __str__(self) -> str:
        return self.msg_id


class BankReport(models.Model):
    """A status report a merchant uploaded from its bank: pain.002 or camt.054.

    Every entry is applied through the lifecycle core; the counts say what
    happened: `matched` entries moved a payment, `duplicates` asked for what a
    payment already had (the same report again), `unmatched` lists the
    EndToEndIds no payment of the merchant carries, `errors` the entries that
    could not be applied and why.
    """

    class Kind(models.TextChoices):
        PAIN002 = "pain.002", "pain.002"
        CAMT054 = "camt.054", "camt.054"

    public_id = PublicIdField(prefix="brp")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="bank_reports")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    version = models.CharField(max_length=20, blank=True)
    msg_id = models.CharField(max_length=35, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    stored_file = models.CharField(max_length=500, blank=True)
    entries = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    unmatched = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_by_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("bank report")
        indexes = [models.Index(fields=["merchant", "-created_at"], name="bankreport_merchant_recent")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.kind}"
