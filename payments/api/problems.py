"""RFC 9457 problem details for every API error."""

from __future__ import annotations

import logging

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)
PROBLEM_TYPE = "https://paydesk.dev/problems/"

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


def problem_response(
    status_code: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict] | None = None,
    headers: dict | None = None,
) -> Response:
    body = {
        "type": PROBLEM_TYPE + code,
        "title": title or code.replace("_", " ").capitalize(),
        "status": status_code,
        "code": code,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    response = Response(body, status=status_code, headers=headers)
    response.content_type = "application/problem+json"
    return response


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
    from payments.services.payments import PaymentStateError
    from payments.validation import PaymentInvalid

    if isinstance(exc, PaymentInvalid):
        errors = [{"field": e.field, "code": e.code, "message": e.message} for e in exc.errors]
        return problem_response(422, "validation_error", "The request has invalid fields.", errors=errors)
    if isinstance(exc, PaymentStateError):
        return problem_response(409, exc.code, str(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error", exc_info=exc)
        return problem_response(500, "server_error", "An unexpected error occurred.")
    code = DEFAULT_CODES.get(response.status_code, "error")
    headers = {k: v for k, v in response.items() if k in ("Retry-After", "WWW-Authenticate", "Allow")}
    if isinstance(exc, exceptions.ValidationError):
        return problem_response(
            response.status_code,
            "validation_error",
            "The request has invalid fields.",
            errors=_flatten(exc.detail),
            headers=headers,
        )
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    if isinstance(exc, exceptions.APIException):
        given = exc.get_codes()
        if isinstance(given, str) and given not in ("error", "invalid", "not_authenticated"):
            code = given
        if isinstance(exc, exceptions.NotAuthenticated):
            code = "unauthenticated"
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
        code = "rate_limited"
    return problem_response(response.status_code, code, str(detail), headers=headers)
