"""API request and response shapes.

Request serializers check the shape the OpenAPI schema promises (types,
patterns, lengths) and nothing more; the business rules (per-merchant
currencies and limits, unique references, refundable amounts) stay in the
services, which raise PaymentInvalid / PaymentStateError. Response bodies are
built by payments.representations; the response serializers here only
document them.
"""

from __future__ import annotations

import re
from functools import cache

import iso4217
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from payments.api.fields import (
    NO_NUL,
    MetadataField,
    RFC3339DateTimeField,
    SpecValidator,
    StrictCharField,
    constant_field,
)
from payments.models import Method, PaymentStatus, RefundStatus
from payments.validation import METHOD_LIST, TEXT, TextField, amount_problem

MAX_MINOR_DIGITS = 15  # parse_amount refuses more than 10**15 minor units


@cache
def payable_currencies() -> dict[int, list[str]]:
    """ISO 4217 codes that can be paid, grouped by their number of decimals."""
    groups: dict[int, list[str]] = {}
    for currency in iso4217.Currency:
        if currency.exponent is not None:
            groups.setdefault(currency.exponent, []).append(currency.code)
    return {exponent: sorted(codes) for exponent, codes in sorted(groups.items())}


@cache
def exponent_of() -> dict[str, int]:
    return {code: exp for exp, codes in payable_currencies().items() for code in codes}


def amount_pattern(exponent: int) -> str:
    """A positive decimal string with at most `exponent` decimals and at most 10**15 minor units."""
    whole = rf"[1-9][0-9]{{0,{MAX_MINOR_DIGITS - exponent - 1}}}"
    if exponent == 0:
        return rf"^{whole}$"
    fractions = "|".join(rf"0{{{k}}}[1-9][0-9]{{0,{exponent - 1 - k}}}" for k in range(exponent))
    return rf"^({whole}(\.[0-9]{{1,{exponent}}})?|0\.({fractions}))$"


REFUND_AMOUNT_PATTERN = amount_pattern(4)


class SpecCharField(StrictCharField):
    """A string field of POST /payments built from its specification in payments.validation.

    Its errors carry the specification's codes: blank (or only whitespace)
    where a value is required is `required`, as a missing one; an optional
    field may be null, as in files and forms, where it is simply absent.
    """

    def __init__(self, spec: TextField, **kwargs) -> None:
        super().__init__(
            max_length=spec.max_length,
            required=spec.required,
            allow_blank=not spec.required,
            allow_null=not spec.required,
            too_long_code="too_long",
            **kwargs,
        )
        self.validators.append(SpecValidator(spec))


