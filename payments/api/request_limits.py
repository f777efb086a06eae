"""Oversized requests: a URI that is too long is a 414, header fields too large a 431.

Both are problem details (`application/problem+json`) with a stable `code`,
`uri_too_long` and `request_header_fields_too_large`, for every path, and
whichever server refuses the request answers the same body:
- this middleware, first in MIDDLEWARE, with the limits of settings
  (PAYDESK_MAX_URI_BYTES, PAYDESK_MAX_HEADER_BYTES, PAYDESK_MAX_HEADER_FIELDS);
- gunicorn, whose own limits (config/gunicorn.py) sit above those, for what
  it cannot parse at all: its worker renders `oversized_problem` too;
- a reverse proxy in front, configured as docs/operations.md shows.

This module imports nothing of PayDesk's that needs Django set up, so that
the gunicorn configuration can import it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from payments.api.problem_json import PROBLEM_CONTENT_TYPE, problem_bytes


def gettext_noop(message: str) -> str:
    """Mark `message` for the catalogue (makemessages looks for this name); Django's needs settings."""
    return message


URI_TOO_LONG = 414
HEADERS_TOO_LARGE = 431
# status: (code, title, detail); the detail is translated when Django answers.
PROBLEMS = {
    URI_TOO_LONG: (
        "uri_too_long",
        "URI too long",
        gettext_noop("The request URI is longer than the server accepts; send fewer or shorter parameters."),
    ),
    HEADERS_TOO_LARGE: (
        "request_header_fields_too_large",
        "Request header fields too large",
        gettext_noop("The request's header fields are larger or more numerous than the server accepts."),
    ),
}
# The header fields WSGI passes without the HTTP_ prefix.
UNPREFIXED_HEADERS = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}


def oversized_problem(status_code: int, *, translate: Callable[[str], str] = str) -> bytes:
    """The problem body of a 414 or 431, with its detail passed through `translate`."""
    code, title, detail = PROBLEMS[status_code]
    return problem_bytes(status_code, code, translate(detail), title=title)


def uri_bytes(request: HttpRequest) -> int:
    """The length of the request target as sent: gunicorn's RAW_URI, else the path and query rebuilt."""
    raw = request.META.get("RAW_URI")
    if raw is not None:
        # gunicorn decodes the request line as latin-1: one character per byte.
        return len(raw)
    return len(request.get_full_path().encode())


def header_fields(request: HttpRequest) -> tuple[int, int]:
    """The number of header fields and their size as sent (`Name: value` plus CRLF each)."""
    count = size = 0
    for key, value in request.META.items():
        if key.startswith("HTTP_"):
            name_length = len(key) - len("HTTP_")
        elif key in UNPREFIXED_HEADERS and value:
            name_length = len(UNPREFIXED_HEADERS[key])
        else:
            continue
        count += 1
        size += name_length + len(": ") + len(str(value)) + len("\r\n")
    return count, size


class RequestLimitsMiddleware:
    """Refuse a request whose URI or header section is over the configured limits."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if uri_bytes(request) > settings.PAYDESK_MAX_URI_BYTES:
            return self.refuse(URI_TOO_LONG)
        count, size = header_fields(request)
        if count > settings.PAYDESK_MAX_HEADER_FIELDS or size > settings.PAYDESK_MAX_HEADER_BYTES:
            return self.refuse(HEADERS_TOO_LARGE)
        return self.get_response(request)

    @staticmethod
    def refuse(status_code: int) -> HttpResponse:
        body = oversized_problem(status_code, translate=_)
        return HttpResponse(
            body,
            status=status_code,
            content_type=PROBLEM_CONTENT_TYPE,
            headers={"Content-Length": str(len(body))},
        )
