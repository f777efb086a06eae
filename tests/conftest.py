"""Shared fixtures: named personas (alice, bob, carol at merchant A; mallory at B) and the sandbox wiring."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from merchants.models import Membership
from payments.gateways import sandbox
from payments.translations import compile_catalogues
from tests.factories import MembershipFactory, MerchantFactory, UserFactory, make_api_key


def pytest_sessionstart(session):
    """Build the .mo catalogues from the committed .po files (they are never committed)."""
    compile_catalogues()


@pytest.fixture(autouse=True)
def _inline_tasks(settings):
    """Run enqueued tasks in the caller so tests see their effects and their exceptions."""
    settings.PAYDESK_RUN_TASKS_INLINE = True
    settings.SANDBOX_CALLBACK_DELAY = 0
    settings.SANDBOX_FOLLOWUP_DELAY = 0
    settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def merchant_a(db):
    return MerchantFactory(name="Merchant A", slug="merchant-a")


@pytest.fixture
def merchant_b(db):
    return MerchantFactory(name="Merchant B", slug="merchant-b")


def _persona(username, merchant, role):
    user = UserFactory(username=username)
    MembershipFactory(user=user, merchant=merchant, role=role)
    return user


@pytest.fixture
def alice(merchant_a):
    """Owner of merchant A."""
    return _persona("alice@a.example", merchant_a, Membership.Role.OWNER)


@pytest.fixture
def bob(merchant_a):
    """Operator at merchant A."""
    return _persona("bob@a.example", merchant_a, Membership.Role.OPERATOR)


@pytest.fixture
def carol(merchant_a):
    """Approver at merchant A."""
    return _persona("carol@a.example", merchant_a, Membership.Role.APPROVER)


@pytest.fixture
def mallory(merchant_b):
    """Owner of merchant B, who must never see A's data."""
    return _persona("mallory@b.example", merchant_b, Membership.Role.OWNER)


@pytest.fixture
def key_a(merchant_a, alice):
    return make_api_key(merchant_a, ("read", "write", "approve"), created_by=alice)


@pytest.fixture
def key_b(merchant_b, mallory):
    return make_api_key(merchant_b, ("read", "write", "approve"), created_by=mallory)


class SandboxWire:
    """Routes the sandbox's outgoing callbacks through the real callback view (Django test client)."""

    def __init__(self):
        self.client = Client()
        self.sent: list[dict] = []
        self.hold = False
        self.held: list[tuple[str, bytes, dict]] = []

    def post(self, url, body, headers):
        if self.hold:
            self.held.append((url, body, headers))
            return 503
        self.sent.append(json.loads(body))
        extra = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items() if k != "Content-Type"}
        response = self.client.post(
            "/callbacks/sandbox/", data=body, content_type="application/json", **extra
        )
        return response.status_code


@pytest.fixture
def sandbox_wire(monkeypatch):
    wire = SandboxWire()
    monkeypatch.setattr(sandbox, "post_callback", wire.post)
    return wire


@pytest.fixture(autouse=True)
def _postgres_marker_is_honoured(request):
    """A `postgres` test fails (never skips) when the database is not PostgreSQL."""
    if request.node.get_closest_marker("postgres") is None:
        return
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail("This test needs PostgreSQL: run it with DATABASE_URL=postgres://...")


def work_callbacks(callbacks: list) -> list:
    """The on-commit callbacks that do work: all but the activity log's (payments/services/activity.py)."""
    return [c for c in callbacks if c.__module__ != "payments.services.activity"]


# Where `clock` starts: a fixed instant, so that reconciliation timings are exact.
CLOCK_START = datetime(2026, 1, 5, 2, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock(time_machine):
    """Stop time at CLOCK_START; `clock(seconds=90)` moves it to that long after the start."""
    time_machine.move_to(CLOCK_START, tick=False)

    def at(**delta):
        time_machine.move_to(CLOCK_START + timedelta(**delta), tick=False)

    return at
