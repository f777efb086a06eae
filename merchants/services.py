"""Merchant, membership, API key and funding account use cases."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from merchants.audit import audit_record
from merchants.models import (
    NOTIFICATION_DEFAULTS,
    ApiKey,
    FundingAccount,
    Membership,
    Merchant,
    NotificationTopic,
    UserProfile,
)

VALID_SCOPES = {s.value for s in ApiKey.Scope}


def merchant_create(*, name: str, owner_email: str, slug: str = "") -> Merchant:
    """Create a merchant and make the user with `owner_email` (created if new) its owner."""
    base = slugify(slug or name)[:70] or "merchant"
    candidate, n = base, 1
    while Merchant.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    User = get_user_model()
    with transaction.atomic():
        merchant = Merchant.objects.create(name=name, slug=candidate)
        user = User.objects.filter(email__iexact=owner_email).first()
        if user is None:
            user = User.objects.create_user(username=owner_email, email=owner_email)
        Membership.objects.create(user=user, merchant=merchant, role=Membership.Role.OWNER)
    return merchant


def api_key_create(
    *, merchant: Merchant, scopes: list[str], name: str = "", created_by=None, request=None
) -> tuple[ApiKey, str]:
    """Create an API key (audited); return it and the raw secret, which is never retrievable again."""
    unknown = set(scopes) - VALID_SCOPES
    if unknown or not scopes:
        raise ValueError(f"Scopes must be among {sorted(VALID_SCOPES)}; got {sorted(scopes)}")
    raw, prefix, key_hash = ApiKey.generate()
    with transaction.atomic():
        key = ApiKey.objects.create(
            merchant=merchant,
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            scopes=sorted(set(scopes)),
            created_by=created_by,
        )
        audit_record(
            action="api_key.created",
            user=created_by,
            merchant=merchant,
            obj=key,
            after={"name": name, "scopes": key.scopes, "prefix": prefix},
            request=request,
        )
    return key, raw


def api_key_revoke(*, key: ApiKey, user=None, reason: str = "", request=None) -> bool:
    """Revoke a key (audited); return False when it was revoked already."""
    with transaction.atomic():
        done = ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=timezone.now()) == 1
        if done:
            audit_record(
                action="api_key.revoked",
                user=user,
                merchant=key.merchant,
                obj=key,
                after={"reason": reason} if reason else {},
                request=request,
            )
    return done


# Funding accounts ---------------------------------------------------------------------------


class FundingAccountInvalid(ValueError):
    """The account's details cannot identify a bank account; `errors` maps a field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def funding_account_clean(
    *, name: str, currency: str, iban: str = "", account_number: str = "", bic: str = "", bank_code: str = ""
) -> dict[str, str]:
    """Return the normalised fields of a funding account or raise FundingAccountInvalid.

    An IBAN and a BIC are checked (checksum, country, length) with schwifty;
    a local account number and bank code are taken as given.
    """
    errors: dict[str, str] = {}
    clean = {
        "name": (name or "").strip(),
        "currency": (currency or "").strip().upper(),
        "iban": "",
        "account_number": (account_number or "").strip(),
        "bic": "",
        "bank_code": (bank_code or "").strip(),
    }
    if not clean["name"] or len(clean["name"]) > 140:
        errors["name"] = str(_("Give the account holder's name (at most 140 characters)."))
    if not re.fullmatch(r"[A-Z]{3}", clean["currency"]):
        errors["currency"] = str(_("Give an ISO 4217 currency code, such as EUR."))
    if iban and iban.strip():
        try:
            clean["iban"] = IBAN(iban).compact
        except SchwiftyException as exc:
            errors["iban"] = str(_("Not a valid IBAN: %(reason)s.") % {"reason": exc})
    if bic and bic.strip():
        try:
            clean["bic"] = BIC(bic).compact
        except SchwiftyException as exc:
            errors["bic"] = str(_("Not a valid BIC: %(reason)s.") % {"reason": exc})
    if not clean["iban"] and not clean["account_number"] and "iban" not in errors:
        errors["iban"] = str(_("Give an IBAN or a local account number."))
    if len(clean["account_number"]) > 34 or len(clean["bank_code"]) > 35:
        errors["account_number"] = str(_("The account number or bank code is too long."))
    if errors:
        raise FundingAccountInvalid(errors)
    return clean


