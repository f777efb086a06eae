"""Cursor (keyset) pagination for API lists, newest first or oldest first.

Rows are ordered by (created_at, public_id). A cursor is the position of a
boundary row, `<a|b>.<created_at in epoch microseconds>.<public id>` ("a" =
rows after it, "b" = rows before it): any well-formed cursor is a valid
position, integer keys never leave the server, and a page costs the same at
any depth while new rows arrive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.utils.urls import replace_query_param

from payments.api.fields import MAX_UTC, StrictCharField, StrictIntegerField, constant_field
from payments.api.problems import BadRequest

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
CURSOR_PATTERN = r"^[ab]\.[0-9]{1,18}\.[A-Za-z0-9_]{1,40}$"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Page:
    items: list
    has_more: bool
    next_cursor: str | None
    previous_cursor: str | None


def encode_cursor(direction: str, created_at: datetime, public_id: str) -> str:
    micros = (created_at - EPOCH) // timedelta(microseconds=1)
    return f"{direction}.{micros}.{public_id}"


def decode_cursor(cursor: str) -> tuple[bool, datetime, str]:
    """Return (forward, created_at, public_id) of a cursor; raise a 400 problem if malformed."""
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise BadRequest(
            _("The cursor is not valid; use a cursor from a previous page."), code="invalid_cursor"
        )
    direction, micros, public_id = cursor.split(".", 2)
    try:
        created_at = EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        created_at = MAX_UTC
    return direction == "a", created_at, public_id


class KeysetPagination:
    """Paginate a queryset by (`time_field`, `id_field`), newest first unless `descending` is False."""

    def __init__(
        self, *, descending: bool = True, time_field: str = "created_at", id_field: str = "public_id"
    ):
        self.descending = descending
        self.time_field = time_field
        self.id_field = id_field

    def paginate(self, queryset: QuerySet, *, cursor: str | None, limit: int) -> Page:
        forward, boundary = True, None
        if cursor:
            forward, created_at, public_id = decode_cursor(cursor)
            boundary = (created_at, public_id)
        # Walking backwards is walking forwards in the opposite order.
        descending = self.descending == forward
        sign = "-" if descending else ""
        qs = queryset.order_by(f"{sign}{self.time_field}", f"{sign}{self.id_field}")
        if boundary is not None:
            op = "lt" if descending else "gt"
            qs = qs.filter(
                Q(**{f"{self.time_field}__{op}": boundary[0]})
                | Q(**{self.time_field: boundary[0], f"{self.id_field}__{op}": boundary[1]})
            )
        rows = list(qs[: limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        if not forward:
            rows.reverse()
        if not rows:
            return Page([], False, None, None)
        first, last = rows[0], rows[-1]
        after = encode_cursor("a", getattr(last, self.time_field), getattr(last, self.id_field))
        before = encode_cursor("b", getattr(first, self.time_field), getattr(first, self.id_field))
        if forward:
            return Page(rows, more, after if more else None, before if boundary is not None else None)
        return Page(rows, more, after, before if more else None)


def page_body(page: Page, data: list, request) -> dict:
    """The JSON envelope of every list: data, has_more, cursors and ready-made URLs."""
    url = request.build_absolute_uri()
    return {
        "object": "list",
        "data": data,
        "has_more": page.has_more,
        "next_cursor": page.next_cursor,
        "previous_cursor": page.previous_cursor,
        "next": replace_query_param(url, "cursor", page.next_cursor) if page.next_cursor else None,
        "previous": replace_query_param(url, "cursor", page.previous_cursor)
        if page.previous_cursor
        else None,
    }


class PageQuerySerializer(serializers.Serializer):
    """Query parameters of every list: `cursor` and `limit`."""

    cursor = StrictCharField(
        required=False,
        max_length=80,
        pattern=CURSOR_PATTERN,
        pattern_message=_("Use a cursor from next_cursor or previous_cursor of a previous page."),
        help_text="`next_cursor` or `previous_cursor` of a previous page.",
    )
    limit = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        default=DEFAULT_LIMIT,
        help_text="Items per page, 1 to 100 (default 20).",
    )


def list_envelope(name: str, item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """A documentation serializer for the list envelope of `item` (used by the OpenAPI schema)."""
    attrs = {
        "object": constant_field("list"),
        "data": item(many=True),
        "has_more": serializers.BooleanField(),
        "next_cursor": serializers.CharField(allow_null=True),
        "previous_cursor": serializers.CharField(allow_null=True),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
    }
    return type(name, (serializers.Serializer,), attrs)
