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
from payments.risk import BatchScorer

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
    reference rates, the merchant's volume today and this month, the risk scorer's history), for
    batch ingestion: no query may run while its COPY stream is open."""
    memo: dict = {}
    _blocklist(merchant, memo)
    memo["sanctions"] = _sanctions()
    memo["rates_table"] = latest_rates(None)
    if merchant.daily_cap_minor or merchant.monthly_cap_minor:
        # The merchant's volume before the file; the file's rows not held are added as they pass
        # (`batch_row_passed`), so the row that takes the total over a cap is the one held.
        volume: dict[str, int | RateUnavailable] = {}
        for code, start in _cap_starts():
            try:
                volume[code] = _volume_since(merchant, start, memo)
            except RateUnavailable as exc:
                volume[code] = exc
        memo["batch_volume"] = volume
        memo["batch_passed"] = 0
    memo["risk_scorer"] = BatchScorer(merchant, memo)
    return memo


def batch_row_passed(merchant: Merchant, memo: dict, *, amount_minor: int, currency: str) -> None:
    """Count a batch row that is not held into the file's volume for the daily and monthly caps."""
    if "batch_volume" in memo:
        try:
            memo["batch_passed"] += _in_base(merchant, amount_minor, currency, memo)
        except RateUnavailable:
            pass  # such a row is held (rate_unavailable) whenever a cap is set: never reached


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
    recent_to_account: int = 0,
) -> list[HoldReason]:
    """Why this payment must be held for review (empty: it may go on).

    A batch row (`realtime=False`) reads nothing here: the volume so far comes from the memo
    (`controls_prepare`, plus the file's rows passed so far), `recent_to_account` is how many
    payments went to its account in the last hour (committed ones, read per block, plus the file's
    earlier rows), and velocity per merchant per minute, a rule against bursts of API or dashboard
    payments, does not apply to the rows of one upload approved as a whole (docs/privacy.md)."""
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
    volume = merchant.daily_cap_minor or merchant.monthly_cap_minor
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
    if merchant.velocity_per_beneficiary_hour and account_hash:
        if realtime:
            since = timezone.now() - timedelta(hours=1)
            recent = Payment.objects.filter(
                merchant=merchant, beneficiary_account_hash=account_hash, created_at__gte=since
            ).count()
        else:
            recent = recent_to_account
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


def _cap_starts() -> list[tuple[str, Any]]:
    now = timezone.localtime()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return [("daily_cap", day_start), ("monthly_cap", day_start.replace(day=1))]


def _volume_reasons(merchant: Merchant, amount: int, memo: dict | None) -> list[HoldReason]:
    reasons = []
    starts = dict(_cap_starts())
    batch_volume = memo.get("batch_volume") if memo is not None else None
    for cap, code, label in (
        (merchant.daily_cap_minor, "daily_cap", _("today's")),
        (merchant.monthly_cap_minor, "monthly_cap", _("this month's")),
    ):
        if not cap:
            continue
        try:
            if batch_volume is not None:
                before = batch_volume[code]
                if isinstance(before, RateUnavailable):
                    raise RateUnavailable(str(before))
                total = before + memo["batch_passed"]
            else:
                total = _volume_since(merchant, starts[code], memo)
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
