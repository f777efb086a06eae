from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

from merchants.crypto import masked
from merchants.fields import DerivedAccountField, EncryptedTextField
from merchants.ids import PublicIdField
from merchants.models import ApiKey, Merchant
from payments.models.indexes import CoveringIndex
from payments.money import format_minor


class Method(models.TextChoices):
    CARD = "card", _("Card")
    ALIPAY = "alipay", _("Alipay")
    WECHAT_PAY = "wechat_pay", _("WeChat Pay")
    PAYPAL = "paypal", _("PayPal")
    BANK_TRANSFER = "bank_transfer", _("Bank transfer")


class Direction(models.TextChoices):
    PAYOUT = "payout", _("Payout")
    COLLECTION = "collection", _("Collection")


class PaymentStatus(models.TextChoices):
    CREATED = "created", _("Created")
    ON_HOLD = "on_hold", _("On hold")
    PROCESSING = "processing", _("Processing")
    REQUIRES_ACTION = "requires_action", _("Requires action")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded")
    REVERSED = "reversed", _("Reversed")


S = PaymentStatus
# A payment's personal data encrypted at rest (EncryptedTextField): batch COPY writes it encrypted
# by hand, the admin leaves it out, erasure replaces it.
ENCRYPTED_FIELDS = ("beneficiary_account", "beneficiary_email", "beneficiary_phone")
REFUNDABLE = [S.SUCCEEDED, S.PARTIALLY_REFUNDED]


