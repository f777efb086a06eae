"""N(r) of a webhook endpoint (issue 15): shown on its page; the merchant is warned before it is disabled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client

from merchants.models import WebhookEndpoint
from payments.channels.webhook import SCHEDULE
from payments.models import Notification, TimingModel
from payments.services import sweeper
from tests.channels.conftest import final_payment, record

pytestmark = pytest.mark.django_db

T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
AT_RISK = "Webhook endpoint at risk of being disabled"
DISABLED = "Webhook endpoint disabled"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def fitted(endpoint, k: float, theta: float) -> TimingModel:
    return TimingModel.objects.create(
        kind="notification",
        subject=endpoint.public_id,
        k=k,
        theta=theta,
        samples=400,
        positives=300,
        log_likelihood=0,
    )


def test_the_merchant_is_warned_once_when_the_next_attempt_will_probably_fail_before_it_is_disabled(
    merchant_a, alice, bob, endpoint_a, receiver, time_machine, django_capture_on_commit_callbacks
):
    # Fitted: attempt 2 succeeds half the time, attempt 3 with 31 %, later ones less.
    fitted(endpoint_a, k=-0.8, theta=2.0)
    time_machine.move_to(T0, tick=False)
    receiver.status = 500
    with django_capture_on_commit_callbacks(execute=True):
        record(final_payment(merchant_a))
    assert not Notification.objects.filter(title=AT_RISK).exists()  # attempt 2: 50 %, not below

    time_machine.move_to(T0 + timedelta(seconds=SCHEDULE[1]), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        sweeper.sweep()  # attempt 2 fails; attempt 3 has 31 %
    warned = Notification.objects.filter(merchant=merchant_a, title=AT_RISK)
    assert {n.user for n in warned} == {alice, bob}
    assert "31 % chance of success" in warned[0].body and endpoint_a.url in warned[0].body
    assert "2030-03-02 09:00" in warned[0].body  # when it would be disabled
    assert [m.to for m in mail.outbox] == [[alice.email]] and AT_RISK in mail.outbox[0].subject

    for offset in SCHEDULE[2:]:
        time_machine.move_to(T0 + timedelta(seconds=offset), tick=False)
        with django_capture_on_commit_callbacks(execute=True):
            sweeper.sweep()
    endpoint_a.refresh_from_db()
    assert endpoint_a.status == WebhookEndpoint.Status.DISABLED
    assert Notification.objects.filter(user=alice, title=AT_RISK).count() == 1  # once per run of failures
    assert [n.title for n in Notification.objects.filter(user=alice).order_by("created_at", "id")] == [
        AT_RISK,
        DISABLED,
    ]


def test_no_warning_while_the_next_attempt_is_likely_to_succeed(
    merchant_a, alice, endpoint_a, receiver, time_machine, django_capture_on_commit_callbacks
):
    fitted(endpoint_a, k=0.9, theta=1.0)  # a flaky endpoint that recovers: later attempts succeed
    time_machine.move_to(T0, tick=False)
    receiver.status = 500
    with django_capture_on_commit_callbacks(execute=True):
        record(final_payment(merchant_a))
    for offset in SCHEDULE[1:4]:
        time_machine.move_to(T0 + timedelta(seconds=offset), tick=False)
        with django_capture_on_commit_callbacks(execute=True):
            sweeper.sweep()
    assert not Notification.objects.filter(title=AT_RISK).exists()


def test_the_endpoint_page_shows_its_fitted_chances(alice, endpoint_a):
    client = Client()
    client.force_login(alice)
    page = client.get(f"/webhooks/{endpoint_a.public_id}/").content.decode()
    assert "N(r)" not in page  # nothing fitted yet
    fitted(endpoint_a, k=0.9, theta=1.0)
    cache.clear()
    page = client.get(f"/webhooks/{endpoint_a.public_id}/").content.decode()
    assert "N(r)" in page
    assert "attempt 1: 50 %" in page and "attempt 2: 71 %" in page and "attempt 10: 100 %" in page