def funding_account_create(
    *,
    merchant: Merchant,
    name: str,
    currency: str,
    iban: str = "",
    account_number: str = "",
    bic: str = "",
    bank_code: str = "",
    is_default: bool | None = None,
) -> FundingAccount:
    """Create a funding account; the merchant's first one in a currency becomes its default.

    With `is_default=True` it replaces the current default of its currency.
    Raise FundingAccountInvalid on bad details.
    """
    clean = funding_account_clean(
        name=name, currency=currency, iban=iban, account_number=account_number, bic=bic, bank_code=bank_code
    )
    with transaction.atomic():
        Merchant.objects.select_for_update().get(pk=merchant.pk)  # serialise the default per currency
        has_default = FundingAccount.objects.filter(
            merchant=merchant, currency=clean["currency"], is_default=True
        ).exists()
        default = (not has_default) if is_default is None else is_default
        if default and has_default:
            FundingAccount.objects.filter(merchant=merchant, currency=clean["currency"]).update(
                is_default=False
            )
        return FundingAccount.objects.create(merchant=merchant, is_default=default, **clean)


def funding_account_make_default(*, account: FundingAccount) -> FundingAccount:
    """Make `account` the default of its currency (the previous default stops being one)."""
    with transaction.atomic():
        Merchant.objects.select_for_update().get(pk=account.merchant_id)
        FundingAccount.objects.filter(merchant_id=account.merchant_id, currency=account.currency).exclude(
            pk=account.pk
        ).update(is_default=False)
        FundingAccount.objects.filter(pk=account.pk).update(is_default=True, enabled=True)
    account.refresh_from_db()
    return account


def funding_account_disable(*, account: FundingAccount) -> FundingAccount:
    """Stop paying from `account` (batches validated later cannot use it); it stays for the record."""
    FundingAccount.objects.filter(pk=account.pk).update(enabled=False, is_default=False)
    account.refresh_from_db()
    return account


def merchant_set_full_beneficiary_data(*, merchant: Merchant, enabled: bool, user=None, request=None) -> None:
    """Turn full beneficiary data in API answers and webhooks on or off, audited (docs/privacy.md)."""
    before = merchant.full_beneficiary_data
    if before == enabled:
        return
    with transaction.atomic():
        Merchant.objects.filter(pk=merchant.pk).update(full_beneficiary_data=enabled)
        merchant.full_beneficiary_data = enabled
        audit_record(
            action="merchant.full_beneficiary_data",
            user=user,
            merchant=merchant,
            obj=merchant,
            before={"full_beneficiary_data": before},
            after={"full_beneficiary_data": enabled},
            request=request,
        )


def user_language_set(*, user, language: str) -> UserProfile:
    """Remember the language a person chose (a code of settings.LANGUAGES; "" follows the browser)."""
    if language and language not in dict(settings.LANGUAGES):
        raise ValueError(f"unknown language {language!r}")
    profile, _created = UserProfile.objects.update_or_create(user=user, defaults={"language": language})
    return profile


def user_language(*, user) -> str:
    """Return the language a person chose, or "" when they never chose one."""
    return UserProfile.objects.filter(user=user).values_list("language", flat=True).first() or ""


def user_languages(*, user_ids) -> dict[int, str]:
    """Return {user id: saved language} for those of `user_ids` who chose one."""
    rows = UserProfile.objects.filter(user_id__in=list(user_ids)).exclude(language="")
    return dict(rows.values_list("user_id", "language"))


def address_language(*, email: str) -> str:
    """Return the saved language of the member signing in with `email`, or "" (beneficiaries, strangers)."""
    row = UserProfile.objects.filter(user__username__iexact=email).exclude(language="").first()
    return row.language if row is not None else ""


def membership_notifications_set(
    *, membership: Membership, choices: dict[str, dict[str, bool]]
) -> Membership:
    """Save a member's own notification settings: {topic: {"inapp": bool, "email": bool}}.

    Every topic of NotificationTopic is stored (missing ones get the defaults);
    an unknown topic or channel raises ValueError and nothing is saved.
    """
    unknown = set(choices) - set(NotificationTopic.values)
    bad_channels = {c for chosen in choices.values() for c in chosen} - set(NOTIFICATION_DEFAULTS)
    if unknown or bad_channels:
        raise ValueError(f"unknown topics {sorted(unknown)} or channels {sorted(bad_channels)}")
    settings_ = {
        topic: {
            channel: bool(choices.get(topic, {}).get(channel, default))
            for channel, default in NOTIFICATION_DEFAULTS.items()
        }
        for topic in NotificationTopic.values
    }
    Membership.objects.filter(pk=membership.pk).update(notifications=settings_)
    membership.notifications = settings_
    return membership