class SpecChoiceField(serializers.ChoiceField):
    """A choice whose refusal carries the specification's code (`invalid_currency`, `invalid_method`)."""

    def __init__(self, *, invalid_code: str, invalid_message: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.invalid_code = invalid_code
        self.invalid_message = invalid_message

    def to_internal_value(self, data):
        if data == "" and not self.allow_blank:
            raise serializers.ValidationError(_("This field is required."), code="required")
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError:
            raise serializers.ValidationError(self.invalid_message, code=self.invalid_code) from None


class PaymentCreateSerializer(serializers.Serializer):
    """The body of POST /api/v1/payments: the fields of payments.validation, as the schema shows them.

    The shapes (types, lengths, patterns) are checked here with the
    specification's codes; money, the merchant's currencies and limits and
    the gateway's set-up are checked by the service with the same rules.
    """

    reference = SpecCharField(
        TEXT["reference"], help_text="Your unique reference for this payment (unique per merchant)."
    )
    amount = StrictCharField(
        max_length=32,
        too_long_code="invalid_amount",
        help_text=(
            'Decimal string in the currency\'s units, e.g. "1234.50": ASCII digits, greater than zero, '
            "with no more decimals than the currency has (JPY 0, USD 2, KWD 3) and within the "
            "merchant's per-payment limit."
        ),
    )
    currency = SpecChoiceField(
        choices=sorted(exponent_of()),
        invalid_code="invalid_currency",
        invalid_message=_("Currency must be a 3-letter ISO 4217 code."),
        help_text="ISO 4217 code; the merchant may restrict which are enabled.",
    )
    method = SpecChoiceField(
        choices=Method.choices,
        invalid_code="invalid_method",
        invalid_message=_("Unknown method; use one of: %(m)s.") % {"m": METHOD_LIST},
    )
    beneficiary_name = SpecCharField(
        TEXT["beneficiary_name"],
        help_text=(
            "Without private-use or unassigned Unicode code points (422 `invalid_characters`): "
            "no bank can print them."
        ),
    )
    beneficiary_account = SpecCharField(
        TEXT["beneficiary_account"],
        help_text="Card number, IBAN, wallet id... (4 to 64 of A-Z a-z 0-9 space . @ _ + -).",
    )
    beneficiary_email = SpecCharField(TEXT["beneficiary_email"])
    beneficiary_phone = SpecCharField(TEXT["beneficiary_phone"])
    description = SpecCharField(TEXT["description"])
    metadata = MetadataField(required=False)

    def validate(self, attrs: dict) -> dict:
        currency, amount = attrs["currency"], attrs["amount"]
        exponent = exponent_of()[currency]
        if not re.fullmatch(amount_pattern(exponent), amount):
            # The schema's grammar is stricter than files and forms ("+5", "007.50", "12." are
            # refused here); the code is the one parse_amount gives the same text.
            problem = amount_problem(amount, currency)
            code, message = problem or ("invalid_amount", _("Amount is not a number."))
            raise serializers.ValidationError({"amount": serializers.ErrorDetail(message, code=code)})
        return attrs


class RefundCreateSerializer(serializers.Serializer):
    """The body of POST /api/v1/payments/{id}/refunds."""

    amount = StrictCharField(
        required=False,
        max_length=32,
        pattern=REFUND_AMOUNT_PATTERN,
        help_text=(
            "Decimal string in the payment's currency; omit it to refund everything still refundable. "
            "At most the captured amount less what is refunded or being refunded."
        ),
    )
    reason = StrictCharField(required=False, allow_blank=True, max_length=500, pattern=NO_NUL)


# Response documentation ------------------------------------------------------------------


class PaymentSerializer(serializers.Serializer):
    """A payment as every API answer, Event and webhook shows it (payments.representations.payment_data)."""

    id = serializers.CharField(help_text="pay_...")
    object = constant_field("payment")
    reference = serializers.CharField()
    amount = serializers.CharField(help_text='Decimal string, e.g. "1234.50".')
    currency = serializers.CharField()
    method = serializers.ChoiceField(choices=Method.choices)
    direction = serializers.ChoiceField(
        choices=["payout", "collection"],
        read_only=True,
        help_text="payout (to the beneficiary: batch rows, payout rails) or collection (from a customer).",
    )
    beneficiary_name = serializers.CharField()
    beneficiary_account = serializers.CharField(
        help_text="Masked (\u2022\u2022\u2022\u2022 1234) unless full beneficiary data is on."
    )
    beneficiary_email = serializers.CharField(
        allow_blank=True, help_text="Masked likewise (a\u2022\u2022\u2022\u2022@example.com)."
    )
    beneficiary_phone = serializers.CharField(
        allow_blank=True, help_text="Masked likewise (\u2022\u2022\u2022\u2022 5678)."
    )
    description = serializers.CharField(allow_blank=True)
    metadata = serializers.DictField(child=serializers.JSONField())
    status = serializers.ChoiceField(choices=PaymentStatus.choices)
    failure_code = serializers.CharField(allow_null=True)
    failure_message = serializers.CharField(allow_null=True)
    next_action = serializers.DictField(
        allow_null=True,
        child=serializers.JSONField(),
        help_text='While requires_action: {"type": "redirect_to_url", "url": ...}.',
    )
    batch = serializers.CharField(allow_null=True, help_text="bat_... when the payment came in a batch.")
    refunded_amount = serializers.CharField()
    created_at = RFC3339DateTimeField()
    updated_at = RFC3339DateTimeField()


class RefundSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="ref_...")
    object = constant_field("refund")
    payment = serializers.CharField(help_text="pay_...")
    amount = serializers.CharField()
    currency = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=RefundStatus.choices)
    failure_code = serializers.CharField(allow_null=True)
    created_at = RFC3339DateTimeField()


class EventSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="evt_...")
    object = constant_field("event")
    type = serializers.CharField(help_text="e.g. payment.created, payment.succeeded, refund.succeeded.")
    payment = serializers.CharField(allow_null=True, help_text="pay_... the event is about, if any.")
    data = serializers.DictField(
        child=serializers.JSONField(), help_text='{"object": <payment>, "refund": <refund>?, ...}'
    )
    created_at = RFC3339DateTimeField()


def event_data(event) -> dict:
    """The JSON of an Event in the API."""
    return {
        "id": event.public_id,
        "object": "event",
        "type": event.type,
        "payment": event.payment.public_id if event.payment_id else None,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }
