"""RFC 9457 problem details for every API error.

Every error under /api/ is `application/problem+json`:
`{"type", "title", "status", "code", "detail"}` plus `errors` (a list of
`{"field", "code", "message"}`) for validation problems. `code` is stable and
machine-readable; `detail` is for humans. No stack trace ever reaches a
client: unexpected exceptions are logged and answered with a bare 500.

`problem_exception_handler` serves DRF views; `handler400/403/404/500` and
`api_not_found` serve what happens outside them (unknown URLs, errors in
middleware) for paths under /api/, and fall back to Django's pages elsewhere.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from payments.api.problem_json import PROBLEM_CONTENT_TYPE, problem_body, problem_bytes
from payments.services.lifecycle.guards import MerchantSuspended
from payments.services.payments import PaymentStateError
from payments.validation import PaymentInvalid

logger = logging.getLogger(__name__)
API_PREFIX = "/api/"

DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "server_error",
}
# Titles for people, in the request's language (Accept-Language); `code` stays the stable English
# key. A code without a title of its own takes its status's title.
TITLES = {
    "bad_request": gettext_lazy("Bad request"),
    "unauthenticated": gettext_lazy("Unauthenticated"),
    "forbidden": gettext_lazy("Forbidden"),
    "not_found": gettext_lazy("Not found"),
    "method_not_allowed": gettext_lazy("Method not allowed"),
    "not_acceptable": gettext_lazy("Not acceptable"),
    "conflict": gettext_lazy("Conflict"),
    "payload_too_large": gettext_lazy("Payload too large"),
    "unsupported_media_type": gettext_lazy("Unsupported media type"),
    "unprocessable": gettext_lazy("Unprocessable"),
    "rate_limited": gettext_lazy("Rate limited"),
    "server_error": gettext_lazy("Server error"),
    "validation_error": gettext_lazy("Validation error"),
    "duplicate_reference": gettext_lazy("Duplicate reference"),
    "invalid_state": gettext_lazy("Invalid state"),
    "merchant_suspended": gettext_lazy("Merchant suspended"),
    "invalid_api_key": gettext_lazy("Invalid API key"),
    "invalid_authorization": gettext_lazy("Invalid authorization"),
    "key_in_query": gettext_lazy("API key in the URL"),
    "insufficient_scope": gettext_lazy("Insufficient scope"),
    "idempotency_key_invalid": gettext_lazy("Invalid Idempotency-Key"),
    "idempotency_key_too_long": gettext_lazy("Idempotency-Key too long"),
    "idempotency_key_reused": gettext_lazy("Idempotency-Key reused"),
    "idempotency_request_in_progress": gettext_lazy("Request in progress"),
    "invalid_cursor": gettext_lazy("Invalid cursor"),
    "no_valid_rows": gettext_lazy("No valid rows"),
    "too_many_endpoints": gettext_lazy("Too many endpoints"),
    "customer_paying": gettext_lazy("Customer paying"),
    "already_paid": gettext_lazy("Already paid"),
    "gateway_unavailable": gettext_lazy("Gateway unavailable"),
}


def problem_title(status_code: int, code: str) -> str:
    """The translated title of a problem: its code's, else its status's."""
    title = TITLES.get(code) or TITLES.get(DEFAULT_CODES.get(status_code, ""))
    return str(title) if title is not None else code.replace("_", " ").capitalize()


# DRF's generic codes, replaced by the status's own code.
GENERIC_CODES = frozenset({"error", "invalid", "not_authenticated", "throttled", "permission_denied"})


class BodyInvalid(exceptions.ValidationError):
    """A request body that parsed but has invalid fields: 422 with per-field errors."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY


