"""A JSON body nested 50,000 levels deep is a 400 parse_error on every JSON endpoint, never a 500."""

import json

import pytest
from django.test import Client

from payments.api.parsers import MAX_JSON_DEPTH, json_depth_exceeds
from payments.models import GatewayCallback
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db

DEEP = "[" * 50_000 + "]" * 50_000
DEEP_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000

# Every API operation that takes a JSON body (POST and PATCH). With an Idempotency-Key the body is
# parsed (for the request's fingerprint) before the object is looked up; without one, where the
# body is read at all.
JSON_ENDPOINTS = [
    ("post", "/api/v1/payments"),
    ("post", "/api/v1/payments/pay_missing/refunds"),
    ("post", "/api/v1/payments/pay_missing/cancel"),
    ("post", "/api/v1/batches"),
    ("post", "/api/v1/batches/bat_missing/approve"),
    ("post", "/api/v1/batches/bat_missing/cancel"),
    ("post", "/api/v1/webhook-endpoints"),
    ("patch", "/api/v1/webhook-endpoints/whe_missing"),
    ("post", "/api/v1/webhook-endpoints/whe_missing/rotate-secret"),
]


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["arrays", "objects"])
@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_a_body_nested_50000_deep_is_a_400_parse_error(api, method, path, body):
    response = api.client.generic(
        method.upper(), path, data=body, content_type="application/json", **api._headers(None, "k-1", {})
    )
    assert_problem(response, 400, "parse_error")


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/api/v1/payments"), ("post", "/api/v1/batches"), ("post", "/api/v1/webhook-endpoints")],
)
def test_without_an_idempotency_key_too(api, method, path):
    assert_problem(api.post(path, raw=DEEP), 400, "parse_error")


def test_nesting_up_to_the_limit_parses_and_one_more_level_is_refused(api):
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert not json_depth_exceeds(json.loads(at_limit))
    assert json_depth_exceeds(json.loads("[" + at_limit + "]"))
    # At the limit the body parses: the payment is refused for its fields (422), not its shape.
    response = api.post("/api/v1/payments", raw=at_limit)
    assert response.status_code == 422
    assert_problem(api.post("/api/v1/payments", raw="[" + at_limit + "]"), 400, "parse_error")


@pytest.mark.parametrize("gateway", ["sandbox", "alipay", "wechat_pay", "paypal"])
def test_a_deep_callback_body_is_a_stored_rejection_and_a_400(gateway):
    response = Client().post(f"/callbacks/{gateway}/", data=DEEP, content_type="application/json")
    assert response.status_code == 400
    assert GatewayCallback.objects.get().status == GatewayCallback.Status.REJECTED
