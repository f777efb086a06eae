"""The one specification of payment input, used by the API, the dashboard form and batch rows.

Every field of a payment (amount, currency, method, beneficiary name,
account, e-mail, phone, reference, description, metadata) is described once
here: its length, its pattern, the error code and message of a value that
breaks it. `validate_payment_input` applies all of it; the API serializer
(payments/api/serializers.py) builds its fields and its OpenAPI schema from
the same `TEXT_FIELDS`, `METADATA_*` and codes, and the dashboard form
(payments/forms.py) only collects strings and shows the errors found here.
So the same input gets the same verdict and the same error code everywhere.

What differs between the three is the transport, not the rule: HTML forms
and file cells are stripped of surrounding whitespace and a file's currency
may be written in lower case, while the API takes values as sent (its
schema says so): `" R-1"` is refused by the API and is `R-1` in a file.

Rules only: whether the gateway routed for a method can take the payment is
asked by the services (payments/services/payment_input.py), which pass that
check in as `route_check`; this module imports no gateway.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from merchants.models import Merchant
from payments.models import Method
from payments.money import MoneyError, format_minor, normalize_currency, parse_amount

REQUIRED_FIELDS = (
    "reference",
    "amount",
    "currency",
    "method",
    "beneficiary_name",
    "beneficiary_account",
)
OPTIONAL_FIELDS = ("beneficiary_email", "beneficiary_phone", "description")
METHODS = frozenset(Method.values)
METHOD_LIST = ", ".join(Method.values)

# Patterns match the whole (stripped) value. They are written so that Python's `re` and the
# ECMA regular expressions of the OpenAPI schema read them alike.
REFERENCE_PATTERN = r"^[\w.\-/:#]+$"
NAME_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"
ACCOUNT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 .@_+-]{2,62}[A-Za-z0-9.@_+-]$"
# The dot-atom of RFC 5322 (no quoted local parts, no comments) at an ASCII domain name.
EMAIL_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
EMAIL_PATTERN = (
    rf"^{EMAIL_ATEXT}+(\.{EMAIL_ATEXT}+)*@([A-Za-z0-9]([A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+[A-Za-z]{{2,63}}$"
)
PHONE_PATTERN = r"^\+?[0-9()-][0-9 ()-]{4,30}[0-9()-]$"
NO_NUL_PATTERN = r"^[^\x00]*$"
REFERENCE_RE = re.compile(REFERENCE_PATTERN)


@dataclass(frozen=True)
class TextField:
    """One text field of a payment: its limit, its pattern and the error of a value that breaks it."""

    name: str
    max_length: int
    required: bool
    pattern: str
    code: str
    message: Promise

    @property
    def regex(self) -> re.Pattern:
        return _compiled(self.pattern)


_REGEXES: dict[str, re.Pattern] = {}


def _compiled(pattern: str) -> re.Pattern:
    regex = _REGEXES.get(pattern)
    if regex is None:
        regex = _REGEXES[pattern] = re.compile(pattern)
    return regex


# The text fields, in the order their errors are reported. `method` is a choice, checked apart.
TEXT_FIELDS = (
    TextField(
        "reference", 140, True, REFERENCE_PATTERN, "invalid_reference",
        gettext_lazy("Use letters, digits and . - _ / : # only."),
    ),
    TextField(
        "beneficiary_name", 140, True, NAME_PATTERN, "invalid_name",
        gettext_lazy("Enter the beneficiary's name."),
    ),
    TextField(
        "beneficiary_account", 64, True, ACCOUNT_PATTERN, "invalid_account",
        gettext_lazy("Not a valid account number."),
    ),
    TextField(
        "beneficiary_email", 254, False, EMAIL_PATTERN, "invalid_email", gettext_lazy("Not a valid email.")
    ),
    TextField(
        "beneficiary_phone", 32, False, PHONE_PATTERN, "invalid_phone",
        gettext_lazy("Not a valid phone number."),
    ),
    TextField(
        "description", 500, False, NO_NUL_PATTERN, "nul", gettext_lazy("May not contain NUL characters.")
    ),
)  # fmt: skip
TEXT = {spec.name: spec for spec in TEXT_FIELDS}
MAX_LENGTHS = {spec.name: spec.max_length for spec in TEXT_FIELDS}
# Where the error of each checked name goes, in the order they are reported.
_TEXT_ORDER = ("reference", "method", "beneficiary_name", "beneficiary_account", *OPTIONAL_FIELDS)

# Metadata: a flat object of strings (as Stripe's), bounded so that it can be copied into every
# Event and webhook of the payment.
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_CHARS = 40
METADATA_MAX_VALUE_CHARS = 500
METADATA_MAX_BYTES = 8 * 1024
METADATA_MESSAGES = {
    "invalid": gettext_lazy("Must be an object whose values are strings."),
    "too_many_keys": gettext_lazy("At most 50 keys."),
    "invalid_key": gettext_lazy("Keys have 1 to 40 characters."),
    "value_too_long": gettext_lazy("Values have at most 500 characters."),
    "nul": gettext_lazy("Keys and values may not contain NUL characters."),
    "too_large": gettext_lazy("Metadata is at most 8 KB (8192 bytes of JSON)."),
}

# Unicode categories a person's or company's name never holds. Unassigned (Cn) and private-use
# (Co) code points in a name are what a file decoded with the wrong encoding leaves behind, and
# what no bank can print: the row is refused rather than paid to a garbled name.
NAME_BAD_CATEGORIES = frozenset({"Cn", "Co", "Cs"})


CARD_DIGITS_RE = re.compile(r"^[0-9][0-9 -]{11,30}[0-9]$")
# The sandbox's own test numbers (DESIGN section 7: the last four choose the outcome): a reserved
# test range no issuer hands out, accepted as test tokens while the card route is the sandbox.
SANDBOX_TEST_CARD_PREFIX = "400000000000"
RAW_CARD_MESSAGE = gettext_lazy(
    "This looks like a card number. Card payments take a token from the card gateway, "
    "never the card number itself (PCI DSS)."
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_raw_card_number(account: str) -> bool:
    """Whether `account` is a primary account number (13-19 digits, Luhn-valid), not a gateway token.

    PayDesk must never store or transmit a card number (that would bring it into PCI DSS scope);
    the sandbox's test range is let through as its test tokens when the sandbox serves cards.
    """
    if not account or not CARD_DIGITS_RE.match(account):
        return False
    digits = account.replace(" ", "").replace("-", "")
    if not (13 <= len(digits) <= 19 and digits.isdigit() and luhn_valid(digits)):
        return False
    sandbox = settings.PAYDESK_GATEWAY_ROUTES.get(Method.CARD) == "sandbox"
    return not (sandbox and digits.startswith(SANDBOX_TEST_CARD_PREFIX) and len(digits) == 16)


@dataclass
class FieldError:
    field: str
    code: str
    message: str


class PaymentInvalid(Exception):
    """Input that cannot become a payment; `errors` lists every problem found."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


