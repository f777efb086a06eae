import hashlib
import hmac
import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from merchants.crypto import decrypt
from merchants.fields import EncryptedTextField
from merchants.ids import PublicIdField


class Merchant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    # Per-payment limit in minor units of any currency; 0 means no limit.
    per_payment_limit_minor = models.BigIntegerField(
        _("per-payment limit (minor units)"), default=100_000_000
    )
    four_eyes = models.BooleanField(
        _("four-eyes approval"),
        default=False,
        help_text=_("Batches must be approved by someone other than the uploader."),
    )
    # A batch whose total in any one currency exceeds this (minor units) must be approved
    # by a member with the approver role; 0 means no such threshold.
    batch_approval_threshold_minor = models.BigIntegerField(
        _("batch approval threshold (minor units)"),
        default=0,
        help_text=_("Batches above this total in any currency need an approver; 0 turns it off."),
    )
    allowed_currencies = models.JSONField(
        _("allowed currencies"),
        default=list,
        blank=True,
        help_text=_("ISO 4217 codes; empty allows every currency."),
    )

    class LateSuccessRefund(models.TextChoices):
        OFF = "off", _("Never: review each case")
        CANCELLED = "cancelled", _("Payments I cancelled")
        CANCELLED_AND_FAILED = "cancelled_and_failed", _("Payments I cancelled and failed attempts")

    late_success_refund = models.CharField(
        _("refund late payments automatically"),
        max_length=24,
        choices=LateSuccessRefund.choices,
        default=LateSuccessRefund.CANCELLED,
        help_text=_(
            "When a gateway takes a customer's money for a payment PayDesk had already cancelled "
            "(or given up after a failure), refund it without waiting for a review."
        ),
    )
    notify_beneficiaries = models.BooleanField(
        _("tell beneficiaries when a batch pays them"),
        default=False,
        help_text=_("E-mail and SMS each paid beneficiary who has an address or phone number in the batch."),
    )
    risk_threshold = models.DecimalField(
        _("risk hold threshold"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.950"),
        help_text=_("Payments whose risk probability is above this are held for review."),
    )
    # Limits in the merchant's base currency (minor units; 0 = off), checked for every payment by
    # payments/controls.py; amounts in other currencies are converted with the reference rates.
    base_currency = models.CharField(_("base currency"), max_length=3, default="USD")
    first_payment_cap_minor = models.BigIntegerField(
        _("first payment cap (minor units of the base currency)"),
        default=0,
        help_text=_("A payment above this to a beneficiary never paid before is held for review. 0: off."),
    )
    daily_cap_minor = models.BigIntegerField(
        _("daily volume cap (minor units of the base currency)"),
        default=0,
        help_text=_("Payments that would take today's volume above this are held. 0: off."),
    )
    monthly_cap_minor = models.BigIntegerField(
        _("monthly volume cap (minor units of the base currency)"),
        default=0,
        help_text=_("Payments that would take this month's volume above this are held. 0: off."),
    )
    velocity_per_beneficiary_hour = models.PositiveIntegerField(
        _("payments per beneficiary per hour"),
        default=0,
        help_text=_("More payments than this to one account within an hour are held. 0: off."),
    )
    velocity_per_minute = models.PositiveIntegerField(
        _("real-time payments per minute"),
        default=0,
        help_text=_("More real-time payments than this within a minute are held. 0: off."),
    )
    full_beneficiary_data = models.BooleanField(
        _("full beneficiary data for integrations"),
        default=False,
        help_text=_(
            "Show full account numbers, e-mails and phone numbers in API answers and webhooks "
            "instead of the masked form (•••• 1234). Every change is audited."
        ),
    )
    require_two_factor = models.BooleanField(
        _("require two-factor sign-in for everyone"),
        default=False,
        help_text=_("Owners, approvers and staff always need a second factor; this asks it of every member."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def allows_currency(self, currency: str) -> bool:
        return not self.allowed_currencies or currency in self.allowed_currencies


class NotificationTopic(models.TextChoices):
    """What a member's personal notification settings are grouped by (payments maps event types to these)."""

    APPROVALS = "approvals", _("Approvals awaiting me")
    PAYMENT_PROBLEMS = "payment_problems", _("Payment failures and held payments")
    PAYMENTS = "payments", _("Other payment updates")
    REFUNDS = "refunds", _("Refunds")
    BATCHES = "batches", _("Batches")
    WEBHOOKS = "webhooks", _("Webhook endpoints failing")


# A member who never chose gets in-app notices and no e-mail (e-mail is opt-in).
NOTIFICATION_DEFAULTS = {"inapp": True, "email": False}


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        OPERATOR = "operator", _("Operator")
        APPROVER = "approver", _("Approver")
        VIEWER = "viewer", _("Viewer")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    # {topic: {"inapp": bool, "email": bool}} for topics the member changed; see `wants`.
    notifications = models.JSONField(_("personal notification settings"), default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "merchant"], name="membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.merchant} ({self.role})"

    @property
    def can_create_payments(self) -> bool:
        return self.role in {self.Role.OWNER, self.Role.OPERATOR}

    @property
    def can_approve(self) -> bool:
        return self.role in {self.Role.OWNER, self.Role.APPROVER}

    def wants(self, topic: str, channel: str) -> bool:
        """Whether this member gets `topic` on `channel` ("inapp" or "email"); defaults when never chosen."""
        chosen = (self.notifications or {}).get(topic) or {}
        value = chosen.get(channel, NOTIFICATION_DEFAULTS[channel])
        return value if isinstance(value, bool) else NOTIFICATION_DEFAULTS[channel]

    @property
    def can_reveal_beneficiary_data(self) -> bool:
        """Who may see one full account number in the dashboard (each reveal is audited)."""
        return self.role in {self.Role.OWNER, self.Role.APPROVER}


class UserProfile(models.Model):
    """What a person chose for themselves, whatever merchant they act for: the dashboard's language."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    language = models.CharField(
        _("language"),
        max_length=16,
        blank=True,
        help_text=_("A code of LANGUAGES (en, zh-hans); empty follows the browser."),
    )

    def __str__(self) -> str:
        return f"{self.user} ({self.language or '-'})"


def hash_api_key(raw: str) -> str:
    # API keys carry ~190 bits of randomness, so a fast hash is enough.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKey(models.Model):
    class Scope(models.TextChoices):
        READ = "read", _("Read")
        WRITE = "write", _("Write")
        APPROVE = "approve", _("Approve")

    public_id = PublicIdField(prefix="key")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        permissions = [("revoke_apikey", "Can revoke an API key")]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.merchant})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def generate(cls) -> tuple[str, str, str]:
        """Return (raw key, prefix, hash). The raw key is shown once and never stored."""
        prefix = secrets.token_hex(6)
        raw = f"pdk_{prefix}_{secrets.token_urlsafe(32)}"
        return raw, prefix, hash_api_key(raw)

    def matches(self, raw: str) -> bool:
        return hmac.compare_digest(self.key_hash, hash_api_key(raw))

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def revoke(self) -> None:
        self.revoked_at = timezone.now()


WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105


class WebhookEndpoint(models.Model):
    """A merchant's webhook receiver (Standard Webhooks, DESIGN section 6).

    The signing secret is stored encrypted and shown only when created or
    rotated; during the 24 hours after a rotation the previous secret signs too.
    """

    class Status(models.TextChoices):
        ENABLED = "enabled", _("Enabled")
        DISABLED = "disabled", _("Disabled")

    public_id = PublicIdField(prefix="whe")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(_("URL"), max_length=2000)
    description = models.CharField(_("description"), max_length=500, blank=True)
    events = models.JSONField(
        _("events"), default=list, blank=True, help_text=_("Event types sent here; empty sends every type.")
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ENABLED)
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Start of the current run of failures; cleared by any success.
    first_failure_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        permissions = [("toggle_webhookendpoint", "Can enable or disable a webhook endpoint")]
        indexes = [models.Index(fields=["merchant", "status"], name="webhook_endpoint_merchant")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.url}"

    @property
    def is_enabled(self) -> bool:
        return self.status == self.Status.ENABLED

    def subscribes_to(self, event_type: str) -> bool:
        return not self.events or event_type in self.events

    def signing_secrets(self, now=None) -> list[str]:
        """Return the secrets signing now: the current one, then the previous one during the overlap."""
        now = now or timezone.now()
        secrets_ = [decrypt(self.secret_encrypted)]
        if (
            self.previous_secret_encrypted
            and self.previous_secret_expires_at is not None
            and now < self.previous_secret_expires_at
        ):
            secrets_.append(decrypt(self.previous_secret_encrypted))
        return secrets_


class NotificationPreference(models.Model):
    """Which event types a merchant wants on one channel (email, SMS, in-app), and to whom."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")
        INAPP = "inapp", _("In-app")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="notification_preferences")
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    enabled = models.BooleanField(_("enabled"), default=True)
    events = models.JSONField(
        _("events"), default=list, blank=True, help_text=_("Event types sent; empty sends every type.")
    )
    recipients = models.JSONField(
        _("recipients"),
        default=list,
        blank=True,
        help_text=_(
            "Email addresses or phone numbers (E.164). Empty email recipients mean the owners; "
            "in-app notifications go to every member."
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("notification preference")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "channel"], name="notification_pref_unique_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.merchant} {self.channel}"

    def subscribes_to(self, event_type: str) -> bool:
        return self.enabled and (not self.events or event_type in self.events)


class GatewayAccount(models.Model):
    """A merchant's credentials at one payment provider (Alipay, WeChat Pay, PayPal).

    Private keys and secrets are encrypted at rest and never shown again after
    entry. Provider public keys are not secret: `public_keys` maps a key id to
    a PEM public key or certificate (WeChat Pay selects by Wechatpay-Serial;
    Alipay uses any listed key, so a rotation can list old and new).
    """

    class Gateway(models.TextChoices):
        ALIPAY = "alipay", _("Alipay")
        WECHAT_PAY = "wechat_pay", _("WeChat Pay")
        PAYPAL = "paypal", _("PayPal")
        ALIPAY_TRANSFER = "alipay_transfer", _("Alipay transfers")
        WECHAT_TRANSFER = "wechat_transfer", _("WeChat Pay transfers")

    class Environment(models.TextChoices):
        SANDBOX = "sandbox", _("Sandbox")
        LIVE = "live", _("Live")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="gateway_accounts")
    gateway = models.CharField(_("gateway"), max_length=32, choices=Gateway.choices)
    environment = models.CharField(
        _("environment"), max_length=10, choices=Environment.choices, default=Environment.SANDBOX
    )
    app_id = models.CharField(
        _("app id / client id"),
        max_length=128,
        blank=True,
        help_text=_("Alipay app_id, WeChat Pay appid, PayPal REST client id."),
    )
    mch_id = models.CharField(
        _("merchant number"), max_length=64, blank=True, help_text=_("WeChat Pay mchid.")
    )
    key_serial = models.CharField(
        _("merchant certificate serial"),
        max_length=128,
        blank=True,
        help_text=_("WeChat Pay: serial number of the merchant API certificate."),
    )
    private_key = EncryptedTextField(
        _("private key"),
        blank=True,
        help_text=_("Alipay application private key or WeChat Pay merchant API key (PEM or base64)."),
    )
    secret = EncryptedTextField(
        _("secret"), blank=True, help_text=_("WeChat Pay APIv3 key or PayPal client secret.")
    )
    public_keys = models.JSONField(
        _("provider public keys"),
        default=dict,
        blank=True,
        help_text=_("Key id to PEM public key or certificate: Alipay public key, WeChat Pay platform keys."),
    )
    webhook_id = models.CharField(
        _("webhook id"), max_length=64, blank=True, help_text=_("PayPal webhook id.")
    )
    # Alipay's public-key-certificate mode (the fund APIs require it): the application's
    # public-key certificate and Alipay's root certificate chain give app_cert_sn and
    # alipay_root_cert_sn; Alipay's public-key certificates go in public_keys under their SN.
    app_certificate = models.TextField(
        _("application public-key certificate"),
        blank=True,
        help_text=_("Alipay certificate mode: appCertPublicKey_<app_id>.crt (PEM)."),
    )
    root_certificate = models.TextField(
        _("Alipay root certificate"),
        blank=True,
        help_text=_("Alipay certificate mode: alipayRootCert.crt (PEM, the whole chain)."),
    )
    transfer_scene_id = models.CharField(
        _("transfer scene id"),
        max_length=36,
        blank=True,
        help_text=_("WeChat Pay transfers: the transfer scene granted to the merchant, e.g. 1005."),
    )
    transfer_scene_report_infos = models.JSONField(
        _("transfer scene report"),
        default=list,
        blank=True,
        help_text=_('WeChat Pay transfers: [{"info_type": ..., "info_content": ...}] required by the scene.'),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Fields each gateway needs before it can take payments.
    REQUIRED = {
        Gateway.ALIPAY: ("app_id", "private_key", "public_keys"),
        Gateway.WECHAT_PAY: ("app_id", "mch_id", "key_serial", "private_key", "secret", "public_keys"),
        Gateway.PAYPAL: ("app_id", "secret", "webhook_id"),
        Gateway.ALIPAY_TRANSFER: (
            "app_id",
            "private_key",
            "app_certificate",
            "root_certificate",
            "public_keys",
        ),
        Gateway.WECHAT_TRANSFER: (
            "app_id",
            "mch_id",
            "key_serial",
            "private_key",
            "secret",
            "public_keys",
            "transfer_scene_id",
        ),
    }

    class Meta:
        verbose_name = _("gateway account")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "gateway"], name="gateway_account_unique_gateway"),
        ]

    def __str__(self) -> str:
        return f"{self.merchant} {self.get_gateway_display()} ({self.environment})"

    def missing_fields(self) -> list[str]:
        """Return the names of the fields this account's gateway needs and that are empty."""
        return [name for name in self.REQUIRED.get(self.gateway, ()) if not getattr(self, name)]


