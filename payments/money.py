"""Exact money: integer minor units inside, decimal strings at the edges, never float."""

from decimal import Decimal, InvalidOperation

import iso4217
from babel import Locale
from babel.numbers import parse_pattern
from django.utils import translation
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


def format_money(minor: int, currency: str, language: str | None = None) -> str:
    """Return an amount for people: the locale's currency symbol and grouping, the ISO exponent.

    ``language`` is a Django language code ("zh-hans"); the active language when None.
    `format_money(123450, "CNY")` is "CN¥1,234.50" in English and "¥1,234.50" in Chinese;
    JPY never shows decimals, KWD shows three, whatever CLDR's own rounding says.
    """
    exponent = currency_exponent(currency)
    locale = Locale.parse(translation.to_locale(language or translation.get_language() or "en"))
    pattern = parse_pattern(locale.currency_formats["standard"])
    pattern.frac_prec = (exponent, exponent)
    amount = Decimal(minor).scaleb(-exponent)
    return pattern.apply(amount, locale, currency=currency, currency_digits=False)


# Chinese capital numerals (大写金额) as banks and the 支付结算办法 require them on cheques and
# payment orders: 壹拾 (never a bare 拾), one 零 for any run of zeros, 整 after 元 only.
_CAPITAL_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_CAPITAL_UNITS = ("", "拾", "佰", "仟")


def _capital_below_10000(n: int) -> str:
    out, zero = "", False
    for power in (3, 2, 1, 0):
        digit = n // 10**power % 10
        if digit == 0:
            zero = bool(out)
        else:
            out += ("零" if zero else "") + _CAPITAL_DIGITS[digit] + _CAPITAL_UNITS[power]
            zero = False
    return out


def _capital_integer(n: int) -> str:
    """Spell a positive integer: sections of four digits joined by 万 and 亿 (壹万亿 and beyond)."""
    if n >= 10**8:
        high, rest = divmod(n, 10**8)
        unit = "亿"
    elif n >= 10**4:
        high, rest = divmod(n, 10**4)
        unit = "万"
    else:
        return _capital_below_10000(n)
    text = _capital_integer(high) + unit
    if rest:
        # A gap of zeros before the rest (100,005 -> 壹拾万零伍) is one 零.
        gap = rest < (10**7 if unit == "亿" else 10**3)
        text += ("零" if gap else "") + _capital_integer(rest)
    return text


def cny_in_words(minor: int) -> str:
    """Return a CNY amount in fen as capital numerals: 123400 -> 壹仟贰佰叁拾肆元整.

    The rules of 《正确填写票据和结算凭证的基本规定》: 整 after 元 when there are no 角 and 分,
    none after 角 or 分; 零 after 元 when the 元 digit or the 角 is zero and something follows
    (¥1,680.32 壹仟陆佰捌拾元零叁角贰分, ¥16,409.02 壹万陆仟肆佰零玖元零贰分); below one yuan
    only 角 and 分 (¥0.50 伍角).
    """
    if minor < 0:
        return "负" + cny_in_words(-minor)
    yuan, cents = divmod(minor, 100)
    jiao, fen = divmod(cents, 10)
    if yuan == 0 and cents == 0:
        return "零元整"
    text = _capital_integer(yuan) + "元" if yuan else ""
    if cents == 0:
        return text + "整"
    if yuan and (yuan % 10 == 0 or jiao == 0):
        text += "零"
    if jiao:
        text += _CAPITAL_DIGITS[jiao] + "角"
    if fen:
        text += _CAPITAL_DIGITS[fen] + "分"
    return text
