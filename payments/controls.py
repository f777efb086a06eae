"""Fraud controls checked for every payment, whichever way it came in (API, dashboard, batch row).

Two kinds of rule:
- refusals (`blocklist_errors`, part of the one input spec in payments/validation.py): a blocked
  account, name or country is a field error, so the API answers 422, the dashboard form shows it
  and a batch row becomes a row error with its line;
- holds (`hold_reasons`): the payment is stored but held for review with the reasons in its
  `payment.on_hold` Event (real-time) or its metadata (`hold_reasons`, batch rows): a sanctions
  match, the first-payment cap for a beneficiary never paid before, daily and monthly volume caps,
  velocity per beneficiary and per merchant; a cap that needs a missing or stale exchange rate
  fails closed (`rate_unavailable`).

Amounts are compared in the merchant's base currency (payments/rates.py).
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from rapidfuzz import fuzz, process

from merchants.crypto import field_hash
from merchants.models import Merchant
from payments.models import BlockedEntry, Payment, SanctionedName
from payments.money import format_minor
from payments.rates import RateUnavailable, convert_minor, latest_rates

IBAN_PREFIX = re.compile(r"^([A-Z]{2})[0-9]{2}[A-Z0-9]{10,30}$")
SANCTIONS_TTL = 60  # seconds a process keeps the sanctions list before reading it again


@dataclass(frozen=True)
class HoldReason:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def normalise_name(name: str) -> str:
    """Case, accents, punctuation and spacing folded: `José  O'Neil` -> `jose o neil`."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def iban_country(account: str) -> str:
    compact = "".join(str(account).split()).upper()
    match = IBAN_PREFIX.match(compact)
    return match.group(1) if match else ""


# Refusals --------------------------------------------------------------------------------------


def _blocklist(merchant: Merchant, memo: dict | None) -> dict[str, set[str]]:
    key = ("blocklist", merchant.pk)
    if memo is not None and key in memo:
        return memo[key]
    entries: dict[str, set[str]] = {kind: set() for kind in BlockedEntry.Kind.values}
    stored = (
        BlockedEntry.objects.filter(merchant=merchant)
        if merchant.pk is not None
        else BlockedEntry.objects.none()
    )
    for kind, value in stored.values_list("kind", "value"):
        entries[kind].add(value)
    if memo is not None:
        memo[key] = entries
    return entries


def blocklist_errors(
    merchant: Merchant, clean: dict[str, Any], memo: dict | None = None
) -> list[tuple[str, str, str]]:
    """(field, code, message) of every blocklist entry this payment's input matches."""
    blocked = _blocklist(merchant, memo)
    errors = []
    account = clean.get("beneficiary_account") or ""
    if account and blocked["account"] and field_hash(account) in blocked["account"]:
        errors.append(
            ("beneficiary_account", "blocked_account", _("This account is on the merchant's blocklist."))
        )
    name = clean.get("beneficiary_name") or ""
    if name and blocked["name"] and normalise_name(name) in blocked["name"]:
        errors.append(
            ("beneficiary_name", "blocked_name", _("This beneficiary is on the merchant's blocklist."))
        )
    country = iban_country(account) if blocked["country"] else ""
    if country and country in blocked["country"]:
        errors.append(
            (
                "beneficiary_account",
                "blocked_country",
                _("Payments to accounts in %(country)s are blocked for this merchant.")
                % {"country": country},
            )
        )
    return errors


# Holds -----------------------------------------------------------------------------------------

_sanctions_cache: dict[str, Any] = {"at": 0.0, "names": [], "rows": []}


def _sanctions() -> tuple[list[str], list[tuple[str, str]]]:
    if time.monotonic() - _sanctions_cache["at"] > SANCTIONS_TTL:
        rows = list(SanctionedName.objects.values_list("normalised", "name", "list_name"))
        _sanctions_cache.update(
            at=time.monotonic(), names=[r[0] for r in rows], rows=[(r[1], r[2]) for r in rows]
        )
    return _sanctions_cache["names"], _sanctions_cache["rows"]


def sanctions_listed(memo: dict | None = None) -> bool:
    """Whether a sanctions list is loaded (screening costs nothing without one)."""
    return bool(_sanctions_of(memo)[0])


def _sanctions_of(memo: dict | None) -> tuple[list[str], list[tuple[str, str]]]:
    if memo is not None and "sanctions" in memo:
        return memo["sanctions"]
    return _sanctions()


def controls_prepare(merchant: Merchant) -> dict:
    """A memo holding every answer the controls read from the database (blocklist, sanctions list,
    reference rates), for batch ingestion: no query may run while its COPY stream is open."""
    memo: dict = {}
    _blocklist(merchant, memo)
    memo["sanctions"] = _sanctions()
    memo["rates_table"] = latest_rates(None)
    return memo


def sanctions_reload() -> None:
    """Make the next screening read the list again (after an import)."""
    _sanctions_cache["at"] = 0.0