class BadRequest(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = gettext_lazy("The request was malformed.")
    default_code = "bad_request"


class RepeatedParameter(BadRequest):
    """Query parameters given more than once where one value is expected: 400, each one named."""

    default_code = "repeated_parameter"

    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(
            _("Give each of these query parameters once: %(names)s.") % {"names": ", ".join(names)}
        )

    def errors(self) -> list[dict]:
        message = _("This query parameter is given more than once; give it once.")
        return [{"field": name, "code": "repeated_parameter", "message": message} for name in self.names]


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = gettext_lazy("The request conflicts with the current state of the resource.")
    default_code = "conflict"


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = gettext_lazy("The request cannot be processed.")
    default_code = "unprocessable"


def problem_response(
    status_code: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict] | None = None,
    headers: dict | None = None,
) -> Response:
    title = title or problem_title(status_code, code)
    body = problem_body(status_code, code, detail, title=title, errors=errors)
    response = Response(body, status=status_code, headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def problem_http_response(
    status_code: int, code: str, detail: str, *, title: str | None = None, headers: dict | None = None
) -> HttpResponse:
    """A problem as a plain Django response, for code that runs outside DRF views."""
    body = problem_bytes(status_code, code, detail, title=title or problem_title(status_code, code))
    return HttpResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE, headers=headers)


def _flatten(detail, prefix: str = "") -> list[dict]:
    errors = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors":
                name = prefix or ""
            errors.extend(_flatten(value, name))
    elif isinstance(detail, list):
        for item in detail:
            errors.extend(_flatten(item, prefix))
    else:
        errors.append(
            {"field": prefix or None, "code": getattr(detail, "code", "invalid"), "message": str(detail)}
        )
    return errors


def problem_exception_handler(exc, context):
    """Turn every exception into problem details; unexpected ones become a bare 500."""
    if isinstance(exc, PaymentInvalid):
        errors = [{"field": e.field, "code": e.code, "message": e.message} for e in exc.errors]
        if errors and all(e["code"] == "duplicate_reference" for e in errors):
            # The reference belongs to an existing payment: a conflict, not a malformed request.
            return problem_response(409, "duplicate_reference", errors[0]["message"], errors=errors)
        return problem_response(422, "validation_error", _("The request has invalid fields."), errors=errors)
    if isinstance(exc, PaymentStateError):
        return problem_response(409, exc.code, str(exc))
    if isinstance(exc, RepeatedParameter):
        return problem_response(400, exc.default_code, str(exc.detail), errors=exc.errors())
    if isinstance(exc, MerchantSuspended):
        return problem_response(403, exc.code, str(exc))
    if isinstance(exc, RequestDataTooBig):
        return problem_response(413, "payload_too_large", _("The request body is too large."))
    if isinstance(exc, SuspiciousOperation):
        return problem_response(400, "bad_request", _("The request was malformed."))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("No such object."))
    response = exception_handler(exc, context)
    if response is None:
        logger.error("unhandled API error", exc_info=exc)
        return problem_response(500, "server_error", _("An unexpected error occurred."))
    code = DEFAULT_CODES.get(response.status_code, "error")
    headers = {k: v for k, v in response.items() if k in ("Retry-After", "WWW-Authenticate", "Allow")}
    if isinstance(exc, exceptions.ValidationError):
        return problem_response(
            response.status_code,
            "validation_error",
            _("The request has invalid fields."),
            errors=_flatten(exc.detail),
            headers=headers,
        )
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    if isinstance(exc, exceptions.APIException):
        given = exc.get_codes()
        if isinstance(given, str) and given not in GENERIC_CODES:
            code = given
    if isinstance(detail, (list, dict)):
        detail = "; ".join(e["message"] for e in _flatten(detail))
    return problem_response(response.status_code, code, str(detail), headers=headers)


# Django-level handlers (config/urls.py) ------------------------------------------------


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def api_not_found(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Answer any /api/ URL no route matched (also while DEBUG, which bypasses handler404)."""
    detail = _("No API route matches this URL.")
    if request.path.endswith("/"):
        try:
            match = resolve(request.path.rstrip("/"))
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            detail = _("No API route matches this URL; API v1 URLs have no trailing slash.")
    return problem_http_response(404, "not_found", detail)


def handler400(request: HttpRequest, exception=None) -> HttpResponse:
    if is_api_request(request):
        return problem_http_response(400, "bad_request", _("The request was malformed."))
    return defaults.bad_request(request, exception)


def handler403(request: HttpRequest, exception=None) -> HttpResponse:
    if is_api_request(request):
        return problem_http_response(403, "forbidden", _("You may not do this."))
    return defaults.permission_denied(request, exception or PermissionDenied())


def handler404(request: HttpRequest, exception=None) -> HttpResponse:
    if is_api_request(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception or Http404())


def handler500(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return problem_http_response(500, "server_error", _("An unexpected error occurred."))
    return defaults.server_error(request)
