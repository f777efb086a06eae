"""GET|POST /api/v1/webhook-endpoints, GET|PATCH|DELETE /{id}, POST /{id}/rotate-secret (DESIGN section 6)."""

from __future__ import annotations

import importlib
import json

import pytest
from django.apps import apps
from django.test import Client
from standardwebhooks import Webhook

from merchants.models import WebhookEndpoint
from payments.models import IdempotencyKey
from payments.services.notifications.endpoints import webhook_endpoint_create
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db
BASE = "/api/v1/webhook-endpoints"
PROBLEM = "application/problem+json"


class Api:
    def __init__(self, key: str) -> None:
        self.client = Client()
        self.key = key

    def __call__(self, method: str, path: str, body=None, **headers):
        extra = {"HTTP_AUTHORIZATION": f"Bearer {self.key}"}
        extra.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
        data = json.dumps(body) if body is not None else ""
        return self.client.generic(method, path, data=data, content_type="application/json", **extra)


@pytest.fixture
def api(key_a):
    return Api(key_a)


@pytest.fixture
def api_b(key_b):
    return Api(key_b)


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    return body


def test_create_answers_the_endpoint_with_its_secret_once(api, merchant_a):
    response = api(
        "POST",
        BASE,
        {"url": "https://hooks.example.com/paydesk", "events": ["payment.succeeded"], "description": "ERP"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "url", "events", "description", "status", "secret"}
    assert body["id"].startswith("whe_")
    assert body["url"] == "https://hooks.example.com/paydesk"
    assert body["events"] == ["payment.succeeded"]
    assert body["description"] == "ERP"
    assert body["status"] == "enabled"
    assert body["secret"].startswith("whsec_")
    Webhook(body["secret"])  # a secret the standardwebhooks package accepts
    endpoint = WebhookEndpoint.objects.get(public_id=body["id"])
    assert endpoint.merchant == merchant_a
    assert endpoint.signing_secrets() == [body["secret"]]

    shown = api("GET", f"{BASE}/{body['id']}").json()
    assert "secret" not in shown
    assert shown == {k: v for k, v in body.items() if k != "secret"}
    listed = api("GET", BASE).json()
    assert listed["object"] == "list"
    assert [e["id"] for e in listed["data"]] == [body["id"]]
    assert "secret" not in listed["data"][0]


def test_events_default_to_all(api):
    body = api("POST", BASE, {"url": "https://hooks.example.com/a"}).json()
    assert body["events"] == []
    assert body["description"] == ""


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        ({}, "url", "required"),
        ({"url": "ftp://hooks.example.com"}, "url", "url_not_allowed"),
        (
            {"url": "https://hooks.example.com", "events": ["payment.exploded"]},
            "events.0",  # the offending item of the list
            "unknown_event_type",
        ),
        ({"url": "https://hooks.example.com", "events": "payment.succeeded"}, "events", "not_a_list"),
    ],
)
def test_invalid_input_is_a_422_problem_naming_the_field(api, payload, field, code):
    body = problem(api("POST", BASE, payload), 422, "validation_error")
    assert [(e["field"], e["code"]) for e in body["errors"]] == [(field, code)]
    assert not WebhookEndpoint.objects.exists()


def test_a_private_target_is_refused_when_not_allowed(api, settings):
    settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE = False
    body = problem(api("POST", BASE, {"url": "http://127.0.0.1:8080/hook"}), 422, "validation_error")
    assert body["errors"][0]["code"] == "url_not_allowed"


def test_patch_changes_fields_and_status(api):
    created = api("POST", BASE, {"url": "https://hooks.example.com/a"}).json()
    response = api(
        "PATCH",
        f"{BASE}/{created['id']}",
        {"url": "https://hooks.example.com/b", "events": ["payment.failed"], "status": "disabled"},
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": created["id"],
        "url": "https://hooks.example.com/b",
        "events": ["payment.failed"],
        "description": "",
        "status": "disabled",
    }
    endpoint = WebhookEndpoint.objects.get(public_id=created["id"])
    assert endpoint.disabled_reason == "Disabled by the merchant."
    enabled = api("PATCH", f"{BASE}/{created['id']}", {"status": "enabled"}).json()
    assert enabled["status"] == "enabled"
    problem(api("PATCH", f"{BASE}/{created['id']}", {"status": "paused"}), 422, "validation_error")


def test_delete_removes_the_endpoint(api):
    created = api("POST", BASE, {"url": "https://hooks.example.com/a"}).json()
    assert api("DELETE", f"{BASE}/{created['id']}").status_code == 204
    problem(api("GET", f"{BASE}/{created['id']}"), 404, "not_found")


def test_rotate_secret_answers_the_new_secret_and_both_sign_for_a_day(api):
    created = api("POST", BASE, {"url": "https://hooks.example.com/a"}).json()
    response = api("POST", f"{BASE}/{created['id']}/rotate-secret")
    assert response.status_code == 200, response.content
    rotated = response.json()
    assert set(rotated) == {"id", "url", "events", "description", "status", "secret"}
    assert rotated["secret"] != created["secret"]
    endpoint = WebhookEndpoint.objects.get(public_id=created["id"])
    assert endpoint.signing_secrets() == [rotated["secret"], created["secret"]]


