"""Strict serializer fields: each accepts exactly what its OpenAPI schema says.

DRF's fields are lenient (a CharField takes numbers, an IntegerField takes
"1.0", a RegexValidator's `$` lets a trailing newline through); the API's
schema is a contract that clients and fuzzers hold us to, so these fields
match it exactly: strings must be JSON strings, patterns match in full, and
date-times are RFC 3339 with an offset.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.core.validators import MaxLengthValidator, ProhibitNullCharactersValidator, RegexValidator
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from payments.validation import (
    METADATA_MAX_BYTES,
    METADATA_MAX_KEY_CHARS,
    METADATA_MAX_KEYS,
    METADATA_MAX_VALUE_CHARS,
    METADATA_MESSAGES,
    TextField,
    metadata_problem,
    text_problem,
)

NO_NUL = r"^[^\x00]*$"


class SpecValidator(RegexValidator):
    """A text field of payments.validation: the schema shows its pattern, errors carry its codes.

    The value is checked as sent (the API strips nothing); a required value
    that is only whitespace is `required`, like an empty one.
    """

    def __init__(self, spec: TextField) -> None:
        super().__init__(spec.pattern, message=spec.message, code=spec.code)
        self.spec = spec

    def __call__(self, value) -> None:
        value = str(value)
        if len(value) > self.spec.max_length:
            return  # the field's MaxLengthValidator says `too_long`
        if not value.strip() and "\x00" not in value:
            # Blank: a required field is missing; an optional one breaks the schema's pattern.
            if self.spec.required:
                code, message = "required", _("This field is required.")
            else:
                code, message = self.spec.code, self.spec.message
        else:
            problem = text_problem(self.spec, value)
            if problem is None and self.regex.fullmatch(value) is None:
                problem = (self.spec.code, self.spec.message)
            code, message = problem or (None, None)
        if code is not None:
            raise serializers.ValidationError(message, code=code)


class FullMatchValidator(RegexValidator):
    """A RegexValidator that must match the whole value (`$` does not skip a final newline)."""

    def __call__(self, value) -> None:
        if self.regex.fullmatch(str(value)) is None:
            raise serializers.ValidationError(self.message, code=self.code)


class StrictCharField(serializers.CharField):
    """A string field that refuses non-strings and keeps whitespace as sent (the schema sees it raw)."""

    default_error_messages = {"invalid": _("Must be a string.")}

    def __init__(
        self,
        *,
        pattern: str | None = None,
        pattern_message: str | None = None,
        pattern_code: str = "invalid_format",
        too_long_code: str | None = None,
        **kwargs,
    ) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        for validator in self.validators:
            if too_long_code and isinstance(validator, MaxLengthValidator):
                validator.code = too_long_code
            if isinstance(validator, ProhibitNullCharactersValidator):
                # The code payments.validation gives a NUL in any text field.
                validator.code = "nul"
        if pattern:
            message = pattern_message or _("Has characters or a format that is not allowed.")
            self.validators.append(FullMatchValidator(pattern, message=message, code=pattern_code))

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)

    def fail(self, key, **kwargs):
        if key == "blank":
            # An empty required string is missing, with the code payments.validation gives it.
            raise serializers.ValidationError(_("This field is required."), code="required")
        super().fail(key, **kwargs)


class StrictIntegerField(serializers.IntegerField):
    """An integer from a query string or JSON: digits only, no "1.0", no "+1"."""

    digits = re.compile(r"-?[0-9]{1,18}")

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            self.fail("invalid")
        if isinstance(data, str) and not self.digits.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)


RFC3339 = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[Tt](?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})"
    r"(?:\.(?P<f>[0-9]+))?(?P<tz>[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
MIN_UTC = datetime.min.replace(tzinfo=UTC)
MAX_UTC = datetime.max.replace(tzinfo=UTC)


def parse_rfc3339(value: str) -> datetime | None:
    """Return an aware UTC datetime for an RFC 3339 date-time, or None if it is not one.

    An instant outside Python's range after conversion to UTC (year 1 with a
    positive offset) is clamped to the smallest or largest datetime.
    """
    match = RFC3339.fullmatch(value)
    if match is None:
        return None
    g = match.groupdict()
    micro = int((g["f"] or "0")[:6].ljust(6, "0"))
    offset = timedelta(0)
    if g["tz"] not in ("Z", "z"):
        hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
        if hours > 23 or minutes > 59:
            return None
        offset = timedelta(hours=hours, minutes=minutes) * (1 if g["tz"][0] == "+" else -1)
    try:
        local = datetime(
            int(g["y"]), int(g["mo"]), int(g["d"]), int(g["h"]), int(g["mi"]), int(g["s"]), micro, tzinfo=UTC
        )
    except ValueError:
        return None
    try:
        return local - offset
    except OverflowError:
        return MIN_UTC if offset > timedelta(0) else MAX_UTC


@extend_schema_field(OpenApiTypes.DATETIME)
class RFC3339DateTimeField(serializers.Field):
    """An RFC 3339 date-time with a UTC offset (`2026-01-31T09:00:00Z`)."""

    default_error_messages = {
        "invalid": _("Use an RFC 3339 date-time with an offset, such as 2026-01-31T09:00:00Z."),
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        parsed = parse_rfc3339(data)
        if parsed is None:
            self.fail("invalid")
        return parsed

    def to_representation(self, value):
        return value.isoformat()


METADATA_SCHEMA = {
    "type": "object",
    "maxProperties": METADATA_MAX_KEYS,
    "additionalProperties": {"type": "string", "maxLength": METADATA_MAX_VALUE_CHARS, "pattern": NO_NUL},
    "description": (
        f"Up to {METADATA_MAX_KEYS} string values for your own use: keys of 1 to {METADATA_MAX_KEY_CHARS} "
        f"characters, values of at most {METADATA_MAX_VALUE_CHARS} characters, {METADATA_MAX_BYTES} bytes "
        "of JSON in all. Keys and values may not contain NUL (U+0000) characters."
    ),
}


@extend_schema_field(METADATA_SCHEMA)
class MetadataField(serializers.Field):
    """Metadata as payments.validation specifies it (metadata_problem): the same codes everywhere."""

    default_error_messages = METADATA_MESSAGES

    def to_internal_value(self, data):
        code = metadata_problem(data)
        if code is not None:
            self.fail(code)
        return data

    def to_representation(self, value):
        return value


def constant_field(value: str) -> serializers.Field:
    """A documentation field whose value is always `value` (e.g. `"object": "payment"`)."""
    field_class = type(f"Constant{value.title()}Field", (serializers.CharField,), {})
    return extend_schema_field({"type": "string", "enum": [value]})(field_class)()
