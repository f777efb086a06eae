"""The OpenAPI schema's examples are real: every request example, sent as it is, gets its documented answer.

A request example's documented answer is the response example with the same
name (Swagger UI pairs them the same way). Each example runs against a fresh
merchant A with what its operation needs (a settled payment to refund, an
endpoint to change); the answer must have the documented status and the
documented example's shape.
"""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from payments.api.examples import CARD_PAYMENT
from tests.api.conftest import Api


def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def documented_status(operation: dict, name: str) -> str:
    """The status under which the response example called `name` is documented (exactly one)."""
    statuses = {
        status
        for status, answer in operation["responses"].items()
        for content in answer.get("content", {}).values()
        if name in content.get("examples", {})
    }
    assert len(statuses) == 1, (operation["operationId"], name, statuses)
    return statuses.pop()


def request_examples() -> list:
    cases = []
    for path, operations in _schema()["paths"].items():
        for method, operation in operations.items():
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
                for name, example in content.get("examples", {}).items():
                    cases.append(
                        pytest.param(
                            path, method, media_type, name, example["value"], id=f"{method} {path} {name}"
                        )
                    )
    return cases


def documented_example(operation: dict, status: str, name: str) -> dict:
    for content in operation["responses"][status]["content"].values():
        if name in content.get("examples", {}):
            return content["examples"][name]["value"]
    raise AssertionError(name)


@pytest.fixture
def api(key_a, sandbox_wire, settings) -> Api:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return Api(key_a)


def settled_payment(api: Api, capture) -> str:
    """The card payment of the "Card payment" example, settled by the sandbox: what a refund needs."""
    with capture(execute=True):
        created = api.post("/api/v1/payments", CARD_PAYMENT)
    assert created.status_code == 201, created.content
    payment_id = created.json()["id"]
    assert api.get(f"/api/v1/payments/{payment_id}").json()["status"] == "succeeded"
    return payment_id


def webhook_endpoint(api: Api) -> str:
    created = api.post("/api/v1/webhook-endpoints", {"url": "https://example.com/hooks", "events": []})
    assert created.status_code == 201, created.content
    return created.json()["id"]


@pytest.mark.parametrize(("path", "method", "media_type", "name", "value"), request_examples())
def test_every_request_example_gets_its_documented_answer(
    api, path, method, media_type, name, value, django_capture_on_commit_callbacks
):
    operation = _schema()["paths"][path][method]
    status = documented_status(operation, name)
    if "{payment_id}" in path:
        path = path.replace("{payment_id}", settled_payment(api, django_capture_on_commit_callbacks))
    if "{endpoint_id}" in path:
        path = path.replace("{endpoint_id}", webhook_endpoint(api))
    assert "{" not in path, f"no set-up for {path}: add one to this test"

    if media_type == "multipart/form-data":
        form = {
            k: SimpleUploadedFile("payroll.csv", v.encode()) if k == "file" else v for k, v in value.items()
        }
        answer = api.client.post(path, form, HTTP_AUTHORIZATION=f"Bearer {api.key}")
    else:
        answer = api.client.generic(
            method.upper(),
            path,
            json.dumps(value),
            content_type=media_type,
            HTTP_AUTHORIZATION=f"Bearer {api.key}",
        )

    assert str(answer.status_code) == status, answer.content
    documented = documented_example(operation, status, name)
    received = answer.json()
    assert set(received) == set(documented), f"{name}: the example's fields differ from the answer's"
    for field in ("status", "code", "currency", "amount", "method", "object"):
        if field in documented:
            assert received[field] == documented[field], (field, received, documented)
    for field, value in documented.items():
        assert kind(received[field]) == kind(value), (name, field, received[field], value)


def kind(value) -> str:
    """A value's JSON type, and for a public id its prefix (`pay_...` is "id:pay")."""
    if isinstance(value, str) and (
        match := re.fullmatch(r"(pay|bat|ref|evt|whe|key)_[A-Za-z0-9]{24}", value)
    ):
        return "id:" + match.group(1)
    return type(value).__name__


def test_every_body_in_the_schema_has_examples():
    missing = []
    for path, operations in _schema()["paths"].items():
        for method, operation in operations.items():
            bodies = [("request", operation.get("requestBody", {}))]
            bodies += [(status, answer) for status, answer in operation["responses"].items()]
            for where, body in bodies:
                for media_type, content in body.get("content", {}).items():
                    if not content.get("examples"):
                        missing.append(f"{method.upper()} {path} {where} {media_type}")
    assert missing == []


def test_schema_generation_prints_no_warning(capsys):
    """drf-spectacular's own validation, failing on any warning (generated names, collisions)."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
    assert "Warning" not in capsys.readouterr().err


def test_enums_have_names_of_their_own():
    schemas = _schema()["components"]["schemas"]
    enums = {name for name, schema in schemas.items() if "enum" in schema}
    assert {"PaymentStatusEnum", "RefundStatusEnum", "WebhookEndpointStatusEnum", "ListObjectEnum"} <= enums
    assert not [name for name in enums if any(c.isdigit() for c in name)], enums


def test_operation_ids_are_unique_and_chosen():
    ids = [op["operationId"] for ops in _schema()["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert not [i for i in ids if i.startswith("v1_") or i[-1].isdigit()], ids