# (method, currency) -> (field, code, message) or None: is the routed gateway set up for this?
RouteCheck = Callable[[str, str], tuple[str, str, str] | None]


def text_problem(spec: TextField, value: str) -> tuple[str, str] | None:
    """Return (code, message) if a stripped, non-empty `value` breaks the field's rules, else None."""
    if len(value) > spec.max_length:
        return "too_long", _("At most %(n)d characters.") % {"n": spec.max_length}
    if "\x00" in value:
        # PostgreSQL cannot store it: refused here as the field's error, not by the database.
        return "nul", _("May not contain NUL characters.")
    if not spec.regex.match(value):
        return spec.code, str(spec.message)
    if spec.name == "beneficiary_name" and has_unprintable_letters(value):
        return "invalid_characters", _(
            "The name has characters no bank can print (private-use or unassigned code points); "
            "check the file's encoding."
        )
    return None


def amount_problem(value: object, currency: str) -> tuple[str, str] | None:
    """Return (code, message) if `value` is not an amount of `currency` (limits aside), else None."""
    try:
        parse_amount(value, currency)
    except MoneyError as exc:
        return exc.code, exc.message
    return None


def amount_parse(value: object, currency: str) -> tuple[int | None, str]:
    """(minor units, "") of an amount typed in a form, or (None, the message saying what is wrong)."""
    try:
        return parse_amount(value, currency), ""
    except MoneyError as exc:
        return None, exc.message


def has_unprintable_letters(value: str) -> bool:
    """Whether `value` holds a private-use, unassigned or surrogate code point."""
    return not value.isascii() and any(unicodedata.category(c) in NAME_BAD_CATEGORIES for c in value)


