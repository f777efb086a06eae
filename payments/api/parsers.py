"""Request body parsing for the API."""

from __future__ import annotations

import json

from django.utils.translation import gettext as _
from rest_framework import exceptions, parsers


class StrictJSONParser(parsers.JSONParser):
    """DRF's JSON parser that also refuses text no database can store (lone UTF-16 surrogates)."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise exceptions.ParseError(
                _("JSON parse error - the body has invalid Unicode (lone surrogates).")
            )
        return data
