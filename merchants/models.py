import hashlib
import hmac
import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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
    allowed_currencies = models.JSONField(
        _("allowed currencies"),
        default=list,
        blank=True,
        help_text=_("ISO 4217 codes; empty allows every currency."),
    )
    risk_threshold = models.DecimalField(
        _("risk hold threshold"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.950"),
        help_text=_("Payments whose risk probability is above this are held for review."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def allows_currency(self, currency: str) -> bool:
        return not self.allowed_currencies or currency in self.allowed_currencies


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        OPERATOR = "operator", _("Operator")
        APPROVER = "approver", _("Approver")
        VIEWER = "viewer", _("Viewer")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
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