class Payment(FSMModelMixin, models.Model):
    """One payment to one beneficiary; a real-time payment is a batch of one.

    Transition methods change only this row's fields: services save, write the
    Event and call gateways.
    """

    # Indexes are chosen for batch ingestion (every one costs each COPY'd row): public_id is
    # unique through a constraint (no LIKE-pattern twin), merchant and batch through the
    # composite indexes below that lead with them.
    public_id = PublicIdField(prefix="pay", unique=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="payments", db_index=False)
    batch = models.ForeignKey(
        "payments.PaymentBatch",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
        db_index=False,
    )
    reference = models.CharField(_("reference"), max_length=140)
    amount_minor = models.BigIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    method = models.CharField(_("method"), max_length=20, choices=Method.choices)
    beneficiary_name = models.CharField(_("beneficiary name"), max_length=140)
    # Personal data encrypted at rest (merchants/fields.py); the account is found by its keyed
    # hash and shown by its last four characters (docs/privacy.md).
    beneficiary_account = EncryptedTextField(_("beneficiary account"))
    beneficiary_account_hash = DerivedAccountField(source="beneficiary_account", kind="hash")
    beneficiary_account_last4 = DerivedAccountField(source="beneficiary_account", kind="last4")
    beneficiary_email = EncryptedTextField(_("beneficiary email"), blank=True)
    beneficiary_phone = EncryptedTextField(_("beneficiary phone"), blank=True)
    description = models.CharField(_("description"), max_length=500, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    status = FSMField(default=S.CREATED, choices=PaymentStatus.choices, protected=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    failure_retryable = models.BooleanField(default=False)
    next_action = models.JSONField(null=True, blank=True)
    refunded_minor = models.BigIntegerField(default=0)
    gateway = models.CharField(max_length=32, blank=True)
    # payout or collection (DESIGN section 6), fixed from the method's route when the payment is
    # created: every batch row pays out; a real-time payment collects when its gateway does.
    direction = models.CharField(
        max_length=10, choices=Direction.choices, default=Direction.PAYOUT, db_default=Direction.PAYOUT
    )
    gateway_reference = models.CharField(max_length=128, blank=True)
    risk_probability = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    # The score r the probability was computed from: the input of the next fit (payments/risk.py).
    risk_score = models.DecimalField(max_digits=8, decimal_places=4, null=True, blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        # Admin decisions, each its own permission (the "Risk reviewer" group holds them).
        permissions = [
            ("release_payment", "Can release a held payment"),
            ("reject_payment", "Can reject a held payment"),
            ("hold_payment", "Can hold a payment for review"),
            ("retry_payment", "Can retry a failed payment"),
            ("cancel_payment", "Can cancel a payment"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["public_id"], name="payment_unique_public_id"),
            models.UniqueConstraint(fields=["merchant", "reference"], name="payment_unique_reference"),
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(refunded_minor__gte=0)
                & models.Q(refunded_minor__lte=models.F("amount_minor")),
                name="payment_refund_within_amount",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "-created_at", "-id"], name="payment_merchant_recent"),
            models.Index(fields=["merchant", "status"], name="payment_merchant_status"),
            models.Index(fields=["batch", "status"], name="payment_batch_status"),
            # A batch's payments in file order (its pages, reports), filtered by status from the index.
            CoveringIndex(fields=["batch", "id"], covering=["status"], name="payment_batch_line"),
            # Platform-wide status views (the admin's failed and held payments, the sweeper).
            models.Index(fields=["status"], name="payment_status"),
            # Exact search by account (dashboard, API) and the blocklist, by keyed hash.
            models.Index(fields=["merchant", "beneficiary_account_hash"], name="payment_merchant_account"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.amount} {self.currency} ({self.status})"

    @property
    def beneficiary_account_masked(self) -> str:
        return masked(self.beneficiary_account_last4)

    @property
    def amount(self) -> str:
        return format_minor(self.amount_minor, self.currency)

    @property
    def refunded_amount(self) -> str:
        return format_minor(self.refunded_minor, self.currency)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES

    # Transitions: the graph of DESIGN section 4. Pure: no saves, no I/O.
    @transition(field=status, source=S.CREATED, target=S.ON_HOLD)
    def hold(self) -> None:
        pass

    @transition(field=status, source=S.ON_HOLD, target=S.CREATED)
    def release(self) -> None:
        pass

    @transition(field=status, source=S.CREATED, target=S.PROCESSING)
    def submit(self) -> None:
        self.failure_code = ""
        self.failure_message = ""
        self.failure_retryable = False

    @transition(field=status, source=S.PROCESSING, target=S.REQUIRES_ACTION)
    def require_action(self, next_action: dict | None = None) -> None:
        self.next_action = next_action

    @transition(field=status, source=[S.PROCESSING, S.REQUIRES_ACTION], target=S.SUCCEEDED)
    def succeed(self) -> None:
        self.next_action = None

    @transition(field=status, source=[S.PROCESSING, S.REQUIRES_ACTION, S.ON_HOLD], target=S.FAILED)
    def fail(self, code: str = "", message: str = "", retryable: bool = False) -> None:
        self.failure_code = code
        self.failure_message = message[:500]
        self.failure_retryable = retryable
        self.next_action = None

    @transition(field=status, source=[S.CREATED, S.ON_HOLD, S.REQUIRES_ACTION], target=S.CANCELLED)
    def cancel(self) -> None:
        self.next_action = None

    def is_retryable(self) -> bool:
        return self.failure_retryable

    @transition(field=status, source=S.FAILED, target=S.PROCESSING, conditions=[is_retryable])
    def retry(self) -> None:
        self.failure_code = ""
        self.failure_message = ""
        self.failure_retryable = False

    @transition(field=status, source=REFUNDABLE, target=S.PARTIALLY_REFUNDED)
    def refund_partial(self, amount_minor: int) -> None:
        if not 0 < self.refunded_minor + amount_minor < self.amount_minor:
            raise ValueError("A partial refund must leave part of the amount captured.")
        self.refunded_minor += amount_minor

    @transition(field=status, source=REFUNDABLE, target=S.REFUNDED)
    def refund_full(self, amount_minor: int) -> None:
        if self.refunded_minor + amount_minor != self.amount_minor:
            raise ValueError("A full refund must bring the refunded total to the amount.")
        self.refunded_minor += amount_minor

    @transition(field=status, source=REFUNDABLE, target=S.REVERSED)
    def reverse(self, code: str = "", message: str = "") -> None:
        # The money came back (chargeback, a bank's return): the reason is kept like a failure's.
        self.failure_code = code
        self.failure_message = message[:500]


# Event types are "payment.<new status>" except where that would hide what happened.
TRANSITION_EVENT_TYPES = {"release": "payment.released", "retry": "payment.retried"}

FINAL_STATES = frozenset({S.FAILED, S.CANCELLED, S.REFUNDED, S.REVERSED, S.SUCCEEDED})


class GatewayAttempt(models.Model):
    """One call to a gateway, written and committed before the call is made.

    `idempotency_key` goes with the call, so a repeat after a crash is answered
    from the gateway's record instead of executed again.
    """

    class Kind(models.TextChoices):
        PAYMENT = "payment", _("Payment")
        REFUND = "refund", _("Refund")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        ANSWERED = "answered", _("Answered")
        DEAD = "dead", _("Dead-lettered")

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="attempts")
    refund = models.ForeignKey(
        "payments.Refund", null=True, blank=True, on_delete=models.CASCADE, related_name="attempts"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PAYMENT)
    number = models.PositiveIntegerField(default=1)
    gateway = models.CharField(max_length=32)
    idempotency_key = models.CharField(max_length=80, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    outcome = models.CharField(max_length=20, blank=True)
    gateway_reference = models.CharField(max_length=128, blank=True)
    response = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    calls = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_call_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("gateway attempt")
        verbose_name_plural = _("gateway attempts")
        constraints = [
            models.UniqueConstraint(
                fields=["payment", "kind", "number"],
                condition=models.Q(refund__isnull=True),
                name="attempt_unique_number",
            ),
        ]
        indexes = [models.Index(fields=["status", "last_call_at"], name="attempt_pending")]

    def __str__(self) -> str:
        return self.idempotency_key


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class Refund(FSMModelMixin, models.Model):
    """Money returned to the payer of a payment, through the gateway that took it.

    A requested refund (merchant, API) counts against the payment's captured
    amount and moves the payment to (partially) refunded. A late-success
    refund returns money the gateway took for a payment we had given up
    (cancelled, failed, superseded attempt): the payment's state stays.
    `source_attempt` is the payment attempt whose money is returned.
    """

    class Kind(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        LATE_SUCCESS = "late_success", _("Return of a late payment")

    public_id = PublicIdField(prefix="ref")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.REQUESTED)
    source_attempt = models.ForeignKey(
        GatewayAttempt, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds_of"
    )
    amount_minor = models.BigIntegerField()
    reason = models.CharField(max_length=500, blank=True)
    status = FSMField(default=RefundStatus.PENDING, choices=RefundStatus.choices, protected=True)
    failure_code = models.CharField(max_length=64, blank=True)
    gateway_reference = models.CharField(max_length=128, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def amount(self) -> str:
        return format_minor(self.amount_minor, self.payment.currency)

    @transition(field=status, source=RefundStatus.PENDING, target=RefundStatus.SUCCEEDED)
    def succeed(self) -> None:
        pass

    @transition(field=status, source=RefundStatus.PENDING, target=RefundStatus.FAILED)
    def fail(self, code: str = "") -> None:
        self.failure_code = code
