"""Webhooks are Standard Webhooks: verified by the `standardwebhooks` package, tampering rejected."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from merchants.models import WebhookEndpoint
from payments.channels import webhook
from payments.models import DeliveryStatus
from payments.representations import payment_data
from payments.services.notifications.endpoints import webhook_endpoint_rotate_secret
from payments.services.notifications.sending import delivery_send
from tests.channels.conftest import deliveries, final_payment, record

pytestmark = pytest.mark.django_db


def _flip(text: str, index: int) -> str:
    """Change one character to another printable one (keeps UTF-8 valid)."""
    replacement = "1" if text[index] != "1" else "2"
    return text[:index] + replacement + text[index + 1 :]


def test_event_is_delivered_signed_with_the_event_id_and_payment_json(
    merchant_a, endpoint_a, receiver, django_capture_on_commit_callbacks
):
    payment = final_payment(merchant_a)
    with django_capture_on_commit_callbacks(execute=True):
        event = record(payment)

    assert len(receiver.requests) == 1
    sent = receiver.requests[0]
    body = sent.verify(endpoint_a.secret)
    assert body == {
        "type": "payment.succeeded",
        "timestamp": event.created_at.isoformat(),
        "data": json.loads(json.dumps(payment_data(payment))),
    }
    assert sent.headers["webhook-id"] == event.public_id
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["webhook-signature"].startswith("v1,")
    assert " " not in sent.headers["webhook-signature"]
    [delivery] = deliveries(channel="webhook")
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempts == 1
    assert delivery.last_response_code == 200
    assert delivery.response_excerpt == "ok"
    assert delivery.last_duration_ms is not None


def test_signature_is_hmac_sha256_of_id_timestamp_body_keyed_with_decoded_secret(
    merchant_a, endpoint_a, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        record(final_payment(merchant_a))
    sent = receiver.requests[0]
    import hashlib
    import hmac

    key = base64.b64decode(endpoint_a.secret.removeprefix("whsec_"))
    signed = f"{sent.headers['webhook-id']}.{sent.headers['webhook-timestamp']}.".encode() + sent.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert sent.headers["webhook-signature"] == f"v1,{expected}"


@pytest.mark.parametrize("part", ["body", "id", "timestamp"])
def test_a_changed_byte_in_body_id_or_timestamp_fails_verification(
    part, merchant_a, endpoint_a, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        record(final_payment(merchant_a))
    sent = receiver.requests[0]
    verifier = Webhook(endpoint_a.secret)
    verifier.verify(sent.body, sent.headers)  # the untouched message passes
    body, headers = sent.body.decode(), dict(sent.headers)
    positions = {"body": range(len(body)), "id": range(len(headers["webhook-id"]))}
    positions["timestamp"] = range(len(headers["webhook-timestamp"]))
    for index in positions[part]:
        tampered_body, tampered_headers = body, dict(headers)
        if part == "body":
            tampered_body = _flip(body, index)
        elif part == "id":
            tampered_headers["webhook-id"] = _flip(headers["webhook-id"], index)
        else:
            tampered_headers["webhook-timestamp"] = _flip(headers["webhook-timestamp"], index)
        with pytest.raises(WebhookVerificationError):
            verifier.verify(tampered_body.encode(), tampered_headers)


def test_during_rotation_both_secrets_sign_and_either_verifies(
    merchant_a, endpoint_a, receiver, django_capture_on_commit_callbacks
):
    old_secret = endpoint_a.secret
    endpoint, new_secret = webhook_endpoint_rotate_secret(endpoint=endpoint_a)
    assert new_secret != old_secret and new_secret.startswith("whsec_")
    with django_capture_on_commit_callbacks(execute=True):
        record(final_payment(merchant_a))
    sent = receiver.requests[0]
    assert len(sent.headers["webhook-signature"].split(" ")) == 2
    sent.verify(new_secret)
    sent.verify(old_secret)
    with pytest.raises(WebhookVerificationError):
        sent.verify(webhook.generate_secret())
    body, headers = sent.body.decode(), dict(sent.headers)
    for secret in (old_secret, new_secret):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(_flip(body, 10).encode(), headers)


def test_after_the_overlap_only_the_new_secret_signs(
    merchant_a, endpoint_a, receiver, django_capture_on_commit_callbacks, time_machine
):
    old_secret = endpoint_a.secret
    _endpoint, new_secret = webhook_endpoint_rotate_secret(endpoint=endpoint_a)
    time_machine.move_to(timezone.now() + timedelta(hours=24, seconds=1), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        record(final_payment(merchant_a))
    sent = receiver.requests[0]
    assert " " not in sent.headers["webhook-signature"]
    sent.verify(new_secret)
    with pytest.raises(WebhookVerificationError):
        sent.verify(old_secret)


def test_secret_is_stored_encrypted(endpoint_a):
    row = WebhookEndpoint.objects.get(pk=endpoint_a.pk)
    assert endpoint_a.secret not in row.secret_encrypted
    assert endpoint_a.secret.removeprefix("whsec_") not in row.secret_encrypted
    assert row.signing_secrets() == [endpoint_a.secret]


def test_only_subscribed_event_types_are_sent(merchant_a, endpoint_a, receiver):
    WebhookEndpoint.objects.filter(pk=endpoint_a.pk).update(events=["payment.failed"])
    payment = final_payment(merchant_a)
    record(payment, "payment.succeeded")
    failed = record(payment, "payment.failed")
    [delivery] = deliveries(channel="webhook")
    assert delivery.event == failed


def test_disabled_endpoints_get_no_deliveries(merchant_a, endpoint_a):
    WebhookEndpoint.objects.filter(pk=endpoint_a.pk).update(status="disabled")
    record(final_payment(merchant_a))
    assert deliveries(channel="webhook") == []


def test_3xx_is_a_failure_and_the_redirect_is_not_followed(merchant_a, endpoint_a, receiver, httpserver):
    receiver.status = 302
    receiver.headers = {"Location": httpserver.url_for("/elsewhere")}
    event = record(final_payment(merchant_a))
    [delivery] = deliveries(event=event)
    assert delivery_send(delivery_id=delivery.pk) == DeliveryStatus.PENDING
    delivery.refresh_from_db()
    assert delivery.last_response_code == 302
    assert delivery.attempts == 1
    assert "302" in delivery.error
    assert len(receiver.requests) == 1
    assert [r.path for r, _response in httpserver.log] == ["/hooks"]


def test_response_excerpt_is_capped(merchant_a, endpoint_a, receiver):
    receiver.status = 500
    receiver.answer = "x" * 50_000
    event = record(final_payment(merchant_a))
    [delivery] = deliveries(event=event)
    delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.last_response_code == 500
    assert delivery.response_excerpt == "x" * webhook.EXCERPT_CHARS


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(merchant_a, endpoint_a, receiver, settings):
    import threading

    release = threading.Event()
    settings.PAYDESK_WEBHOOK_TIMEOUT = 0.2
    original = receiver._handle

    def slow(request):
        release.wait(5)
        return original(request)

    receiver.server.clear_all_handlers()
    receiver.server.expect_request("/hooks", method="POST").respond_with_handler(slow)
    event = record(final_payment(merchant_a))
    [delivery] = deliveries(event=event)
    try:
        assert delivery_send(delivery_id=delivery.pk) == DeliveryStatus.PENDING
    finally:
        release.set()
    delivery.refresh_from_db()
    assert delivery.last_response_code is None
    assert "No answer within" in delivery.error


def test_one_http_session_per_process():
    assert webhook.http_session() is webhook.http_session()