def sanctions_match(name: str, memo: dict | None = None) -> tuple[str, str, float] | None:
    """(listed name, list, score) of the best match at or above the threshold, else None."""
    names, rows = _sanctions_of(memo)
    if not names or not name:
        return None
    best = process.extractOne(
        normalise_name(name),
        names,
        scorer=fuzz.token_sort_ratio,
        score_cutoff=settings.PAYDESK_SANCTIONS_THRESHOLD,
    )
    if best is None:
        return None
    _choice, score, index = best
    listed, list_name = rows[index]
    return listed, list_name, score


def _in_base(merchant: Merchant, amount_minor: int, currency: str, memo: dict | None) -> int:
    return convert_minor(amount_minor, currency, merchant.base_currency, memo=memo)


def hold_reasons(
    merchant: Merchant,
    *,
    amount_minor: int,
    currency: str,
    beneficiary_name: str,
    account_hash: str,
    new_beneficiary: bool,
    realtime: bool,
    memo: dict | None = None,
) -> list[HoldReason]:
    """Why this payment must be held for review (empty: it may go on)."""
    reasons: list[HoldReason] = []
    match = sanctions_match(beneficiary_name, memo)
    if match is not None:
        listed, list_name, score = match
        reasons.append(
            HoldReason(
                "sanctions_match",
                _("The beneficiary's name matches %(name)s on %(list)s (score %(score)d).")
                % {"name": listed, "list": list_name, "score": round(score)},
            )
        )
    caps = merchant.first_payment_cap_minor and new_beneficiary
    volume = realtime and (merchant.daily_cap_minor or merchant.monthly_cap_minor)
    if caps or volume:
        try:
            amount = _in_base(merchant, amount_minor, currency, memo)
        except RateUnavailable as exc:
            reasons.append(
                HoldReason(
                    "rate_unavailable", _("No fresh exchange rate to check the limits: %(e)s.") % {"e": exc}
                )
            )
        else:
            base = merchant.base_currency
            if caps and amount > merchant.first_payment_cap_minor:
                reasons.append(
                    HoldReason(
                        "first_payment_cap",
                        _("A first payment to this beneficiary above %(cap)s %(base)s.")
                        % {"cap": format_minor(merchant.first_payment_cap_minor, base), "base": base},
                    )
                )
            if volume:
                reasons.extend(_volume_reasons(merchant, amount, memo))
    if realtime and merchant.velocity_per_beneficiary_hour and account_hash:
        since = timezone.now() - timedelta(hours=1)
        recent = Payment.objects.filter(
            merchant=merchant, beneficiary_account_hash=account_hash, created_at__gte=since
        ).count()
        if recent >= merchant.velocity_per_beneficiary_hour:
            reasons.append(
                HoldReason(
                    "velocity_beneficiary",
                    _("More than %(n)d payments to this beneficiary within an hour.")
                    % {"n": merchant.velocity_per_beneficiary_hour},
                )
            )
    if realtime and merchant.velocity_per_minute:
        since = timezone.now() - timedelta(minutes=1)
        recent = Payment.objects.filter(merchant=merchant, created_at__gte=since).count()
        if recent >= merchant.velocity_per_minute:
            reasons.append(
                HoldReason(
                    "velocity_merchant",
                    _("More than %(n)d payments within a minute.") % {"n": merchant.velocity_per_minute},
                )
            )
    return reasons


def _volume_reasons(merchant: Merchant, amount: int, memo: dict | None) -> list[HoldReason]:
    now = timezone.localtime()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    reasons = []
    for cap, start, code, label in (
        (merchant.daily_cap_minor, day_start, "daily_cap", _("today's")),
        (merchant.monthly_cap_minor, month_start, "monthly_cap", _("this month's")),
    ):
        if not cap:
            continue
        try:
            total = _volume_since(merchant, start, memo)
        except RateUnavailable as exc:
            reasons.append(
                HoldReason(
                    "rate_unavailable", _("No fresh exchange rate to check the limits: %(e)s.") % {"e": exc}
                )
            )
            continue
        if total + amount > cap:
            reasons.append(
                HoldReason(
                    code,
                    _("This payment takes %(which)s volume above %(cap)s %(base)s.")
                    % {
                        "which": label,
                        "cap": format_minor(cap, merchant.base_currency),
                        "base": merchant.base_currency,
                    },
                )
            )
    return reasons


def _volume_since(merchant: Merchant, start, memo: dict | None) -> int:
    """The merchant's volume since `start` in base currency (cancelled and failed payments left out)."""
    rows = (
        Payment.objects.filter(merchant=merchant, created_at__gte=start)
        .exclude(status__in=["cancelled", "failed"])
        .values("currency")
        .annotate(total=Sum("amount_minor"))
        .order_by()
    )
    return sum(_in_base(merchant, int(r["total"]), r["currency"], memo) for r in rows)


def is_new_beneficiary(merchant: Merchant, account_hash: str) -> bool:
    """Whether the merchant has never had a payment to this account (index payment_merchant_account)."""
    return not Payment.objects.filter(merchant=merchant, beneficiary_account_hash=account_hash).exists()
