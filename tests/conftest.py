"""Shared fixtures: named personas (alice, bob, carol at merchant A; mallory at B) and the sandbox wiring."""

import json
import logging
import os
import time
import traceback
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import settings as hypothesis_settings

from merchants.accounts.policy import VERIFIED_AT_SESSION_KEY
from merchants.models import Membership
from payments.gateways import sandbox
from payments.translations import compile_catalogues
from tests.factories import MembershipFactory, MerchantFactory, UserFactory, make_api_key

# CI (.ci/env.sh sets CI): property-based tests draw the same examples on every run, from nothing
# stored by an earlier run, and never fail on timing (docs/operations.md, "Replaying a CI failure").
hypothesis_settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, max_examples=100, print_blob=True
)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


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


def pass_second_factor(client: Client, user) -> None:
    """Give `user` an authenticator app and mark the client's session as having just verified it.

    What a real sign-in ends with (password, then code): tests that are not
    about the second factor start from there. Tests of the second factor itself
    are marked `real_second_factor` and get a plain session.
    """
    device, _ = TOTPDevice.objects.get_or_create(user=user, name="test app", defaults={"confirmed": True})
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[VERIFIED_AT_SESSION_KEY] = time.time()
    session.save()


@pytest.fixture(autouse=True)
def _force_login_passes_second_factor(request, monkeypatch):
    """client.force_login(user) signs in as a real sign-in would, second factor included."""
    if request.node.get_closest_marker("real_second_factor") is not None:
        return
    plain = Client.force_login

    def force_login(self, user, backend=None):
        plain(self, user, backend)
        pass_second_factor(self, user)

    monkeypatch.setattr(Client, "force_login", force_login)


class SuiteLog(logging.Handler):
    """Every log record of the run, formatted as it would be printed (tests/test_log_secrets.py reads it)."""

    lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        SuiteLog.lines.append((record.name, text))


@pytest.fixture(scope="session", autouse=True)
def _suite_log():
    handler = SuiteLog(level=logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)


def pytest_collection_modifyitems(items):
    """The log scan runs last, over the logs of every test before it."""
    last = [item for item in items if item.nodeid.startswith("tests/test_log_secrets.py")]
    items[:] = [item for item in items if item not in last] + last


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


def confirm_token_of(response) -> str:
    """The one-time token of a confirmation page (payments/services/form_submissions.py)."""
    import re

    match = re.search(r'name="confirm_token" value="([^"]+)"', response.content.decode())
    assert match, "no confirmation token on this page"
    return match.group(1)


def confirmed_post(client, url: str, data: dict | None = None, **kwargs):
    """Go through a money form's confirmation: the review page (GET, or POST of `data`), then confirm."""
    review = client.get(url) if data is None else client.post(url, data)
    assert review.status_code == 200, review.status_code
    token = confirm_token_of(review)
    return client.post(url, {**(data or {}), "confirm": "1", "confirm_token": token}, **kwargs)
