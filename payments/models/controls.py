"""Fraud controls' data: reference exchange rates, a merchant's blocklist, the sanctions list."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from merchants.models import Merchant


class ExchangeRate(models.Model):
    """One reference rate: 1 `base` = `rate` `currency` on `date`, from `source` (e.g. ECB eurofxref)."""

    base = models.CharField(max_length=3)
    currency = models.CharField(max_length=3)
    rate = models.DecimalField(max_digits=20, decimal_places=10)
    date = models.DateField()
    source = models.CharField(max_length=40)
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["base", "currency", "date"], name="exchange_rate_unique_day"),
            models.CheckConstraint(condition=models.Q(rate__gt=0), name="exchange_rate_positive"),
        ]
        indexes = [models.Index(fields=["currency", "-date"], name="exchange_rate_latest")]

    def __str__(self) -> str:
        return f"1 {self.base} = {self.rate} {self.currency} ({self.date}, {self.source})"


class BlockedEntry(models.Model):
    """A merchant's blocklist entry: a payment to it is refused at entry (API, dashboard, batch row)."""

    class Kind(models.TextChoices):
        ACCOUNT = "account", _("Account")
        NAME = "name", _("Beneficiary name")
        COUNTRY = "country", _("Country (from the IBAN)")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="blocked_entries")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    # Accounts are kept as their keyed hash and last four (never in plaintext); names normalised
    # (case and spaces folded); countries as ISO 3166 alpha-2 codes.
    value = models.CharField(_("value"), max_length=140)
    last4 = models.CharField(max_length=4, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "kind", "value"], name="blocked_entry_unique"),
        ]

    def __str__(self) -> str:
        shown = f"\u2022\u2022\u2022\u2022 {self.last4}" if self.kind == self.Kind.ACCOUNT else self.value
        return f"{self.get_kind_display()}: {shown}"


class SanctionedName(models.Model):
    """A name or alias of an uploaded sanctions list, screened fuzzily against beneficiary names."""

    list_name = models.CharField(_("list"), max_length=80)
    entry_id = models.CharField(_("entry"), max_length=80, blank=True)
    name = models.CharField(_("name"), max_length=300)
    normalised = models.CharField(max_length=300, db_index=True)
    imported_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.list_name})"
