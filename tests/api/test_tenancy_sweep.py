"""Tenancy sweep: every /api/v1/ route that takes an id, called with merchant B's ids and A's key, is a 404.

Routes are found by walking the URL resolver, so routes added later (batches,
webhook endpoints, ...) are swept automatically. Each URL parameter name needs
a maker of a merchant-B object in ID_MAKERS: a route with a parameter nobody
registered fails loudly until its author adds one.
"""

import json
import re
from collections.abc import Callable

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from payments.models import Event, Payment, PaymentBatch, Refund
from payments.services.payments import payment_hold
from tests.api.conftest import Api
from tests.factories import PaymentFactory

B_SECRET = "B-SECRET-REFERENCE"
B_NAME = "Beatrix Secretname"


class BWorld:
    """Merchant B's objects, created on first use."""

    def __init__(self, merchant_b):
        self.merchant = merchant_b
        self.made_ids: set[str] = set()
        self.payment = PaymentFactory(merchant=merchant_b, reference=B_SECRET, beneficiary_name=B_NAME)
        payment_hold(payment=self.payment)  # also writes B's events
        self.event = Event.objects.filter(payment=self.payment).latest("id")

    def secrets(self) -> set[str]:
        return {B_SECRET, B_NAME, self.merchant.name, self.merchant.slug} | self.made_ids


def _batch(world: BWorld) -> str:
    return PaymentBatch.objects.create(merchant=world.merchant, name="b-secret.csv").public_id


def _webhook_endpoint(world: BWorld) -> str:
    from payments.services.notifications.endpoints import webhook_endpoint_create

    endpoint, _secret = webhook_endpoint_create(merchant=world.merchant, url="https://b.example/hooks")
    return endpoint.public_id


# URL parameter name -> maker of a merchant-B object id. Register new kinds here.
ID_MAKERS: dict[str, Callable[[BWorld], str]] = {
    "payment_id": lambda world: world.payment.public_id,
    "event_id": lambda world: world.event.public_id,
    "batch_id": _batch,
    "endpoint_id": _webhook_endpoint,
}
UNSAFE = ("post", "put", "patch", "delete")


def api_routes_with_ids() -> list[tuple[str, list[str], list[str]]]:
    """(route template, parameter names, HTTP methods) of every /api/v1/ route with parameters."""
    found = []

    def walk(patterns, prefix):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern) and route.startswith("api/v1/"):
                names = re.findall(r"<(?:\w+:)?(\w+)>", route) or list(entry.pattern.regex.groupindex)
                view = getattr(entry.callback, "cls", None) or getattr(entry.callback, "view_class", None)
                methods = [m for m in ("get", *UNSAFE) if view is not None and hasattr(view, m)]
                if names:
                    found.append(("/" + route, names, methods))

    walk(get_resolver().url_patterns, "")
    return found


def test_the_sweep_sees_the_payment_and_event_routes():
    routes = {route for route, _names, _methods in api_routes_with_ids()}
    assert "/api/v1/payments/<str:payment_id>/refunds" in routes
    assert "/api/v1/events/<str:event_id>" in routes


def test_every_route_with_merchant_b_ids_and_a_key_is_404_and_leaks_nothing(merchant_b, key_a, mallory):
    world = BWorld(merchant_b)
    before = {
        "payments": list(Payment.objects.filter(merchant=merchant_b).values("status", "updated_at")),
        "events": Event.objects.filter(merchant=merchant_b).count(),
        "refunds": Refund.objects.count(),
    }
    client = Api(key_a)
    routes = api_routes_with_ids()
    assert routes
    for route, names, methods in routes:
        unknown = [n for n in names if n not in ID_MAKERS]
        if unknown:
            pytest.fail(
                f"{route} takes {unknown}: register a maker of a merchant-B object for it in "
                f"tests/api/test_tenancy_sweep.py ID_MAKERS"
            )
        ids = {name: ID_MAKERS[name](world) for name in names}
        world.made_ids |= set(ids.values())
        path = route
        for name, value in ids.items():
            path = re.sub(rf"<(?:\w+:)?{name}>", value, path)
        for method in methods:
            response = client.call(
                method.upper(), path, {} if method in UNSAFE else None, HTTP_IDEMPOTENCY_KEY=None
            )
            assert response.status_code == 404, (method, path, response.status_code, response.content)
            assert response["Content-Type"] == "application/problem+json"
            body = response.content.decode()
            assert json.loads(body)["code"] == "not_found"
            leaked = [s for s in world.secrets() if s in body]
            assert not leaked, (method, path, leaked)
    after = {
        "payments": list(Payment.objects.filter(merchant=merchant_b).values("status", "updated_at")),
        "events": Event.objects.filter(merchant=merchant_b).count(),
        "refunds": Refund.objects.count(),
    }
    assert after == before
