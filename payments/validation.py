"""Validation shared by the dashboard form, the API and batch rows."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from merchants.models import Merchant
from payments.controls import blocklist_errors
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
MAX_LENGTHS = {
    "reference": 140,
    "beneficiary_name": 140,
    "beneficiary_account": 64,
    "beneficiary_phone": 32,
    "description": 500,
}
ACCOUNT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .@_+-]{3,63}$")
METHODS = frozenset(Method.values)
METHOD_LIST = ", ".join(Method.values)
PHONE_RE = re.compile(r"^\+?[0-9 ()-]{6,32}$")
REFERENCE_RE = re.compile(r"^[\w.\-/:#]+$")


CARD_DIGITS_RE = re.compile(r"^[0-9][0-9 -]{11,30}[0-9]$")
# The sandbox's own test numbers (DESIGN section 7: the last four choose the outcome): a reserved
# test range no issuer hands out, accepted as test tokens while the card route is the sandbox.
SANDBOX_TEST_CARD_PREFIX = "400000000000"


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


# The text fields in the order they are checked: (name, maximum length or None, required).
_TEXT_FIELDS = tuple(
    (name, MAX_LENGTHS.get(name), name in REQUIRED_FIELDS)
    for name in (*(f for f in REQUIRED_FIELDS if f not in ("amount", "currency")), *OPTIONAL_FIELDS)
)


def _has_nul(value) -> bool:
    """Whether a JSON value holds a NUL character in any key or string, at any depth."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def validate_payment_input(
    merchant: Merchant, data: dict, *, memo: dict | None = None, payout: bool = False
) -> dict:
    """Return the cleaned fields of a payment (amount as `amount_minor`) or raise PaymentInvalid.

    Checks money (DESIGN section 3), currency allowed for the merchant,
    method, account and contact formats, and the merchant's per-payment
    limit. Uniqueness of `reference` is checked by the caller against the
    database.

    `memo` is an optional dict kept by a caller that validates many inputs
    of one merchant in one unit of work (a batch, under the same settings
    and language): it remembers the gateway set-up check per method and
    currency. Never share one across merchants.

    `payout=True` (batch rows) checks the method against its payout rail
    instead of its real-time gateway.
    """
    errors: list[FieldError] = []
    clean: dict = {}
    get = data.get

    for name, limit, required in _TEXT_FIELDS:
        value = get(name)
        if value is None:
            value = ""
        elif isinstance(value, str):
            value = value.strip()
            if limit and len(value) > limit:
                errors.append(FieldError(name, "too_long", _("At most %(n)d characters.") % {"n": limit}))
            if "\x00" in value:
                # PostgreSQL cannot store it: refused here as the row's error, not by the database.
                errors.append(FieldError(name, "nul", _("May not contain NUL characters.")))
        else:
            errors.append(FieldError(name, "invalid", _("Must be a string.")))
            clean[name] = ""
            continue
        if required and not value:
            errors.append(FieldError(name, "required", _("This field is required.")))
        clean[name] = value

    if clean["reference"] and not REFERENCE_RE.match(clean["reference"]):
        errors.append(
            FieldError(
                "reference",
                "invalid",
                _("Use letters, digits and . - _ / : # only."),
            )
        )
    if clean["method"] and clean["method"] not in METHODS:
        errors.append(
            FieldError(
                "method",
                "invalid_method",
                _("Unknown method; use one of: %(m)s.") % {"m": METHOD_LIST},
            )
        )
    if clean["beneficiary_account"] and not ACCOUNT_RE.match(clean["beneficiary_account"]):
        errors.append(FieldError("beneficiary_account", "invalid_account", _("Not a valid account number.")))
    if clean["method"] == Method.CARD and is_raw_card_number(clean["beneficiary_account"]):
        errors.append(
            FieldError(
                "beneficiary_account",
                "raw_card_number",
                _(
                    "This looks like a card number. Card payments take a token from the card gateway, "
                    "never the card number itself (PCI DSS)."
                ),
            )
        )
    if clean["beneficiary_email"]:
        try:
            validate_email(clean["beneficiary_email"])
        except DjangoValidationError:
            errors.append(FieldError("beneficiary_email", "invalid_email", _("Not a valid email.")))
    if clean["beneficiary_phone"] and not PHONE_RE.match(clean["beneficiary_phone"]):
        errors.append(FieldError("beneficiary_phone", "invalid_phone", _("Not a valid phone number.")))

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
    if metadata is not None and not isinstance(metadata, dict):
        errors.append(FieldError("metadata", "invalid", _("Must be an object.")))
    elif metadata and _has_nul(metadata):
        errors.append(FieldError("metadata", "nul", _("Keys and values may not contain NUL characters.")))
    clean["metadata"] = metadata or {}

    if clean["method"] in METHODS:
        # The gateway routed for the method must be set up for this merchant (and take the currency).
        key = ("setup_problem", clean["method"], clean["currency"])
        if memo is not None and key in memo:
            problem = memo[key]
        else:
            from payments.gateways import setup_problem

            problem = setup_problem(merchant, clean["method"], clean["currency"], payout=payout)
            if memo is not None:
                memo[key] = problem
        if problem is not None:
            errors.append(FieldError(*problem))

    if not errors:
        # The merchant's blocklist (payments/controls.py): refused the same way everywhere.
        errors.extend(FieldError(*e) for e in blocklist_errors(merchant, clean, memo))
    if errors:
        raise PaymentInvalid(errors)
    return clean
