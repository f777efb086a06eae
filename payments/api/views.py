"""REST API v1 views (DESIGN section 6): thin, they parse, call one service or selector, render.

Every object is looked up through the merchant-scoped selectors, so another
merchant's id is a 404. Status changes happen only in the services.
"""

from __future__ import annotations

import re

from django.http import Http404
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from payments import selectors
from payments.api import examples
from payments.api.filters import EventListQuery, PaymentListQuery, parse_query
from payments.api.idempotency import IdempotencyMixin
from payments.api.pagination import KeysetPagination, PageQuerySerializer, list_envelope, page_body
from payments.api.parsers import StrictJSONParser
from payments.api.problems import BodyInvalid
from payments.api.serializers import (
    EventSerializer,
    PaymentCreateSerializer,
    PaymentSerializer,
    RefundCreateSerializer,
    RefundSerializer,
    event_data,
)
from payments.models import Event, Payment
from payments.representations import payment_data, refund_data
from payments.services.payments import payment_cancel, payment_create
from payments.services.refunds import refund_create

ID_PATTERN = r"^%s_[A-Za-z0-9]{1,36}$"
PAYMENT_ID = OpenApiParameter(
    "payment_id", str, OpenApiParameter.PATH, pattern=ID_PATTERN % "pay", description="pay_..."
)
EVENT_ID = OpenApiParameter(
    "event_id", str, OpenApiParameter.PATH, pattern=ID_PATTERN % "evt", description="evt_..."
)

PaymentList = list_envelope("PaymentList", PaymentSerializer)
RefundList = list_envelope("RefundList", RefundSerializer)
EventList = list_envelope("EventList", EventSerializer)


class ApiView(APIView):
    """Base of API v1 views: JSON bodies only; auth, scopes and throttling from settings."""

    parser_classes = [StrictJSONParser]


def validated_body(serializer_class, request) -> dict:
    """Validate the JSON body with `serializer_class`; invalid fields are a 422 problem."""
    serializer = serializer_class(data=request.data)
    if not serializer.is_valid():
        raise BodyInvalid(serializer.errors)
    return serializer.validated_data


def _scoped(request, prefix: str, public_id: str, getter, not_found: str):
    """The object of the key's merchant with this id, read by a scoped selector; else a 404."""
    if re.fullmatch(ID_PATTERN % prefix, public_id):
        try:
            return getter(merchant=request.auth.merchant, public_id=public_id)
        except Http404:
            pass
    raise exceptions.NotFound(not_found)


def scoped_payment(request, payment_id: str) -> Payment:
    return _scoped(request, "pay", payment_id, selectors.payment_get, _("No payment with this id."))


def scoped_event(request, event_id: str) -> Event:
    return _scoped(request, "evt", event_id, selectors.event_get, _("No event with this id."))


def payment_url(request, payment: Payment) -> str:
    return request.build_absolute_uri(reverse("api-payment-detail", args=[payment.public_id]))


class PaymentListCreateView(IdempotencyMixin, ApiView):
    idempotency_in_service = frozenset({"POST"})
    problem_statuses = {
        "POST": {
            409: "`duplicate_reference`: a payment with this reference exists.",
            422: "Business rules: `currency_not_allowed`, `over_limit`.",
        }
    }
    problem_examples = {"POST": examples.PAYMENT_CREATE_PROBLEMS}

    @extend_schema(
        operation_id="payments_list",
        tags=["payments"],
        summary="List payments",
        description="Newest first (or `ordering=created_at`), filtered, with cursor pagination.",
        parameters=[PaymentListQuery],
        responses={200: PaymentList},
        examples=examples.PAYMENT_LIST,
    )
    def get(self, request):
        query = parse_query(PaymentListQuery, request)
        qs = selectors.payment_list(merchant=request.auth.merchant, filters=query.filters())
        options = query.validated_data
        paginator = KeysetPagination(descending=options["ordering"] == "-created_at")
        page = paginator.paginate(qs, cursor=options.get("cursor"), limit=options["limit"])
        return Response(
            page_body(
                page,
                [payment_data(p, full=request.auth.merchant.full_beneficiary_data) for p in page.items],
                request,
            )
        )

    @extend_schema(
        operation_id="payments_create",
        tags=["payments"],
        summary="Create and submit a real-time payment",
        description=(
            "Validates, stores, scores and submits the payment, and answers with it as it stands: "
            "`processing`, `requires_action` (see `next_action`), `failed` (see `failure_code`) or "
            "`on_hold` (held for risk review)."
        ),
        request=PaymentCreateSerializer,
        examples=examples.PAYMENT_CREATE,
        responses={
            201: OpenApiResponse(
                PaymentSerializer,
                description="Created; `Location` is the payment's URL.",
            )
        },
        parameters=[
            OpenApiParameter(
                "Location",
                type={"type": "string", "format": "uri"},
                location=OpenApiParameter.HEADER,
                response=[201],
                description="URL of the new payment.",
            )
        ],
    )
    def post(self, request):
        data = validated_body(PaymentCreateSerializer, request)

        def respond(payment: Payment) -> Response:
            return Response(
                payment_data(payment, full=request.auth.merchant.full_beneficiary_data),
                status=201,
                headers={"Location": payment_url(request, payment)},
            )

        claim = self.idempotency_claim(respond)
        payment = payment_create(
            merchant=request.auth.merchant, data=dict(data), api_key=request.auth, idempotency=claim
        )
        if claim is not None and claim.response is not None:
            return claim.response  # stored with the gateway's answer
        return respond(payment)


