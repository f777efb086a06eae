"""Money is exact: decimal strings in, integer minor units inside, never float."""

import ast
from decimal import Decimal
from pathlib import Path

import pytest

from payments.money import MoneyError, currency_exponent, format_minor, normalize_currency, parse_amount
from payments.services.payments import payment_create
from payments.validation import PaymentInvalid
from tests.factories import payment_input


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("1.234", "KWD", 1234),
        ("1000", "JPY", 1000),
        ("12.5", "USD", 1250),
        ("0.01", "EUR", 1),
        ("1234.50", "CNY", 123450),
        ("99999999.99", "USD", 9999999999),
    ],
)
def test_valid_amounts_convert_exactly(amount, currency, minor):
    assert parse_amount(amount, currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        ("10.5", "JPY", "too_many_decimals"),
        ("1.234", "USD", "too_many_decimals"),
        ("1.2345", "KWD", "too_many_decimals"),
        ("0", "USD", "amount_not_positive"),
        ("0.00", "USD", "amount_not_positive"),
        ("-5.00", "USD", "amount_not_positive"),
        ("abc", "USD", "invalid_amount"),
        ("1e3", "USD", "invalid_amount"),
        ("NaN", "USD", "invalid_amount"),
        ("", "USD", "invalid_amount"),
        (12.5, "USD", "invalid_amount"),
        # Money input is ASCII only: other scripts' digits are digits to str.isdigit() and Decimal().
        ("\u0661\u0662", "USD", "invalid_amount"),  # Arabic-Indic 12
        ("\uff11\uff12", "USD", "invalid_amount"),  # full-width 12
        ("\u0967.50", "USD", "invalid_amount"),  # Devanagari 1
        ("1\uff10.00", "USD", "invalid_amount"),
    ],
)
def test_bad_amounts_are_rejected_with_a_code(amount, currency, code):
    with pytest.raises(MoneyError) as exc:
        parse_amount(amount, currency)
    assert exc.value.code == code
    assert exc.value.message


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.", "USD", 1200),
        ("007.50", "USD", 750),
        (" 12.50\t", "USD", 1250),
        ("1.500", "KWD", 1500),
        ("+5", "USD", 500),
        (".5", "USD", 50),
        ("10000000000000", "USD", 10**15),
        ("1000000000000000", "JPY", 10**15),
        (Decimal("2.50"), "USD", 250),
        (10, "JPY", 10),
    ],
)
def test_plain_and_unusual_spellings_convert_exactly(amount, currency, minor):
    assert parse_amount(amount, currency) == minor
    assert parse_amount(amount, currency) == minor  # and again, with the currency's exponent remembered


@pytest.mark.parametrize(
    ("amount", "currency", "code", "message"),
    [
        ("1.500", "USD", "too_many_decimals", "USD amounts allow at most 2 decimal places."),
        ("1.", "XXX", "invalid_currency", "This currency cannot be paid."),
        ("0.000", "USD", "amount_not_positive", "Amount must be greater than zero."),
        ("0", "ZZZ", "amount_not_positive", "Amount must be greater than zero."),
        ("1", "ZZZ", "invalid_currency", "Unknown currency code."),
        ("1", "XAU", "invalid_currency", "This currency cannot be paid."),
        ("10000000000000.01", "USD", "amount_too_large", "Amount is too large."),
        ("9" * 32, "USD", "amount_too_large", "Amount is too large."),
        ("1" * 33, "USD", "invalid_amount", "Amount is not a number."),
        ("1.2.3", "USD", "invalid_amount", "Amount is not a number."),
        ("1,50", "USD", "invalid_amount", "Amount is not a number."),
        ("12 50", "USD", "invalid_amount", "Amount is not a number."),
        ("1_000", "USD", "invalid_amount", "Amount is not a number."),
        ("\u00b2", "USD", "invalid_amount", "Amount is not a number."),  # superscript two: Decimal refuses
        ("-0", "USD", "amount_not_positive", "Amount must be greater than zero."),
        (".", "USD", "invalid_amount", "Amount is not a number."),
        (True, "USD", "invalid_amount", 'Amount must be a decimal string such as "12.50".'),
        (None, "USD", "invalid_amount", 'Amount must be a decimal string such as "12.50".'),
    ],
)
def test_every_rejection_keeps_its_code_message_and_precedence(amount, currency, code, message):
    for _ in range(2):  # the second time with the currency's exponent remembered, if it has one
        with pytest.raises(MoneyError) as exc:
            parse_amount(amount, currency)
        assert (exc.value.code, exc.value.message) == (code, message)


def test_currencies_are_normalised_and_unknown_ones_refused_every_time():
    assert normalize_currency(" usd ") == normalize_currency(" usd ") == "USD"
    assert currency_exponent("KWD") == currency_exponent("KWD") == 3
    for _ in range(2):
        with pytest.raises(MoneyError, match="3-letter"):
            normalize_currency("usdx")
        with pytest.raises(MoneyError, match="Unknown currency code"):
            normalize_currency("zzz")
        with pytest.raises(MoneyError, match="cannot be paid"):
            currency_exponent("XDR")


def test_unknown_currency_is_rejected():
    with pytest.raises(MoneyError) as exc:
        parse_amount("1.00", "ZZZ")
    assert exc.value.code == "invalid_currency"


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(123450, "USD", "1234.50"), (1234, "KWD", "1.234"), (100, "JPY", "100"), (5, "USD", "0.05")],
)
def test_format_minor(minor, currency, text):
    assert format_minor(minor, currency) == text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        ("10.5", "JPY", "too_many_decimals"),
        ("1.234", "USD", "too_many_decimals"),
        ("0", "USD", "amount_not_positive"),
        ("-1", "USD", "amount_not_positive"),
        ("ten", "USD", "invalid_amount"),
    ],
)
def test_payment_create_rejects_bad_money_and_stores_nothing(merchant_a, amount, currency, code):
    with pytest.raises(PaymentInvalid) as exc:
        payment_create(merchant=merchant_a, data=payment_input(amount=amount, currency=currency))
    assert [(e.field, e.code) for e in exc.value.errors] == [("amount", code)]
    assert merchant_a.payments.count() == 0


@pytest.mark.django_db
def test_amount_above_merchant_limit_is_rejected(merchant_a):
    merchant_a.per_payment_limit_minor = 50000
    merchant_a.save()
    with pytest.raises(PaymentInvalid) as exc:
        payment_create(merchant=merchant_a, data=payment_input(amount="500.01"), submit=False)
    error = exc.value.errors[0]
    assert (error.field, error.code) == ("amount", "over_limit")
    assert "500.00" in error.message


@pytest.mark.django_db
def test_kwd_with_three_decimals_is_accepted(merchant_a):
    payment = payment_create(
        merchant=merchant_a, data=payment_input(amount="1.234", currency="KWD"), submit=False
    )
    assert payment.amount_minor == 1234 and payment.amount == "1.234"


MONEY_MODULES = [
    "payments/money.py",
    "payments/validation.py",
    "payments/representations.py",
    "payments/services/payments.py",
    "payments/services/refunds.py",
]


def test_no_float_on_money_paths():
    """No float() call or float literal in the modules that handle amounts."""
    root = Path(__file__).resolve().parents[2]
    files = []
    for name in MONEY_MODULES:
        path = root / name
        files.extend(path.rglob("*.py") if path.is_dir() else [path])
    offenders = []
    for file in files:
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "float":
                offenders.append(f"{file}:{node.lineno}")
            if isinstance(node, ast.Constant) and isinstance(node.value, float):
                offenders.append(f"{file}:{node.lineno}")
    assert offenders == []
