"""Exact money: integer minor units inside, decimal strings at the edges, never float."""

from decimal import Decimal, InvalidOperation

import iso4217
from django.utils.translation import gettext_lazy as _


class MoneyError(ValueError):
    """An amount or currency that cannot be accepted; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Exponents of the codes looked up so far (ISO 4217 data is fixed for the process); failures are
# not kept, so their messages are always translated for the caller.
_EXPONENTS: dict[str, int] = {}
# Accepted spellings of currency codes and their canonical code ("usd" -> "USD"), bounded.
_CODES: dict[str, str] = {}
MAX_REMEMBERED_CODES = 1024
MAX_AMOUNT_CHARS = 32
MAX_MINOR = 10**15
ASCII_NUMBER_CHARS = frozenset("0123456789.-+")


def currency_exponent(currency: str) -> int:
    """Return the ISO 4217 minor-unit exponent (JPY 0, USD 2, KWD 3)."""
    if type(currency) is str:
        exponent = _EXPONENTS.get(currency)
        if exponent is not None:
            return exponent
    try:
        exponent = iso4217.Currency(currency).exponent
    except (ValueError, KeyError, TypeError):
        raise MoneyError("invalid_currency", str(_("Unknown currency code."))) from None
    if exponent is None:  # funds codes and metals (XAU, XDR) are not payable
        raise MoneyError("invalid_currency", str(_("This currency cannot be paid.")))
    if type(currency) is str:
        _EXPONENTS[currency] = exponent
    return exponent


def normalize_currency(value: object) -> str:
    """Return the upper-case ISO 4217 code of `value` (" usd" -> "USD"), or raise MoneyError."""
    if type(value) is str:
        code = _CODES.get(value)
        if code is not None:
            return code
    if not isinstance(value, str) or len(value.strip()) != 3:
        raise MoneyError("invalid_currency", str(_("Currency must be a 3-letter ISO 4217 code.")))
    code = value.strip().upper()
    currency_exponent(code)
    if type(value) is str and len(_CODES) < MAX_REMEMBERED_CODES:
        _CODES[value] = code
    return code


def parse_amount(value: object, currency: str) -> int:
    """Convert a decimal string such as "1234.50" to minor units of `currency`.

    Rejects floats, non-numbers, zero, negatives and more decimals than the
    currency allows. Raise MoneyError.

    Plain strings (ASCII digits with an optional fraction: "12", "12.",
    "12.50", the usual case) are converted without Decimal, with the same
    checks in the same order; everything else (signs, ".5", non-strings)
    takes the Decimal path. Money input is ASCII: digits of other scripts
    (Arabic-Indic, full-width "１２") and exponents are refused everywhere.
    """
    if type(value) is str:
        text = value.strip()
        whole, _dot, fraction = text.partition(".")
        if (
            len(text) <= MAX_AMOUNT_CHARS
            and text.isascii()
            and whole.isdigit()
            and (fraction.isdigit() or not fraction)
        ):
            digits = int(whole + fraction)
            if digits == 0:
                raise MoneyError("amount_not_positive", str(_("Amount must be greater than zero.")))
            exponent = currency_exponent(currency)
            if len(fraction) > exponent:
                raise MoneyError(
                    "too_many_decimals",
                    str(_("%(currency)s amounts allow at most %(places)d decimal places."))
                    % {"currency": currency, "places": exponent},
                )
            minor = digits * 10 ** (exponent - len(fraction))
            if minor > MAX_MINOR:
                raise MoneyError("amount_too_large", str(_("Amount is too large.")))
            return minor
        return _parse_decimal(text, currency)
    return _parse_decimal(value, currency)


def _parse_decimal(value: object, currency: str) -> int:
    """parse_amount for every input that is not a plain digit string."""
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError("invalid_amount", str(_('Amount must be a decimal string such as "12.50".')))
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, Decimal):
        value = str(value)
    if not isinstance(value, str):
        raise MoneyError("invalid_amount", str(_('Amount must be a decimal string such as "12.50".')))
    text = value.strip()
    # ASCII only: str.isdigit() and Decimal() also take other scripts' digits ("١٢", "１２").
    if not text or len(text) > MAX_AMOUNT_CHARS or not all(c in ASCII_NUMBER_CHARS for c in text):
        raise MoneyError("invalid_amount", str(_("Amount is not a number.")))
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise MoneyError("invalid_amount", str(_("Amount is not a number."))) from None
    if not amount.is_finite():
        raise MoneyError("invalid_amount", str(_("Amount is not a number.")))
    if amount <= 0:
        raise MoneyError("amount_not_positive", str(_("Amount must be greater than zero.")))
    exponent = currency_exponent(currency)
    places = -amount.as_tuple().exponent if amount.as_tuple().exponent < 0 else 0
    if places > exponent:
        raise MoneyError(
            "too_many_decimals",
            str(_("%(currency)s amounts allow at most %(places)d decimal places."))
            % {"currency": currency, "places": exponent},
        )
    minor = int(amount.scaleb(exponent))
    if minor > MAX_MINOR:
        raise MoneyError("amount_too_large", str(_("Amount is too large.")))
    return minor


def format_minor(minor: int, currency: str) -> str:
    """Return the canonical decimal string of an amount: 1234.50, 10, 1.234."""
    exponent = currency_exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exponent)
    if exponent == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:0{exponent}d}"
