"""Request body parsing for the API."""

from __future__ import annotations

import json

from django.utils.translation import gettext as _
from rest_framework import exceptions, parsers

# No request of the API nests deeper than a batch item's metadata (about 4 levels); 64 leaves room
# and keeps every later walk of the data (validation, idempotency fingerprints, JSON columns) far
# from Python's recursion limit.
MAX_JSON_DEPTH = 64


def json_depth_exceeds(data, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsed JSON nests arrays and objects more than `limit` levels deep (without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class StrictJSONParser(parsers.JSONParser):
    """DRF's JSON parser that also refuses bodies no later step can handle.

    Lone UTF-16 surrogates (no database stores them) and nesting deeper than
    MAX_JSON_DEPTH (a body of 50,000 "[" made the decoder raise RecursionError,
    a 500) are a 400 `parse_error`, like any other unparsable body.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("JSON parse error - the body is nested too deeply.")) from None
        if json_depth_exceeds(data):
            raise exceptions.ParseError(_("JSON parse error - the body is nested too deeply."))
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise exceptions.ParseError(
                _("JSON parse error - the body has invalid Unicode (lone surrogates).")
            ) from None
        return data
