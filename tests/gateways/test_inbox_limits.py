"""The callback inbox under abuse: nothing answers 500, rejected requests are stored small."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from payments.apps import ensure_schedules
from payments.gateways import get_gateway
from payments.gateways.sandbox import sign
from payments.models import GatewayCallback
from payments.services.callbacks import callbacks_purge

REJECTED_BODY_BYTES = 4096  # the documented limit: 4 KB of an unverified body

pytestmark = pytest.mark.django_db

GATEWAYS = ["sandbox", "alipay", "wechat_pay", "paypal"]


def _post(gateway: str, body: bytes, content_type: str = "application/json", **extra):
    return Client().post(f"/callbacks/{gateway}/", data=body, content_type=content_type, **extra)


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_an_unexpected_exception_in_verification_is_a_stored_rejection_and_a_400(
    gateway, monkeypatch, caplog
):
    gw_class = type(get_gateway(gateway))

    def broken(self, request):
        raise KeyError("purchase_units")

    monkeypatch.setattr(gw_class, "verify_callback", broken)
    with caplog.at_level(logging.ERROR, logger="payments.services.callbacks"):
        response = _post(gateway, b'{"id": "evt_1"}', HTTP_X_TRACE="abc")

    assert response.status_code == 400
    row = GatewayCallback.objects.get()
    assert row.gateway == gateway
    assert row.status == GatewayCallback.Status.REJECTED
    assert row.reason == "verification failed: KeyError: 'purchase_units'"
    assert row.body == '{"id": "evt_1"}'
    assert row.headers["X-Trace"] == "abc"
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None and record.exc_info[0] is KeyError, "logged with its traceback"


@pytest.mark.parametrize("resource", [{"purchase_units": "x"}, [1], {"purchase_units": [1]}])
def test_a_paypal_event_with_a_malformed_resource_is_rejected_not_a_500(resource):
    body = json.dumps({"id": "WH-1", "event_type": "CHECKOUT.ORDER.APPROVED", "resource": resource}).encode()

    response = _post("paypal", body)

    assert response.status_code == 400
    row = GatewayCallback.objects.get()
    assert row.status == GatewayCallback.Status.REJECTED
    assert row.body == body.decode()


def test_a_rejected_callback_keeps_its_headers_and_only_the_first_4_kb_of_its_body():
    body = b'{"id": "sbxevt_big", "padding": "' + b"x" * 100_000 + b'"}'

    response = _post("sandbox", body, HTTP_X_SANDBOX_SIGNATURE="t=1,v1=forged")

    assert response.status_code == 400
    row = GatewayCallback.objects.get()
    assert row.status == GatewayCallback.Status.REJECTED
    assert row.body == body[:REJECTED_BODY_BYTES].decode()
    assert len(row.body.encode()) == REJECTED_BODY_BYTES
    assert row.headers["X-Sandbox-Signature"] == "t=1,v1=forged"
    assert row.headers["Content-Length"] == str(len(body))


def test_a_rejected_callbacks_header_values_are_cut_too():
    # Within the header limits (PAYDESK_MAX_HEADER_BYTES); beyond them, the request is refused
    # with a 431 before any view runs (payments/api/request_limits.py), as gunicorn refuses it.
    _post("sandbox", b"{}", HTTP_X_SANDBOX_SIGNATURE="t=1,v1=" + "f" * 8_000)

    row = GatewayCallback.objects.get()
    assert len(row.headers["X-Sandbox-Signature"]) == 1024


def test_a_callback_with_headers_over_the_limit_is_a_431_and_stores_nothing(settings):
    response = _post(
        "sandbox", b"{}", HTTP_X_SANDBOX_SIGNATURE="t=1,v1=" + "f" * settings.PAYDESK_MAX_HEADER_BYTES
    )

    assert response.status_code == 431
    assert response.json()["code"] == "request_header_fields_too_large"
    assert not GatewayCallback.objects.exists()


def test_a_body_over_djangos_memory_limit_is_rejected_with_its_start_stored(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = b"{" + b" " * 50_000 + b"}"

    response = _post("sandbox", body, HTTP_X_SANDBOX_SIGNATURE="t=1,v1=00")

    assert response.status_code == 400
    row = GatewayCallback.objects.get()
    assert row.status == GatewayCallback.Status.REJECTED
    assert row.reason.startswith("RequestDataTooBig")
    assert row.body == body[:REJECTED_BODY_BYTES].decode()


def test_an_accepted_callback_is_stored_whole():
    """The 4 KB cut is for unverified requests only: a verified one is the record of what happened."""
    raw = json.dumps(
        {
            "id": "sbxevt_whole",
            "type": "payment.succeeded",
            "created": int(time.time()),
            "data": {"attempt_key": "pay_unknown-1", "padding": "p" * 10_000},
        }
    ).encode()

    response = _post("sandbox", raw, HTTP_X_SANDBOX_SIGNATURE=sign(raw, int(time.time())))

    assert response.status_code == 200
    row = GatewayCallback.objects.get()
    assert row.status != GatewayCallback.Status.REJECTED
    assert row.body == raw.decode()


@pytest.fixture
def fresh_counters():
    cache.clear()
    yield
    cache.clear()


def test_callbacks_over_the_rate_are_429_per_client_address_and_stored_nowhere(settings, fresh_counters):
    settings.PAYDESK_CALLBACK_RATE = "3/min"
    for _ in range(3):
        assert _post("sandbox", b"{}", REMOTE_ADDR="198.51.100.1").status_code == 400

    refused = _post("sandbox", b"{}", REMOTE_ADDR="198.51.100.1")

    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert GatewayCallback.objects.count() == 3
    assert _post("sandbox", b"{}", REMOTE_ADDR="198.51.100.2").status_code == 400, "another address"
    assert GatewayCallback.objects.count() == 4


def test_a_forwarded_header_is_not_trusted_unless_configured(settings, fresh_counters):
    settings.PAYDESK_CALLBACK_RATE = "2/min"
    settings.PAYDESK_CLIENT_IP_HEADER = ""
    codes = [
        _post("sandbox", b"{}", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
        for i in range(4)
    ]
    assert codes == [400, 400, 429, 429]


def test_behind_a_proxy_each_client_has_its_own_budget(settings, fresh_counters):
    settings.PAYDESK_CALLBACK_RATE = "1/min"
    settings.PAYDESK_CLIENT_IP_HEADER = "X-Forwarded-For"
    settings.PAYDESK_TRUSTED_PROXIES = 1
    proxy = "10.0.0.2"

    def via_proxy(claimed: str, seen: str) -> int:
        forwarded = f"{claimed}, {seen}"
        return _post("sandbox", b"{}", REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=forwarded).status_code

    assert via_proxy("1.1.1.1", "198.51.100.1") == 400
    assert via_proxy("2.2.2.2", "198.51.100.1") == 429, "a forged left-hand entry buys nothing"
    assert via_proxy("1.1.1.1", "198.51.100.2") == 400


def test_the_callback_rate_limit_can_be_switched_off(settings, fresh_counters):
    settings.PAYDESK_CALLBACK_RATE = ""
    assert {_post("sandbox", b"{}").status_code for _ in range(5)} == {400}


def _callback(status: str, age_days: float) -> GatewayCallback:
    row = GatewayCallback.objects.create(
        gateway="sandbox", status=status, event_id=f"e{status}{age_days}", body="{}"
    )
    GatewayCallback.objects.filter(pk=row.pk).update(received_at=timezone.now() - timedelta(days=age_days))
    return row


def test_rejected_and_duplicate_callbacks_are_purged_after_the_retention_days(settings):
    settings.PAYDESK_CALLBACK_RETENTION_DAYS = 7
    S = GatewayCallback.Status
    old = {status: _callback(status, 8) for status in S.values}
    recent = {status: _callback(status, 6) for status in S.values}

    assert callbacks_purge() == 2

    kept = set(GatewayCallback.objects.values_list("pk", flat=True))
    assert old[S.REJECTED].pk not in kept and old[S.DUPLICATE].pk not in kept
    for status in (S.RECEIVED, S.APPLIED, S.IGNORED, S.DEAD):
        assert old[status].pk in kept, f"an old {status} callback is a record and stays"
    assert {r.pk for r in recent.values()} <= kept


def test_the_purge_runs_from_a_django_q_schedule(settings):
    settings.PAYDESK_CALLBACK_RETENTION_DAYS = 30
    ensure_schedules(sender=None)
    ensure_schedules(sender=None)  # idempotent
    schedule = Schedule.objects.get(name="paydesk-callback-purge")
    assert schedule.schedule_type == Schedule.HOURLY and schedule.repeats == -1
    stale = _callback(GatewayCallback.Status.REJECTED, 31)

    assert import_string(schedule.func)() == 1

    assert not GatewayCallback.objects.filter(pk=stale.pk).exists()
