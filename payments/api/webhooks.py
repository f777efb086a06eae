"""Webhook endpoints in the API (DESIGN section 6).

An endpoint is `{"id", "url", "events", "description", "status"}`, plus
`"secret"` in the answers to create and rotate-secret only. Another merchant's
endpoint is a 404. Unsafe requests honour `Idempotency-Key`; a replay of
create or rotate-secret answers the endpoint without its secret and with
`"secret_omitted": true` (the secret is shown once and never stored with the key).
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ErrorDetail
from rest_framework.response import Response
from rest_framework.views import APIView

from merchants.models import WebhookEndpoint
from payments import notification_selectors as selectors
from payments.api import examples
from payments.api.filters import parse_query
from payments.api.idempotency import IdempotencyMixin, shown_once
from payments.api.pagination import KeysetPagination, PageQuerySerializer, list_envelope, page_body
from payments.api.parsers import StrictJSONParser
from payments.api.problems import BodyInvalid
from payments.channels.messages import event_types
from payments.services.notifications import endpoints as services

TAG = ["Webhook endpoints"]
REPLAY_NOTE = (
    "The signing secret is in this answer only. A retry with the same `Idempotency-Key` is answered "
    "with `Idempotent-Replayed: true` and the endpoint without `secret`, with `secret_omitted: true` "
    "instead: secrets are never stored with idempotency keys nor handed out twice."
)


# The schema states the form of an http(s) URL: a host name, an IPv4 address or a bracketed IPv6
# literal, any port 0-65535, then path, query and fragment in printable ASCII. Whether the target
# may be reached is not a question of form: the service resolves the host and refuses credentials,
# private, loopback and link-local addresses (payments/channels/webhook.py check_url).
PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_H16 = "[0-9A-Fa-f]{1,4}"
_IPV4 = r"((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_LS32 = f"({_H16}:{_H16}|{_IPV4})"
# RFC 3986 IPv6address, one alternative per position of "::".
IPV6 = (
    "("
    + "|".join(
        [
            f"({_H16}:){{6}}{_LS32}",
            f"::({_H16}:){{5}}{_LS32}",
            f"({_H16})?::({_H16}:){{4}}{_LS32}",
            f"(({_H16}:){{0,1}}{_H16})?::({_H16}:){{3}}{_LS32}",
            f"(({_H16}:){{0,2}}{_H16})?::({_H16}:){{2}}{_LS32}",
            f"(({_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
            f"(({_H16}:){{0,4}}{_H16})?::{_LS32}",
            f"(({_H16}:){{0,5}}{_H16})?::{_H16}",
            f"(({_H16}:){{0,6}}{_H16})?::",
        ]
    )
    + ")"
)
URL_PATTERN = rf"^https?://([A-Za-z0-9._~-]+|\[{IPV6}\])(:{PORT})?([/?#][!-~]*)?$"
URL_FORM = RegexValidator(
    URL_PATTERN,
    message=_("The URL must start with http:// or https:// and name a host."),
    code="url_not_allowed",
)


class EventTypeField(serializers.ChoiceField):
    """An event type; the schema lists them, an unknown one is `unknown_event_type`."""

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError:
            raise serializers.ValidationError(
                _("Unknown event type: %(type)s.") % {"type": str(data)[:64]}, code="unknown_event_type"
            ) from None


class WebhookEndpointSerializer(serializers.Serializer):
    id = serializers.CharField(read_only=True, help_text="`whe_` followed by 24 characters.")
    url = serializers.CharField(validators=[URL_FORM])
    events = serializers.ListField(
        child=serializers.CharField(), help_text="Event types sent to this endpoint; empty sends every type."
    )
    description = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=WebhookEndpoint.Status.values)


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        required=False,
        help_text=(
            "`whsec_<base64>`: shown only in this answer. Verify signatures with it (Standard Webhooks). "
            "Absent from an idempotent replay (`Idempotent-Replayed: true`), which has "
            "`secret_omitted` instead."
        ),
    )
    secret_omitted = serializers.BooleanField(
        required=False,
        help_text=(
            "`true` in an idempotent replay of this request: the secret was shown once, in the first "
            "answer, and is never stored with the key nor sent again. Lost it? Rotate the secret."
        ),
    )


class WebhookEndpointCreateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, validators=[URL_FORM])
    events = serializers.ListField(child=EventTypeField(choices=event_types()), required=False, default=list)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class WebhookEndpointUpdateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, required=False, validators=[URL_FORM])
    events = serializers.ListField(child=EventTypeField(choices=event_types()), required=False)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=WebhookEndpoint.Status.values, required=False)


def endpoint_data(endpoint: WebhookEndpoint, secret: str | None = None) -> dict:
    data = {
        "id": endpoint.public_id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "status": endpoint.status,
    }
    if secret is not None:
        data["secret"] = secret
    return data


def with_secret(endpoint: WebhookEndpoint, secret: str, *, status: int) -> Response:
    """The answer to create and rotate-secret: the secret now, never in a replay of the request."""
    response = Response(endpoint_data(endpoint, secret), status=status)
    return shown_once(response, {**endpoint_data(endpoint), "secret_omitted": True})


def _validated(serializer_class: type[serializers.Serializer], data, *, partial: bool = False) -> dict:
    if not isinstance(data, dict):
        raise BodyInvalid(
            {"non_field_errors": [ErrorDetail(_("The body must be a JSON object."), code="invalid")]}
        )
    serializer = serializer_class(data=data, partial=partial)
    if not serializer.is_valid():
        raise BodyInvalid(serializer.errors)
    return serializer.validated_data


class TooManyEndpoints(APIException):
    """The merchant's endpoint quota is used up: the request conflicts with what exists (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "too_many_endpoints"


