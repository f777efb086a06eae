"""Fixtures for notification channels: a real local webhook receiver, endpoints, SMS outbox."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import transaction
from standardwebhooks import Webhook
from werkzeug import Response

from payments.channels import sms as sms_module
from payments.models import Delivery
from payments.services.lifecycle.events import events_record
from payments.services.notifications.endpoints import webhook_endpoint_create
from tests.factories import PaymentFactory


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    # Verified on arrival (standardwebhooks checks the timestamp against the clock of that moment).
    verified: dict | None = None
    rejection: str = ""

    def verify(self, secret: str) -> dict:
        """Verify with the standardwebhooks package, as a merchant would; return the parsed body."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    """A merchant's webhook receiver on pytest-httpserver: records every request, answers `status`."""

    def __init__(self, httpserver, path: str = "/hooks") -> None:
        self.server = httpserver
        self.path = path
        self.status = 200
        self.answer = "ok"
        self.headers: dict[str, str] = {}
        self.requests: list[Received] = []
        self.secrets: list[str] = []
        httpserver.expect_request(path, method="POST").respond_with_handler(self._handle)

    def _handle(self, request):
        received = Received(
            body=request.get_data(), headers={k.lower(): v for k, v in request.headers.items()}
        )
        for secret in self.secrets:
            try:
                received.verified = received.verify(secret)
            except Exception as exc:
                received.rejection = f"{secret[:10]}: {exc}"
                break
        self.requests.append(received)
        return Response(self.answer, status=self.status, headers=self.headers)

    @property
    def url(self) -> str:
        return self.server.url_for(self.path)

    @property
    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.requests]


@pytest.fixture
def receiver(httpserver) -> Receiver:
    return Receiver(httpserver)


@pytest.fixture
def endpoint_a(merchant_a, receiver):
    """An enabled endpoint of merchant A pointing at the receiver; `.secret` is its whsec_ secret."""
    endpoint, secret = webhook_endpoint_create(merchant=merchant_a, url=receiver.url)
    endpoint.secret = secret
    receiver.secrets = [secret]
    return endpoint


@pytest.fixture(autouse=True)
def _sms_outbox(settings):
    settings.SMS_BACKEND = "payments.channels.sms.LocmemBackend"
    sms_module.outbox.clear()
    yield
    sms_module.outbox.clear()


def final_payment(merchant, **kwargs):
    """A payment already in a final state, so the sweeper never submits it behind a test's back."""
    kwargs.setdefault("status", "succeeded")
    return PaymentFactory(merchant=merchant, **kwargs)


def record(payment, type: str = "payment.succeeded"):
    """Write an Event (and so its deliveries) in its own transaction, as services do."""
    with transaction.atomic():
        return events_record(payment, type, actor="test")[0]


def deliveries(**filters) -> list[Delivery]:
    return list(Delivery.objects.filter(**filters).order_by("pk"))