class FundingAccount(models.Model):
    """A merchant's bank account that payouts are paid from (the debtor of a bank file).

    Identified by an IBAN or a local account number, its bank by a BIC or a
    local bank code. One account per currency may be the default: a batch
    pays its rows of that currency from it unless the upload names another.
    """

    public_id = PublicIdField(prefix="fac")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="funding_accounts")
    name = models.CharField(_("account holder name"), max_length=140)
    iban = models.CharField(_("IBAN"), max_length=34, blank=True)
    account_number = models.CharField(
        _("account number"),
        max_length=34,
        blank=True,
        help_text=_("A local account number, without an IBAN."),
    )
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    bank_code = models.CharField(
        _("bank code"),
        max_length=35,
        blank=True,
        help_text=_("A local bank or clearing code, without a BIC."),
    )
    currency = models.CharField(_("currency"), max_length=3)
    is_default = models.BooleanField(_("default for its currency"), default=False)
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("funding account")
        ordering = ["currency", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "currency"],
                condition=models.Q(is_default=True),
                name="funding_account_one_default",
            ),
            models.CheckConstraint(
                condition=~models.Q(iban="") | ~models.Q(account_number=""),
                name="funding_account_identified",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.display_number} ({self.currency})"

    @property
    def display_number(self) -> str:
        number = self.iban or self.account_number
        return "•••• " + number[-4:] if len(number) > 4 else number


