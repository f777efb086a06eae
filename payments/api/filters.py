"""Query parameters of the list endpoints, validated strictly (an unknown value is a 400, never ignored)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from payments.api.fields import RFC3339DateTimeField, StrictCharField
from payments.api.pagination import PageQuerySerializer
from payments.api.problems import RepeatedParameter
from payments.models import Method, PaymentStatus
from payments.validation import ACCOUNT_PATTERN, REFERENCE_RE

PUBLIC_ID = r"^%s_[A-Za-z0-9]{1,36}$"


class PaymentListQuery(PageQuerySerializer):
    status = serializers.ChoiceField(choices=PaymentStatus.choices, required=False)
    method = serializers.ChoiceField(choices=Method.choices, required=False)
    currency = StrictCharField(
        required=False, pattern=r"^[A-Z]{3}$", help_text="ISO 4217 code in capitals, e.g. USD."
    )
    reference = StrictCharField(
        required=False, max_length=140, pattern=REFERENCE_RE.pattern, help_text="Exact reference."
    )
    account = StrictCharField(
        required=False,
        max_length=64,
        pattern=ACCOUNT_PATTERN,
        help_text="Exact beneficiary account (spaces and letter case ignored).",
    )
    batch = StrictCharField(required=False, pattern=PUBLIC_ID % "bat", help_text="Batch id (bat_...).")
    created_gte = RFC3339DateTimeField(required=False, help_text="Created at or after this instant.")
    created_lt = RFC3339DateTimeField(required=False, help_text="Created before this instant.")
    ordering = serializers.ChoiceField(
        choices=[("-created_at", "newest first"), ("created_at", "oldest first")],
        required=False,
        default="-created_at",
    )

    def filters(self) -> dict:
        """The filters for `selectors.payment_list`."""
        names = ("status", "method", "currency", "reference", "account", "batch", "created_gte", "created_lt")
        return {name: self.validated_data[name] for name in names if name in self.validated_data}


class EventListQuery(PageQuerySerializer):
    type = StrictCharField(
        required=False,
        max_length=64,
        pattern=r"^[a-z_]+(\.[a-z_]+)*$",
        help_text="Only events of this type, e.g. payment.succeeded.",
    )
    payment = StrictCharField(
        required=False, pattern=PUBLIC_ID % "pay", help_text="Only events of this payment."
    )


def reject_repeated(request, names) -> None:
    """Raise a 400 `repeated_parameter` problem if any of `names` is in the query string more than once.

    Every parameter of the API takes one value: `?limit=5&limit=100` is ambiguous, never "the last one".
    """
    repeated = [name for name, values in request.query_params.lists() if name in names and len(values) > 1]
    if repeated:
        raise RepeatedParameter(repeated)


def parse_query(serializer_class: type[serializers.Serializer], request) -> serializers.Serializer:
    """Validate the query string with `serializer_class`; a repeated or bad value is a 400 problem."""
    reject_repeated(request, serializer_class().fields)
    # A plain dict, not the QueryDict: DRF treats an empty form value of an optional field as
    # absent, while for the API `?status=` is an invalid status.
    serializer = serializer_class(data=request.query_params.dict())
    if not serializer.is_valid():
        raise QueryInvalid(serializer.errors)
    return serializer


class QueryInvalid(serializers.ValidationError):
    """Invalid query parameters: 400 with per-parameter errors."""

    default_detail = _("Invalid query parameters.")
