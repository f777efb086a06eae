"""validate_payment_input: every problem reported, in a fixed order; the per-batch memo changes nothing."""

import pytest

from merchants.models import Merchant
from payments.services.payment_input import payment_input_validate
from payments.validation import PaymentInvalid, validate_payment_input

GOOD = {
    "reference": "R-1",
    "method": "card",
    "beneficiary_name": "A",
    "beneficiary_account": "4000000000000002",
    "currency": "EUR",
    "amount": "12.50",
}


@pytest.fixture
def merchant():
    return Merchant(name="M", per_payment_limit_minor=100_000, allowed_currencies=["USD", "EUR"])


def problems(merchant, data, **kwargs):
    with pytest.raises(PaymentInvalid) as exc:
        payment_input_validate(merchant=merchant, data=data, **kwargs)
    return [(e.field, e.code, e.message) for e in exc.value.errors]


def test_every_problem_is_reported_in_field_order(merchant):
    data = {
        "reference": 5,
        "method": None,
        "beneficiary_name": "x" * 141,
        "beneficiary_account": "",
        "beneficiary_email": "bad",
        "beneficiary_phone": "1",
        "description": "d" * 501,
        "currency": "usd",
        "amount": "1.234",
        "metadata": [],
    }
    assert problems(merchant, data) == [
        ("reference", "invalid", "Must be a string."),
        ("method", "required", "This field is required."),
        ("beneficiary_name", "too_long", "At most 140 characters."),
        ("beneficiary_account", "required", "This field is required."),
        ("description", "too_long", "At most 500 characters."),
        ("beneficiary_email", "invalid_email", "Not a valid email."),
        ("beneficiary_phone", "invalid_phone", "Not a valid phone number."),
        ("amount", "too_many_decimals", "USD amounts allow at most 2 decimal places."),
        ("metadata", "invalid", "Must be an object whose values are strings."),
    ]


def test_formats_then_currency_then_amount(merchant):
    data = {
        "reference": "bad ref",
        "method": "cheque",
        "beneficiary_name": " ",
        "beneficiary_account": "-x",
        "beneficiary_phone": 7,
        "currency": "GBP",
        "amount": "5",
    }
    assert problems(merchant, data) == [
        ("beneficiary_name", "required", "This field is required."),
        ("beneficiary_phone", "invalid", "Must be a string."),
        ("reference", "invalid_reference", "Use letters, digits and . - _ / : # only."),
        (
            "method",
            "invalid_method",
            "Unknown method; use one of: card, alipay, wechat_pay, paypal, bank_transfer.",
        ),
        ("beneficiary_account", "invalid_account", "Not a valid account number."),
        ("currency", "currency_not_allowed", "GBP is not enabled for this merchant."),
    ]
    assert problems(merchant, {**GOOD, "amount": "1000.01"}) == [
        ("amount", "over_limit", "Amount exceeds the per-payment limit of 1000.00 EUR.")
    ]
    assert problems(merchant, {**GOOD, "currency": "", "amount": ""}) == [
        ("currency", "required", "This field is required."),
        ("amount", "required", "This field is required."),
    ]


def test_clean_values_are_stripped_and_keep_their_order(merchant):
    clean = validate_payment_input(
        merchant, {**GOOD, "beneficiary_name": "  Ann ", "currency": " usd", "amount": " 7.5 "}
    )
    assert clean == {
        "reference": "R-1",
        "method": "card",
        "beneficiary_name": "Ann",
        "beneficiary_account": "4000000000000002",
        "beneficiary_email": "",
        "beneficiary_phone": "",
        "description": "",
        "currency": "USD",
        "amount_minor": 750,
        "metadata": {},
    }
    assert list(clean) == [
        "reference",
        "method",
        "beneficiary_name",
        "beneficiary_account",
        "beneficiary_email",
        "beneficiary_phone",
        "description",
        "currency",
        "amount_minor",
        "metadata",
    ]


def test_the_memo_asks_for_the_gateway_set_up_once_per_method_and_currency(merchant, monkeypatch):
    import payments.gateways
    import payments.services.payment_input

    calls = []
    real = payments.gateways.setup_problem

    def counting(merchant, method, currency, **options):
        calls.append((method, currency))
        return real(merchant, method, currency, **options)

    monkeypatch.setattr(payments.services.payment_input, "setup_problem", counting)
    monkeypatch.setattr(
        payments.gateways.get_gateway("sandbox"), "SUPPORTED_CURRENCIES", frozenset({"USD"}), raising=False
    )
    memo: dict = {}
    inputs = [GOOD, {**GOOD, "reference": "R-2"}, {**GOOD, "currency": "USD"}, {**GOOD, "amount": "x"}]
    for data in inputs:
        with_memo = without = None
        try:
            with_memo = payment_input_validate(merchant=merchant, data=data, memo=memo)
        except PaymentInvalid as exc:
            with_memo = [(e.field, e.code, e.message) for e in exc.errors]
        try:
            without = payment_input_validate(merchant=merchant, data=data)
        except PaymentInvalid as exc:
            without = [(e.field, e.code, e.message) for e in exc.errors]
        assert with_memo == without
    # Without a memo: every call asks; with one: once per (method, currency).
    assert calls.count(("card", "EUR")) == 1 + 3
    assert calls.count(("card", "USD")) == 1 + 1
    assert problems(merchant, GOOD, memo=memo) == [
        ("currency", "currency_not_supported", "sandbox accepts only USD.")
    ]


def test_nul_characters_are_refused_in_text_and_in_metadata(merchant):
    data = {**GOOD, "description": "a\x00b", "metadata": {"x\x00": "v"}}
    assert problems(merchant, data) == [
        ("description", "nul", "May not contain NUL characters."),
        ("metadata", "nul", "Keys and values may not contain NUL characters."),
    ]
    # The six characters of a written-out escape are ordinary text.
    assert validate_payment_input(merchant, {**GOOD, "metadata": {"k": "\\u0000"}})["metadata"] == {
        "k": "\\u0000"
    }


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ({"k" * 41: "v"}, "invalid_key"),  # a 2 MB key was accepted and copied into every event
        ({"k" * 2_000_000: "v"}, "invalid_key"),
        ({"": "v"}, "invalid_key"),
        ({f"key{i}": "é" * 500 for i in range(9)}, "too_large"),  # 9 x 1000 bytes of UTF-8
        ({f"key{i}": "v" for i in range(51)}, "too_many_keys"),
        ({"k": "v" * 501}, "value_too_long"),
        ({"k": ["nested"]}, "invalid"),
        ({"k": 1}, "invalid"),
    ],
)
def test_metadata_keys_are_short_and_the_whole_is_at_most_8_kb(merchant, metadata, code):
    assert [(f, c) for f, c, _m in problems(merchant, {**GOOD, "metadata": metadata})] == [("metadata", code)]


def test_metadata_at_the_limits_is_accepted(merchant):
    # 40-character keys; 7 values of 1,000 bytes: 7,000 + keys and punctuation < 8,192 bytes.
    metadata = {f"{i}".rjust(40, "k"): "é" * 500 for i in range(7)}
    assert validate_payment_input(merchant, {**GOOD, "metadata": metadata})["metadata"] == metadata
