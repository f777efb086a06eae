"""OpenAPI 3 generation (drf-spectacular) that documents what the API really does.

- Bearer security scheme for payments.api.auth.ApiKeyAuthentication.
- Every operation lists its error answers as `application/problem+json`
  (RFC 9457): 401, 403, 406, 414, 429, 431 and 500 everywhere, 404 where the path has an
  id, 400 where there are query parameters or a body, 413/415 for bodies,
  409/422 on idempotent unsafe operations, plus what a view declares in
  `problem_statuses` (`{"POST": {409: "why"}}`), each with examples: the view's
  `problem_examples` (`{"POST": {409: {"Name": body}}}`) and the common ones
  of payments/api/examples.py.
- Unsafe operations of IdempotencyMixin views take the `Idempotency-Key`
  header and may answer with `Idempotent-Replayed: true`.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_examples_list
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import serializers

from payments.api.examples import COMMON_PROBLEMS
from payments.api.idempotency import HEADER, KEY_SCHEMA, REPLAYED_HEADER, IdempotencyMixin

PROBLEM_MEDIA_TYPE = "application/problem+json"
ERROR_DESCRIPTIONS = {
    400: "Malformed request: invalid or repeated query parameters, unparseable body or Idempotency-Key "
    "(codes `validation_error`, `repeated_parameter`, `parse_error`, `invalid_cursor`, "
    "`idempotency_key_invalid`, `idempotency_key_too_long`).",
    401: "Missing, malformed, unknown or revoked API key, or a key in the URL "
    "(codes `unauthenticated`, `invalid_api_key`, `invalid_authorization`, `key_in_query`).",
    403: "The API key lacks the scope this operation needs (code `insufficient_scope`).",
    404: "No such object for this merchant (code `not_found`); another merchant's objects are never visible.",
    406: "The Accept header allows no JSON answer (code `not_acceptable`).",
    409: "Conflict (codes `idempotency_request_in_progress`: a request with this Idempotency-Key is "
    "still running; `invalid_state`: not allowed in the object's current state; "
    "`duplicate_reference`).",
    413: "The request body is too large (code `payload_too_large`).",
    414: "The request URI (path and query string) is longer than the server accepts (code "
    "`uri_too_long`), whether PayDesk, its gunicorn or a proxy in front refuses it.",
    415: "The body is not JSON (code `unsupported_media_type`).",
    422: "Invalid fields, listed in `errors` (code `validation_error`), or an Idempotency-Key reused "
    "with a different request (code `idempotency_key_reused`).",
    429: "Too many requests for this API key (code `rate_limited`); wait `Retry-After` seconds.",
    431: "The request's header fields are too large or too many (code `request_header_fields_too_large`), "
    "whether PayDesk, its gunicorn or a proxy in front refuses them.",
    500: "Unexpected error (code `server_error`); no details are disclosed. Retrying with the same "
    "Idempotency-Key is safe.",
}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class ProblemFieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(
        allow_null=True, help_text="The offending field, or null for the whole body."
    )
    code = serializers.CharField()
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    code = serializers.CharField(help_text="Stable machine-readable code.")
    detail = serializers.CharField()
    errors = ProblemFieldErrorSerializer(many=True, required=False, help_text="Per-field problems.")

    class Meta:
        ref_name = "Problem"


class PayDeskAutoSchema(AutoSchema):
    def _is_idempotent(self) -> bool:
        view = self.view
        return isinstance(view, IdempotencyMixin) and self.method in view.idempotent_methods

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self._is_idempotent():
            parameters.append(
                OpenApiParameter(
                    HEADER,
                    type=KEY_SCHEMA,
                    location=OpenApiParameter.HEADER,
                    required=False,
                    description=(
                        "Makes retries safe: the same key with the same request returns the stored "
                        "answer (with `Idempotent-Replayed: true`); with a different request it is a 422; "
                        "while the first is running, a 409. Keys are scoped to the merchant and kept "
                        "24 hours. Use a fresh random value (e.g. a UUID) per operation."
                    ),
                )
            )
            parameters.append(
                OpenApiParameter(
                    REPLAYED_HEADER,
                    type={"type": "string", "enum": ["true"]},
                    location=OpenApiParameter.HEADER,
                    response=[200, 201, 202],
                    description="`true` when this is the stored answer of an earlier request.",
                )
            )
        return parameters

    def _error_statuses(self) -> dict[int, str]:
        # 414 and 431 can answer any request (payments/api/request_limits.py).
        statuses = {401, 403, 406, 414, 429, 431, 500}
        if "{" in self.path:
            statuses.add(404)
        if self.method in UNSAFE:
            statuses |= {400, 413, 415}
            if self._is_idempotent():
                statuses |= {409, 422}
        elif self._get_parameters():
            statuses.add(400)
        described = {code: ERROR_DESCRIPTIONS[code] for code in statuses}
        declared = getattr(self.view, "problem_statuses", {}).get(self.method, {})
        for code, text in declared.items():
            described[code] = f"{ERROR_DESCRIPTIONS.get(code, '')} {text}".strip()
        return described

    def _problem_examples(self, code: int) -> dict:
        """Examples of the problem answered with `code`: the view's own, then the common ones that apply."""
        declared = getattr(self.view, "problem_examples", {}).get(self.method, {}).get(code, {})
        common = dict(COMMON_PROBLEMS.get(code, {}))
        if code in (409, 422) and not self._is_idempotent():
            common = {}
        if code == 400:
            kinds = (
                ["Malformed JSON"]
                if self.method in UNSAFE
                else ["Invalid query parameter", "Repeated query parameter"]
            )
            common = {kind: common[kind] for kind in kinds}
        examples = [
            OpenApiExample(name, value=body, summary=body["code"])
            for name, body in {**declared, **common}.items()
        ]
        return build_examples_list(examples)

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        problem = self.resolve_serializer(ProblemSerializer, "response").ref
        for code, description in sorted(self._error_statuses().items()):
            media = {"schema": problem, "examples": self._problem_examples(code)}
            responses.setdefault(
                str(code), {"description": description, "content": {PROBLEM_MEDIA_TYPE: media}}
            )
        return responses


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "payments.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "pdk_<prefix>_<secret>",
            "description": "An API key in `Authorization: Bearer <key>`; never in the URL.",
        }


class PaymentCreateSchema(OpenApiSerializerExtension):
    """State which amounts each currency takes (decimals by ISO 4217 exponent), as the API enforces."""

    target_class = "payments.api.serializers.PaymentCreateSerializer"

    def map_serializer(self, auto_schema, direction):
        from payments.api.serializers import amount_pattern, payable_currencies

        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["anyOf"] = [
            {
                "properties": {
                    # A pattern, not an enum: drf-spectacular's enum post-processing would merge
                    # every `currency` enum into one component and lose the grouping.
                    "currency": {"type": "string", "pattern": f"^({'|'.join(codes)})$"},
                    "amount": {"type": "string", "pattern": amount_pattern(exponent)},
                }
            }
            for exponent, codes in payable_currencies().items()
        ]
        return schema
