from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from merchants.ids import PublicIdField
from merchants.models import Merchant, WebhookEndpoint


class Channel(models.TextChoices):
    WEBHOOK = "webhook", _("Webhook")
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    INAPP = "inapp", _("In-app")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    # Stopped for good: permanent error, endpoint gone or disabled.
    FAILED = "failed", _("Failed")
    # Used up every attempt of its schedule (dead-lettered).
    DEAD = "dead", _("Dead-lettered")


class Delivery(models.Model):
    """One notification to one recipient on one channel: the record of pending work.

    `attempts` is committed before each attempt is made (a claim that also
    pushes `next_attempt_at` out by a lease), so a worker that dies mid-send
    leaves a row the sweeper finds and sends again under a new attempt number.
    """

    public_id = PublicIdField(prefix="dlv")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(
        "payments.Event", null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    # The event type, or the notice type of an event-less delivery (webhook.test, ...).
    type = models.CharField(max_length=64)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    endpoint = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    # Email address, phone number, user id ("" = every member) or the endpoint's URL.
    recipient = models.CharField(max_length=2000, blank=True)
    # What to send when there is no event (test event, endpoint notices, beneficiary notices).
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=1)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    redelivery_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        permissions = [("redeliver", "Can redeliver a notification")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="delivery_pending_due",
            ),
            models.Index(fields=["endpoint", "-created_at", "-id"], name="delivery_endpoint_recent"),
            models.Index(fields=["merchant", "-created_at", "-id"], name="delivery_merchant_recent"),
            # A merchant's due webhooks, drained by the holder of one of its send slots.
            models.Index(
                fields=["merchant", "next_attempt_at"],
                condition=models.Q(status="pending", channel="webhook"),
                name="delivery_webhook_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.channel} {self.type} ({self.status})"

    @property
    def message_id(self) -> str:
        """The id receivers deduplicate on: the event's id, the same on every attempt and redelivery."""
        if self.event_id is not None:
            return self.event.public_id
        return self.payload.get("id") or self.public_id


class WebhookSendSlot(models.Model):
    """One of a merchant's webhook send slots: the per-merchant concurrency budget of deliveries.

    A worker sends a merchant's webhooks only while it holds one of its
    settings.PAYDESK_WEBHOOK_SLOTS_PER_MERCHANT slots, taken with a conditional
    UPDATE and leased (`leased_until`), so a worker that dies frees its slot
    when the lease runs out. Rows are created on first use.
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveSmallIntegerField()
    # "<node>:<pid>:<token>" of the worker holding it; "" when free.
    holder = models.CharField(max_length=200, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("webhook send slot")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "number"], name="webhook_send_slot_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.merchant_id}#{self.number} {self.holder or 'free'}"


class Notification(models.Model):
    """An entry of the dashboard's in-app feed; `user` null means every member of the merchant."""

    class Level(models.TextChoices):
        INFO = "info", _("Info")
        SUCCESS = "success", _("Success")
        WARNING = "warning", _("Warning")
        DANGER = "danger", _("Problem")

    public_id = PublicIdField(prefix="ntf")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="notifications")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="paydesk_notifications",
    )
    delivery = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), blank=True)
    link = models.CharField(_("link"), max_length=500, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("notification")
        constraints = [
            # A delivery re-sent after a crash must not show twice in anyone's feed.
            models.UniqueConstraint(fields=["delivery", "user"], name="notification_unique_delivery_user"),
        ]
        indexes = [
            models.Index(fields=["merchant", "-created_at", "-id"], name="notification_feed"),
        ]

    def __str__(self) -> str:
        return self.title
