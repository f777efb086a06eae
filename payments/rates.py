"""Reference exchange rates: reading them (ECB eurofxref XML, a simple CSV) and converting with them.

A rate says 1 `base` = `rate` `currency` on a day. Amounts are converted
through a base both currencies have a rate from (the ECB's rates are all from
EUR), exactly in Decimal and rounded half-up to the target's minor unit. A rate
older than PAYDESK_RATE_MAX_AGE_DAYS is stale: the caps that need it then fail
closed (payments/controls.py holds the payment).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from defusedxml import ElementTree
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from payments.models import ExchangeRate
from payments.money import MoneyError, currency_exponent, normalize_currency

ECB_NS = "http://www.ecb.int/vocabulary/2002-08-01/eurofxref"


class RatesInvalid(Exception):
    """A rates file that cannot be read; nothing of it is stored."""


class RateUnavailable(Exception):
    """No fresh rate converts between the two currencies."""


@dataclass(frozen=True)
class Rate:
    day: date
    base: str
    currency: str
    rate: Decimal


def parse_eurofxref(data: bytes) -> list[Rate]:
    """The rates of an ECB eurofxref file (daily, 90-day or historic XML); raise RatesInvalid."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise RatesInvalid(f"not XML: {exc}") from None
    except Exception as exc:  # defusedxml refuses entities and DTDs with its own exceptions
        raise RatesInvalid(f"refused XML: {exc.__class__.__name__}") from None
    rates = []
    for day_cube in root.iter(f"{{{ECB_NS}}}Cube"):
        when = day_cube.get("time")
        if not when:
            continue
        try:
            day = date.fromisoformat(when)
        except ValueError:
            raise RatesInvalid(f"bad date {when!r}") from None
        for cube in day_cube.findall(f"{{{ECB_NS}}}Cube"):
            try:
                currency = normalize_currency(cube.get("currency", ""))
            except MoneyError:
                continue  # a currency PayDesk cannot pay in (withdrawn, or unknown to ISO 4217 data)
            rates.append(_rate(day, "EUR", currency, cube.get("rate", "")))
    if not rates:
        raise RatesInvalid("no rates in the file (not an ECB eurofxref file?)")
    return rates


def parse_rates_csv(text: str) -> list[Rate]:
    """Rates from a CSV with the header `date,base,currency,rate`; raise RatesInvalid."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if set(reader.fieldnames or []) < {"date", "base", "currency", "rate"}:
        raise RatesInvalid("the header must be date,base,currency,rate")
    rates = []
    for line, row in enumerate(reader, start=2):
        try:
            day = date.fromisoformat((row["date"] or "").strip())
        except ValueError:
            raise RatesInvalid(f"line {line}: bad date {row['date']!r}") from None
        rates.append(_rate(day, row["base"], row["currency"], row["rate"], line=line))
    if not rates:
        raise RatesInvalid("no rates in the file")
    return rates


def parse_rates(data: bytes) -> list[Rate]:
    """XML (eurofxref) or CSV, told apart by the first character."""
    text = data.lstrip(b"\xef\xbb\xbf \r\n\t")
    if text.startswith(b"<"):
        return parse_eurofxref(data)
    try:
        return parse_rates_csv(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise RatesInvalid("the CSV is not UTF-8") from None


def _rate(day: date, base: str, currency: str, rate: str, line: int | None = None) -> Rate:
    where = f"line {line}: " if line else ""
    try:
        base, currency = normalize_currency(base), normalize_currency(currency)
        value = Decimal(str(rate).strip())
    except (MoneyError, InvalidOperation):
        raise RatesInvalid(f"{where}bad rate {base!r}/{currency!r} {rate!r}") from None
    if not value.is_finite() or value <= 0:
        raise RatesInvalid(f"{where}rate must be positive: {rate!r}")
    return Rate(day, base, currency, value)


def rates_import(rates: list[Rate], *, source: str) -> int:
    """Store the rates (a rate already known for its day is replaced); return how many."""
    with transaction.atomic():
        for r in rates:
            ExchangeRate.objects.update_or_create(
                base=r.base, currency=r.currency, date=r.day, defaults={"rate": r.rate, "source": source[:40]}
            )
    return len(rates)


# Converting -------------------------------------------------------------------------------------


def max_age() -> timedelta:
    return timedelta(days=settings.PAYDESK_RATE_MAX_AGE_DAYS)


def latest_rates(currencies: set[str] | None) -> dict[tuple[str, str], ExchangeRate]:
    """The newest rate of each (base, currency) for these currencies (None: all), fresh or not."""
    qs = ExchangeRate.objects.order_by("base", "currency", "-date")
    if currencies is not None:
        qs = qs.filter(currency__in=currencies)
    found: dict[tuple[str, str], ExchangeRate] = {}
    for rate in qs:
        found.setdefault((rate.base, rate.currency), rate)
    return found


def convert_minor(
    amount_minor: int, currency: str, target: str, *, today: date | None = None, memo=None
) -> int:
    """`amount_minor` of `currency` in minor units of `target`; raise RateUnavailable (missing or stale)."""
    if currency == target:
        return amount_minor
    key = ("rate", currency, target)
    if memo is not None and key in memo:
        factor = memo[key]
    else:
        table = memo.get("rates_table") if memo is not None else None
        factor = _factor(currency, target, today or timezone.localdate(), table)
        if memo is not None:
            memo[key] = factor
    if isinstance(factor, RateUnavailable):
        raise factor
    major = Decimal(amount_minor).scaleb(-currency_exponent(currency)) * factor
    return int(major.scaleb(currency_exponent(target)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _factor(currency: str, target: str, today: date, table: dict | None = None) -> Decimal | RateUnavailable:
    rates = latest_rates({currency, target}) if table is None else table
    bases = {base for base, _cur in rates} | {currency, target}
    oldest_ok = today - max_age()
    stale = None
    for base in sorted(bases):
        legs = []
        for cur in (currency, target):
            if cur == base:
                legs.append(Decimal(1))
                continue
            rate = rates.get((base, cur))
            if rate is None:
                break
            if rate.date < oldest_ok:
                stale = rate
                break
            legs.append(rate.rate)
        else:
            return legs[1] / legs[0]
    if stale is not None:
        return RateUnavailable(
            f"the {stale.base}/{stale.currency} rate is from {stale.date}, older than "
            f"{settings.PAYDESK_RATE_MAX_AGE_DAYS} days"
        )
    return RateUnavailable(f"no rate converts {currency} to {target}")


def stale_rates(*, today: date | None = None) -> list[ExchangeRate]:
    """The newest rate of each pair, where it is older than the allowed age (shown on the home page)."""
    oldest_ok = (today or timezone.localdate()) - max_age()
    latest: dict[tuple[str, str], ExchangeRate] = {}
    for rate in ExchangeRate.objects.order_by("base", "currency", "-date"):
        latest.setdefault((rate.base, rate.currency), rate)
    return [r for r in latest.values() if r.date < oldest_ok]