class AuditEntry(models.Model):
    """One sensitive action, as it happened; written by merchants.audit.audit_record, never changed.

    Append-only: saving an existing entry or deleting one raises. Secret values
    are masked before they get here.
    """

    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    actor = models.CharField(_("actor"), max_length=80)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    merchant = models.ForeignKey(
        Merchant, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    action = models.CharField(_("action"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=64, blank=True)
    object_id = models.CharField(_("object"), max_length=64, blank=True)
    before = models.JSONField(_("before"), default=dict, blank=True)
    after = models.JSONField(_("after"), default=dict, blank=True)
    ip = models.GenericIPAddressField(_("client address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        indexes = [
            models.Index(fields=["merchant", "-created_at", "-id"], name="audit_merchant_recent"),
            models.Index(fields=["action", "-created_at"], name="audit_action_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_id}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit entries are append-only.")


class Invitation(models.Model):
    """An invitation to join a merchant's team with a role, sent by e-mail.

    Only the hash of the token is stored; the link works once and until
    `expires_at` (settings.PAYDESK_INVITATION_HOURS after it was sent).
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(_("e-mail"))
    role = models.CharField(_("role"), max_length=20, choices=Membership.Role.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} -> {self.merchant} ({self.role})"

    @staticmethod
    def hash_token(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    def is_open(self, now=None) -> bool:
        now = now or timezone.now()
        return self.accepted_at is None and self.revoked_at is None and now < self.expires_at