def metadata_problem(value: object) -> str | None:
    """Return the error code of metadata that breaks the rules (see METADATA_MESSAGES), else None."""
    if not isinstance(value, dict):
        return "invalid"
    if len(value) > METADATA_MAX_KEYS:
        return "too_many_keys"
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            return "invalid"
        if not key or len(key) > METADATA_MAX_KEY_CHARS:
            return "invalid_key"
        if len(item) > METADATA_MAX_VALUE_CHARS:
            return "value_too_long"
        if "\x00" in key or "\x00" in item:
            return "nul"
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))
    if size > METADATA_MAX_BYTES:
        return "too_large"
    return None


def validate_payment_input(merchant: Merchant, data: dict, *, route_check: RouteCheck | None = None) -> dict:
    """Return the cleaned fields of a payment (amount as `amount_minor`) or raise PaymentInvalid.

    Checks money (DESIGN section 3), currency allowed for the merchant,
    method, the text fields of TEXT_FIELDS, metadata and the merchant's
    per-payment limit. Uniqueness of `reference` is checked by the caller
    against the database; `route_check`, when given, is asked whether the
    gateway of a valid method can take the payment and its problem is
    reported last.
    """
    errors: list[FieldError] = []
    later: list[FieldError] = []
    clean: dict = {}
    get = data.get

    for name in _TEXT_ORDER:
        value = get(name)
        if value is None:
            value = ""
        elif not isinstance(value, str):
            errors.append(FieldError(name, "invalid", _("Must be a string.")))
            clean[name] = ""
            continue
        value = value.strip()
        clean[name] = value
        required = name == "method" or TEXT[name].required
        if not value:
            if required:
                errors.append(FieldError(name, "required", _("This field is required.")))
            continue
        if name == "method":
            if value not in METHODS:
                later.append(
                    FieldError(
                        name,
                        "invalid_method",
                        _("Unknown method; use one of: %(m)s.") % {"m": METHOD_LIST},
                    )
                )
            continue
        problem = text_problem(TEXT[name], value)
        if problem is not None:
            # Length and NUL are reported with the other shape errors, formats after them.
            (errors if problem[0] in ("too_long", "nul") else later).append(FieldError(name, *problem))
    if (
        clean.get("method") == Method.CARD
        and clean.get("beneficiary_account")
        and not any(e.field == "beneficiary_account" for e in (*errors, *later))
        and is_raw_card_number(clean["beneficiary_account"])
    ):
        later.append(FieldError("beneficiary_account", "raw_card_number", str(RAW_CARD_MESSAGE)))
    errors.extend(later)

    currency = None
    raw_currency = get("currency")
    if raw_currency in (None, ""):
        errors.append(FieldError("currency", "required", _("This field is required.")))
    else:
        try:
            currency = normalize_currency(raw_currency)
        except MoneyError as exc:
            errors.append(FieldError("currency", exc.code, exc.message))
        else:
            if not merchant.allows_currency(currency):
                errors.append(
                    FieldError(
                        "currency",
                        "currency_not_allowed",
                        _("%(c)s is not enabled for this merchant.") % {"c": currency},
                    )
                )
    clean["currency"] = currency or ""

    raw_amount = get("amount")
    if raw_amount in (None, ""):
        errors.append(FieldError("amount", "required", _("This field is required.")))
    elif currency:
        try:
            minor = parse_amount(raw_amount, currency)
        except MoneyError as exc:
            errors.append(FieldError("amount", exc.code, exc.message))
        else:
            limit = merchant.per_payment_limit_minor
            if limit and minor > limit:
                errors.append(
                    FieldError(
                        "amount",
                        "over_limit",
                        _("Amount exceeds the per-payment limit of %(limit)s %(c)s.")
                        % {"limit": format_minor(limit, currency), "c": currency},
                    )
                )
            clean["amount_minor"] = minor

    metadata = get("metadata")
    if metadata is not None:
        code = metadata_problem(metadata)
        if code is not None:
            errors.append(FieldError("metadata", code, str(METADATA_MESSAGES[code])))
            metadata = None
    clean["metadata"] = metadata or {}

    if route_check is not None and clean["method"] in METHODS:
        problem = route_check(clean["method"], clean["currency"])
        if problem is not None:
            errors.append(FieldError(*problem))

    if errors:
        raise PaymentInvalid(errors)
    return clean
