from django.db import models
from django.utils.translation import gettext_lazy as _

from merchants.ids import PublicIdField
from merchants.models import ApiKey, Merchant


class Event(models.Model):
    """Append-only record of something that happened: a payment's timeline and webhooks' source."""

    # Two to four Events per payment make this the largest table: no index beyond what its
    # queries use (merchant through event_merchant_recent, no LIKE-pattern twins).
    public_id = PublicIdField(prefix="evt", unique=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="events", db_index=False)
    type = models.CharField(max_length=64)
    payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    batch = models.ForeignKey(
        "payments.PaymentBatch",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
    )
    refund = models.ForeignKey(
        "payments.Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    data = models.JSONField(default=dict)
    # Who or what caused it: "user:<id>", "api_key:<key_...>", "gateway:sandbox", "system".
    actor = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["public_id"], name="event_unique_public_id")]
        indexes = [
            models.Index(fields=["merchant", "-created_at", "-id"], name="event_merchant_recent"),
            models.Index(fields=["type"], name="event_type"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"


class GatewayCallback(models.Model):
    """The inbox: every request a gateway sent us, stored raw before anything is applied."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        APPLIED = "applied", _("Applied")
        IGNORED = "ignored", _("Ignored")
        REJECTED = "rejected", _("Rejected")
        DUPLICATE = "duplicate", _("Duplicate")
        DEAD = "dead", _("Dead-lettered")

    gateway = models.CharField(max_length=32)
    event_id = models.CharField(max_length=128, blank=True)
    event_type = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    reason = models.CharField(max_length=500, blank=True)
    headers = models.JSONField(default=dict)
    body = models.TextField()
    payload = models.JSONField(null=True, blank=True)
    payment = models.ForeignKey(
        "payments.Payment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="callbacks",
    )
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("gateway callback")
        verbose_name_plural = _("gateway callbacks")
        permissions = [("reapply_callback", "Can re-apply an ignored or dead-lettered callback")]
        constraints = [
            # A gateway event is stored once; rejected and duplicate copies are kept for audit.
            models.UniqueConstraint(
                fields=["gateway", "event_id"],
                condition=~models.Q(status__in=["rejected", "duplicate"]),
                name="callback_unique_event",
            ),
        ]
        indexes = [models.Index(fields=["status", "received_at"], name="callback_status")]

    def __str__(self) -> str:
        return f"{self.gateway}:{self.event_id} ({self.status})"


class IdempotencyKey(models.Model):
    """A stored API response, replayed for a retried request with the same key (24 hours)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(null=True, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "key"], name="idempotency_unique_key"),
        ]

    def __str__(self) -> str:
        return self.key
