"""Idempotency-Key on unsafe endpoints: replay, conflict, mismatch, scope, expiry and release."""

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from django_q.models import Schedule

from payments.apps import ensure_schedules
from payments.models import GatewayAttempt, IdempotencyKey, Payment, Refund
from payments.services.idempotency import KEY_TTL, purge_expired_keys
from payments.tasks import idempotency_keys_purge_task
from tests.api.conftest import assert_problem
from tests.factories import PaymentFactory, payment_input

LIST = "/api/v1/payments"


def test_same_key_same_body_replays_the_stored_answer_byte_for_byte(api):
    first = api.post(LIST, payment_input(), idem="order-1-create")
    again = api.post(LIST, payment_input(), idem="order-1-create")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert again["Location"] == first["Location"] and again["Content-Type"] == first["Content-Type"]
    assert "Idempotent-Replayed" not in first
    assert Payment.objects.count() == 1 and GatewayAttempt.objects.count() == 1


def test_replay_ignores_json_formatting_and_key_order(api):
    data = payment_input()
    api.post(LIST, data, idem="k")
    reordered = json.dumps(dict(reversed(list(data.items()))), indent=2)
    again = api.post(LIST, raw=reordered, idem="k")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"


def test_quoted_structured_field_key_is_the_same_key(api):
    api.post(LIST, payment_input(), idem="abc")
    assert api.post(LIST, payment_input(), idem='"abc"')["Idempotent-Replayed"] == "true"


def test_same_key_different_body_is_422_and_creates_nothing(api):
    api.post(LIST, payment_input(), idem="k1")
    body = assert_problem(
        api.post(LIST, payment_input(amount="99.00"), idem="k1"), 422, "idempotency_key_reused"
    )
    assert "different request" in body["detail"]
    assert Payment.objects.count() == 1


def test_same_key_on_another_endpoint_is_422(api, merchant_a):
    payment = PaymentFactory(merchant=merchant_a)
    api.post(LIST, payment_input(), idem="k1")
    assert_problem(api.post(f"{LIST}/{payment.public_id}/cancel", idem="k1"), 422, "idempotency_key_reused")
    assert Payment.objects.get(pk=payment.pk).status == "created"


def test_same_key_while_the_first_request_runs_is_409(api, merchant_a):
    # The first request claimed the key (the row exists) and has not finished (no completed_at).
    IdempotencyKey.objects.create(
        merchant=merchant_a, key="running", method="POST", path=LIST, request_hash="x" * 64
    )
    with mock.patch("payments.api.idempotency.request_fingerprint", return_value="x" * 64, autospec=True):
        response = api.post(LIST, payment_input(), idem="running")
    body = assert_problem(response, 409, "idempotency_request_in_progress")
    assert "still being processed" in body["detail"]
    assert not Payment.objects.exists()


def test_key_over_255_characters_is_400_and_nothing_runs(api):
    assert_problem(api.post(LIST, payment_input(), idem="k" * 256), 400, "idempotency_key_too_long")
    assert not Payment.objects.exists() and not IdempotencyKey.objects.exists()
    assert api.post(LIST, payment_input(), idem="k" * 255).status_code == 201


@pytest.mark.parametrize("value", ["", "  ", "tab\there", "caf\u00e9"])
def test_empty_or_non_printable_key_is_400(api, value):
    assert_problem(api.post(LIST, payment_input(), idem=value), 400, "idempotency_key_invalid")
    assert not Payment.objects.exists()


def test_keys_are_scoped_per_merchant(api, api_b):
    assert api.post(LIST, payment_input(), idem="shared").status_code == 201
    answer_b = api_b.post(LIST, payment_input(reference="B-1"), idem="shared")
    assert answer_b.status_code == 201 and "Idempotent-Replayed" not in answer_b
    assert Payment.objects.count() == 2


def test_expired_key_counts_as_unused(api):
    first = api.post(LIST, payment_input(), idem="old").json()
    IdempotencyKey.objects.update(created_at=timezone.now() - KEY_TTL - timedelta(seconds=1))
    again = api.post(LIST, payment_input(reference="ORDER-2"), idem="old")
    assert again.status_code == 201 and again.json()["id"] != first["id"]
    assert IdempotencyKey.objects.get(key="old").created_at > timezone.now() - timedelta(minutes=1)


def test_purge_deletes_only_keys_older_than_24_hours(api):
    api.post(LIST, payment_input(), idem="old")
    api.post(LIST, payment_input(reference="ORDER-2"), idem="new")
    IdempotencyKey.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=24, minutes=1)
    )
    assert idempotency_keys_purge_task() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert purge_expired_keys(now=timezone.now() + timedelta(days=2)) == 1


def test_purge_is_scheduled(db):
    ensure_schedules(sender=None)
    ensure_schedules(sender=None)
    schedule = Schedule.objects.get(name="paydesk-idempotency-purge")
    assert schedule.func == "payments.tasks.idempotency_keys_purge_task"
    assert schedule.schedule_type == Schedule.HOURLY and schedule.repeats == -1


def test_client_errors_are_stored_and_replayed(api, merchant_a):
    PaymentFactory(merchant=merchant_a, reference="ORDER-1")
    first = api.post(LIST, payment_input(), idem="dup")
    assert first.status_code == 409
    again = api.post(LIST, payment_input(), idem="dup")
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"


def test_a_server_error_releases_the_key_and_discloses_nothing(api):
    boom = RuntimeError("secret internals at /srv/app.py line 3")
    with mock.patch("payments.api.views.payment_create", side_effect=boom, autospec=True):
        response = api.post(LIST, payment_input(), idem="retry-me")
    body = assert_problem(response, 500, "server_error")
    assert "secret" not in response.content.decode() and set(body) == {
        "type",
        "title",
        "status",
        "code",
        "detail",
    }
    assert not IdempotencyKey.objects.filter(key="retry-me").exists()
    assert api.post(LIST, payment_input(), idem="retry-me").status_code == 201


def test_requests_refused_before_the_handler_store_no_key(api, merchant_a, key_a):
    from tests.api.conftest import Api

    assert Api("pdk_000000000000_bad").post(LIST, payment_input(), idem="k").status_code == 401
    assert api.post(LIST, raw="{", idem="k").status_code == 400
    assert not IdempotencyKey.objects.exists()


def test_cancel_is_idempotent(api, merchant_a):
    payment = PaymentFactory(merchant=merchant_a)
    first = api.post(f"{LIST}/{payment.public_id}/cancel", idem="cancel-1")
    again = api.post(f"{LIST}/{payment.public_id}/cancel", idem="cancel-1")
    assert first.status_code == again.status_code == 200 and again.content == first.content
    assert again["Idempotent-Replayed"] == "true"


def test_refund_is_idempotent(api, sandbox_wire, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(LIST, payment_input()).json()
    url = f"{LIST}/{created['id']}/refunds"
    first = api.post(url, {"amount": "1.00"}, idem="refund-1")
    again = api.post(url, {"amount": "1.00"}, idem="refund-1")
    assert first.status_code == 201 and again.content == first.content
    assert Refund.objects.count() == 1


def test_safe_methods_ignore_the_header(api):
    assert api.get(LIST, HTTP_IDEMPOTENCY_KEY="x" * 300).status_code == 200
    assert not IdempotencyKey.objects.exists()


def test_without_a_key_each_request_runs(api):
    api.post(LIST, payment_input())
    assert api.post(LIST, payment_input(reference="ORDER-2")).status_code == 201
    assert not IdempotencyKey.objects.exists()
