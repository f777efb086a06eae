"""Gateway interface and registry.

A gateway talks to a payment provider and returns plain results; it never
changes a model's state (services do, through an allow-list).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from payments.models import GatewayAttempt, Payment, Refund


class Outcome:
    PROCESSING = "processing"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class GatewayResult:
    """What a gateway said about one submission."""

    outcome: str
    gateway_reference: str = ""
    failure_code: str = ""
    failure_message: str = ""
    retryable: bool = False
    next_action: dict | None = None
    raw: dict = field(default_factory=dict)


class GatewayError(Exception):
    """The gateway could not be reached or gave no usable answer; the call may be repeated."""


class CallbackRejected(Exception):
    """A callback failed verification (forged, malformed or replayed)."""


@dataclass(frozen=True)
class CallbackNotice:
    """One outcome carried by a verified callback."""

    type: str
    attempt_key: str
    gateway_reference: str = ""
    failure_code: str = ""
    failure_message: str = ""
    retryable: bool = False


@dataclass(frozen=True)
class VerifiedCallback:
    event_id: str
    event_type: str
    payload: dict[str, Any]
    notices: list[CallbackNotice]


class Gateway:
    """Base class: one subclass per provider, registered by slug in settings.PAYDESK_GATEWAYS."""

    slug = ""
    # Callback types this gateway may send, mapped to the Payment transition they request.
    ALLOWED_CALLBACKS: dict[str, str] = {}

    def submit_payment(self, payment: Payment, attempt: GatewayAttempt) -> GatewayResult:
        raise NotImplementedError

    def submit_refund(self, refund: Refund, attempt: GatewayAttempt) -> GatewayResult:
        raise NotImplementedError

    def verify_callback(self, request: HttpRequest) -> VerifiedCallback:
        """Check signature and freshness; raise CallbackRejected, never return unverified data."""
        raise NotImplementedError

    def acknowledge(self, accepted: bool) -> HttpResponse:
        """Answer the gateway in its own format."""
        return HttpResponse("ok" if accepted else "rejected", status=200 if accepted else 400)


@cache
def get_gateway(slug: str) -> Gateway:
    try:
        path = settings.PAYDESK_GATEWAYS[slug]
    except KeyError:
        raise LookupError(f"Unknown gateway {slug!r}") from None
    return import_string(path)()


def gateway_for_method(method: str) -> Gateway:
    return get_gateway(settings.PAYDESK_GATEWAY_ROUTES.get(method, "sandbox"))