class PaymentDetailView(ApiView):
    @extend_schema(
        operation_id="payments_retrieve",
        tags=["payments"],
        summary="Get a payment",
        parameters=[PAYMENT_ID],
        responses={200: PaymentSerializer},
        examples=examples.PAYMENT_DETAIL,
    )
    def get(self, request, payment_id: str):
        return Response(
            payment_data(
                scoped_payment(request, payment_id), full=request.auth.merchant.full_beneficiary_data
            )
        )


class PaymentCancelView(IdempotencyMixin, ApiView):
    problem_statuses = {"POST": {409: "Only created, on_hold and requires_action payments can be cancelled."}}
    problem_examples = {"POST": examples.PAYMENT_STATE_PROBLEM}

    @extend_schema(
        operation_id="payments_cancel",
        tags=["payments"],
        summary="Cancel a payment",
        description="Cancels a payment not yet sent (created, on hold) or awaiting the customer's action.",
        parameters=[PAYMENT_ID],
        request=None,
        responses={200: PaymentSerializer},
        examples=examples.PAYMENT_CANCEL,
    )
    def post(self, request, payment_id: str):
        payment = payment_cancel(payment=scoped_payment(request, payment_id), api_key=request.auth)
        return Response(payment_data(payment, full=request.auth.merchant.full_beneficiary_data))


class PaymentRefundsView(IdempotencyMixin, ApiView):
    problem_statuses = {
        "POST": {
            409: "Only succeeded and partially refunded payments can be refunded.",
            422: "`exceeds_refundable`: more than what can still be refunded.",
        }
    }
    problem_examples = {"POST": examples.REFUND_PROBLEMS}

    @extend_schema(
        operation_id="payments_refunds_list",
        tags=["refunds"],
        summary="List a payment's refunds",
        parameters=[PAYMENT_ID, PageQuerySerializer],
        responses={200: RefundList},
        examples=examples.REFUND_LIST,
    )
    def get(self, request, payment_id: str):
        payment = scoped_payment(request, payment_id)
        query = parse_query(PageQuerySerializer, request).validated_data
        page = KeysetPagination(descending=False).paginate(
            selectors.refund_list(payment=payment), cursor=query.get("cursor"), limit=query["limit"]
        )
        return Response(page_body(page, [refund_data(r) for r in page.items], request))

    @extend_schema(
        operation_id="payments_refunds_create",
        tags=["refunds"],
        summary="Refund a payment",
        description=(
            "Refunds part or all (no `amount`) of a succeeded payment. The refund starts `pending`; "
            "the gateway's answer settles it and moves the payment to `partially_refunded` or `refunded`."
        ),
        parameters=[PAYMENT_ID],
        request=RefundCreateSerializer,
        responses={201: RefundSerializer},
        examples=examples.REFUND_CREATE,
    )
    def post(self, request, payment_id: str):
        payment = scoped_payment(request, payment_id)
        data = validated_body(RefundCreateSerializer, request)
        refund = refund_create(
            payment=payment, amount=data.get("amount"), reason=data.get("reason", ""), api_key=request.auth
        )
        return Response(refund_data(refund), status=201)


class PaymentEventsView(ApiView):
    @extend_schema(
        operation_id="payments_events_list",
        tags=["events"],
        summary="A payment's timeline",
        description="The payment's events, oldest first.",
        parameters=[PAYMENT_ID, PageQuerySerializer],
        responses={200: EventList},
        examples=examples.PAYMENT_EVENTS,
    )
    def get(self, request, payment_id: str):
        payment = scoped_payment(request, payment_id)
        query = parse_query(PageQuerySerializer, request).validated_data
        events = selectors.payment_events(payment=payment).select_related("payment")
        page = KeysetPagination(descending=False).paginate(
            events, cursor=query.get("cursor"), limit=query["limit"]
        )
        return Response(page_body(page, [event_data(e) for e in page.items], request))


class EventListView(ApiView):
    @extend_schema(
        operation_id="events_list",
        tags=["events"],
        summary="List events",
        description="Everything that happened to the merchant's objects, newest first.",
        parameters=[EventListQuery],
        responses={200: EventList},
        examples=examples.EVENT_LIST,
    )
    def get(self, request):
        query = parse_query(EventListQuery, request).validated_data
        events = selectors.event_list(merchant=request.auth.merchant).select_related("payment")
        if query.get("type"):
            events = events.filter(type=query["type"])
        if query.get("payment"):
            events = events.filter(payment__public_id=query["payment"])
        page = KeysetPagination().paginate(events, cursor=query.get("cursor"), limit=query["limit"])
        return Response(page_body(page, [event_data(e) for e in page.items], request))


class EventDetailView(ApiView):
    @extend_schema(
        operation_id="events_retrieve",
        tags=["events"],
        summary="Get an event",
        parameters=[EVENT_ID],
        responses={200: EventSerializer},
        examples=examples.EVENT_DETAIL,
    )
    def get(self, request, event_id: str):
        event = scoped_event(request, event_id)
        return Response(event_data(event))