def _invalid(exc: services.NotificationsInvalid) -> APIException:
    for error in exc.errors:
        if error.code == "too_many_endpoints":
            return TooManyEndpoints(error.message)
    detail: dict[str, list] = {}
    for error in exc.errors:
        detail.setdefault(error.field, []).append(ErrorDetail(error.message, code=error.code))
    return BodyInvalid(detail)


class WebhookEndpointListView(IdempotencyMixin, APIView):
    parser_classes = [StrictJSONParser]
    pagination = KeysetPagination()

    @extend_schema(
        operation_id="webhook_endpoints_list",
        tags=TAG,
        summary="List webhook endpoints",
        parameters=[PageQuerySerializer],
        responses=list_envelope("WebhookEndpointList", WebhookEndpointSerializer),
        examples=examples.ENDPOINT_LIST,
    )
    def get(self, request):
        query = parse_query(PageQuerySerializer, request)
        page = self.pagination.paginate(
            selectors.webhook_endpoint_list(merchant=request.merchant),
            cursor=query.validated_data.get("cursor"),
            limit=query.validated_data["limit"],
        )
        return Response(page_body(page, [endpoint_data(e) for e in page.items], request))

    @extend_schema(
        operation_id="webhook_endpoints_create",
        tags=TAG,
        summary="Create a webhook endpoint",
        description=REPLAY_NOTE,
        request=WebhookEndpointCreateSerializer,
        responses={201: WebhookEndpointWithSecretSerializer},
        examples=examples.ENDPOINT_CREATE,
    )
    def post(self, request):
        data = _validated(WebhookEndpointCreateSerializer, request.data)
        try:
            endpoint, secret = services.webhook_endpoint_create(
                merchant=request.merchant, request=request, api_key=request.auth, **data
            )
        except services.NotificationsInvalid as exc:
            raise _invalid(exc) from None
        return with_secret(endpoint, secret, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailView(IdempotencyMixin, APIView):
    parser_classes = [StrictJSONParser]

    def _endpoint(self, request, endpoint_id: str) -> WebhookEndpoint:
        return selectors.webhook_endpoint_get(merchant=request.merchant, public_id=endpoint_id)

    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        tags=TAG,
        summary="Get a webhook endpoint",
        responses=WebhookEndpointSerializer,
        examples=examples.ENDPOINT_DETAIL,
    )
    def get(self, request, endpoint_id: str):
        return Response(endpoint_data(self._endpoint(request, endpoint_id)))

    @extend_schema(
        operation_id="webhook_endpoints_update",
        tags=TAG,
        summary="Change a webhook endpoint",
        request=WebhookEndpointUpdateSerializer,
        responses=WebhookEndpointSerializer,
        examples=examples.ENDPOINT_UPDATE,
    )
    def patch(self, request, endpoint_id: str):
        endpoint = self._endpoint(request, endpoint_id)
        data = _validated(WebhookEndpointUpdateSerializer, request.data, partial=True)
        try:
            endpoint = services.webhook_endpoint_update(
                endpoint=endpoint, data=data, request=request, api_key=request.auth
            )
        except services.NotificationsInvalid as exc:
            raise _invalid(exc) from None
        return Response(endpoint_data(endpoint))

    @extend_schema(
        operation_id="webhook_endpoints_delete",
        tags=TAG,
        summary="Delete a webhook endpoint",
        responses={204: OpenApiResponse(description="Deleted; nothing more is sent to it.")},
    )
    def delete(self, request, endpoint_id: str):
        services.webhook_endpoint_delete(
            endpoint=self._endpoint(request, endpoint_id), request=request, api_key=request.auth
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointRotateSecretView(IdempotencyMixin, APIView):
    parser_classes = [StrictJSONParser]

    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        tags=TAG,
        summary="Rotate the signing secret",
        description="The new secret signs at once; the old one keeps signing beside it for 24 hours. "
        + REPLAY_NOTE,
        request=None,
        responses=WebhookEndpointWithSecretSerializer,
        examples=examples.ENDPOINT_ROTATE,
    )
    def post(self, request, endpoint_id: str):
        endpoint = selectors.webhook_endpoint_get(merchant=request.merchant, public_id=endpoint_id)
        endpoint, secret = services.webhook_endpoint_rotate_secret(
            endpoint=endpoint, request=request, api_key=request.auth
        )
        return with_secret(endpoint, secret, status=status.HTTP_200_OK)