def test_idempotency_key_replays_the_create_without_handing_the_secret_out_again(api):
    first = api("POST", BASE, {"url": "https://hooks.example.com/a"}, **{"Idempotency-Key": "create-1"})
    again = api("POST", BASE, {"url": "https://hooks.example.com/a"}, **{"Idempotency-Key": "create-1"})
    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in first
    assert again["Idempotent-Replayed"] == "true"
    secret = first.json()["secret"]
    assert secret.startswith("whsec_")
    assert again.json() == {**_without_secret(first.json()), "secret_omitted": True}
    assert WebhookEndpoint.objects.count() == 1
    _assert_stored_without_secrets(secret)


def test_idempotency_key_replays_a_rotation_without_the_new_secret(api):
    created = api("POST", BASE, {"url": "https://hooks.example.com/a"}).json()
    path = f"{BASE}/{created['id']}/rotate-secret"
    first = api("POST", path, **{"Idempotency-Key": "rotate-1"})
    again = api("POST", path, **{"Idempotency-Key": "rotate-1"})
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    rotated = first.json()["secret"]
    assert again.json() == {**_without_secret(first.json()), "secret_omitted": True}
    endpoint = WebhookEndpoint.objects.get(public_id=created["id"])
    assert endpoint.signing_secrets() == [rotated, created["secret"]], "rotated once, not twice"
    _assert_stored_without_secrets(rotated)


def _without_secret(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "secret"}


def _assert_stored_without_secrets(secret: str) -> None:
    stored = [bytes(r.response_body) for r in IdempotencyKey.objects.all()]
    assert stored, "the answer was stored under its key"
    for body in stored:
        assert secret.encode() not in body
        assert b"whsec_" not in body
        assert json.loads(body)["secret_omitted"] is True
    for headers in IdempotencyKey.objects.values_list("response_headers", flat=True):
        assert "whsec_" not in json.dumps(headers)


def test_reading_needs_read_and_writing_needs_write(merchant_a, alice):
    reader = Api(make_api_key(merchant_a, ("read",), created_by=alice))
    assert reader("GET", BASE).status_code == 200
    problem(reader("POST", BASE, {"url": "https://hooks.example.com/a"}), 403, "insufficient_scope")
    problem(Api("pdk_000000000000_nope")("GET", BASE), 401, "invalid_api_key")


def test_another_merchants_endpoint_is_a_404_for_every_verb(api, api_b, merchant_b):
    theirs, _secret = webhook_endpoint_create(merchant=merchant_b, url="https://hooks.example.com/b")
    path = f"{BASE}/{theirs.public_id}"
    problem(api("GET", path), 404, "not_found")
    problem(api("PATCH", path, {"status": "disabled"}), 404, "not_found")
    problem(api("DELETE", path), 404, "not_found")
    problem(api("POST", f"{path}/rotate-secret"), 404, "not_found")
    assert api("GET", BASE).json()["data"] == []
    theirs.refresh_from_db()
    assert theirs.is_enabled
    assert api_b("GET", path).status_code == 200


def test_endpoint_quota_is_a_409_conflict(api):
    for i in range(20):
        assert api("POST", BASE, {"url": f"https://hooks{i}.example.com/h"}).status_code == 201
    body = problem(api("POST", BASE, {"url": "https://one-more.example.com/h"}), 409, "too_many_endpoints")
    assert "at most 20" in body["detail"]


def test_the_migration_scrubs_secrets_stored_before_this_change(api, merchant_a):
    """Keys stored by the old code held the whole answer; the data migration rewrites them."""
    migration = importlib.import_module("payments.migrations.0009_abuse_limits")
    first = api("POST", BASE, {"url": "https://hooks.example.com/a"}, **{"Idempotency-Key": "old-1"})
    secret = first.json()["secret"]
    IdempotencyKey.objects.update(response_body=first.content)  # as the old code stored it

    migration.scrub_stored_secrets(apps, None)

    _assert_stored_without_secrets(secret)
    again = api("POST", BASE, {"url": "https://hooks.example.com/a"}, **{"Idempotency-Key": "old-1"})
    assert again.json() == {**_without_secret(first.json()), "secret_omitted": True}


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com:44300/paydesk",  # ports of 10000 and more were refused
        "https://hooks.example.com:65535/",
        "https://[2001:db8::1]/paydesk",  # bracketed IPv6 literals were refused
        "https://[2001:db8::1]:8443/paydesk?x=1",
        "https://[::ffff:203.0.113.9]/h",
        "http://hooks.example.com?tenant=a",
        "https://hooks_1.example.com/",
    ],
)
def test_every_valid_url_is_accepted_by_its_form(api, url):
    created = api("POST", BASE, {"url": url})
    assert created.status_code == 201, created.content
    assert created.json()["url"] == url
    assert api("PATCH", f"{BASE}/{created.json()['id']}", {"url": url}).status_code == 200


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com:65536/", "https://[2001:db8::1::2]/", "https://[hooks.example.com]/"],
)
def test_a_url_that_is_not_one_is_refused(api, url):
    body = problem(api("POST", BASE, {"url": url}), 422, "validation_error")
    assert body["errors"][0]["code"] == "url_not_allowed"


@pytest.mark.parametrize("url", ["https://[::1]:44300/hook", "https://[64:ff9b::7f00:1]/hook"])
def test_safety_stays_with_the_address_check(api, settings, url):
    settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE = False
    body = problem(api("POST", BASE, {"url": url}), 422, "validation_error")
    assert body["errors"][0]["code"] == "url_not_allowed"
    assert "public addresses" in body["errors"][0]["message"]
