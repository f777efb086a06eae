"""The OpenAPI schema and Swagger UI: public, served locally, and documenting real behaviour."""

import re

import pytest
from django.test import Client


@pytest.fixture
def schema(db):
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_is_public_openapi_3_with_bearer_security(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "pdk_<prefix>_<secret>",
        "description": "An API key in `Authorization: Bearer <key>`; never in the URL.",
    }
    assert schema["paths"]["/api/v1/payments"]["get"]["security"] == [{"ApiKey": []}]


def test_schema_lists_the_v1_endpoints_without_trailing_slashes(schema):
    paths = set(schema["paths"])
    for path in (
        "/api/v1/payments",
        "/api/v1/payments/{payment_id}",
        "/api/v1/payments/{payment_id}/cancel",
        "/api/v1/payments/{payment_id}/refunds",
        "/api/v1/payments/{payment_id}/events",
        "/api/v1/events",
        "/api/v1/events/{event_id}",
    ):
        assert path in paths
    assert not any(p.startswith("/api/v1/") and p.endswith("/") for p in paths)


def test_unsafe_operations_document_the_idempotency_key_and_replay_header(schema):
    create = schema["paths"]["/api/v1/payments"]["post"]
    header = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and not header.get("required")
    assert header["schema"]["maxLength"] == 255
    assert "Idempotent-Replayed" in create["responses"]["201"]["headers"]
    for path in ("/api/v1/payments/{payment_id}/cancel", "/api/v1/payments/{payment_id}/refunds"):
        names = [p["name"] for p in schema["paths"][path]["post"]["parameters"]]
        assert "Idempotency-Key" in names
    gets = [p["name"] for p in schema["paths"]["/api/v1/payments"]["get"]["parameters"]]
    assert "Idempotency-Key" not in gets


def test_every_error_response_is_a_documented_problem(schema):
    problem = schema["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "code", "detail"}
    create = schema["paths"]["/api/v1/payments"]["post"]["responses"]
    assert set(create) >= {"201", "400", "401", "403", "409", "413", "415", "422", "429", "500"}
    detail = schema["paths"]["/api/v1/payments/{payment_id}"]["get"]["responses"]
    assert set(detail) >= {"200", "401", "403", "404", "429", "500"}
    for path in schema["paths"].values():
        for operation in path.values():
            for code, response in operation["responses"].items():
                if int(code) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (code, response)


def test_request_body_states_the_amount_rules_per_currency(schema):
    body = schema["components"]["schemas"]["PaymentCreateRequest"]
    assert set(body["required"]) == {
        "reference",
        "amount",
        "currency",
        "method",
        "beneficiary_name",
        "beneficiary_account",
    }

    def branch(currency):
        return next(
            b for b in body["anyOf"] if re.fullmatch(b["properties"]["currency"]["pattern"], currency)
        )

    assert len(body["anyOf"]) == 4
    jpy, usd, kwd = branch("JPY")["properties"], branch("USD")["properties"], branch("KWD")["properties"]
    assert re.fullmatch(jpy["amount"]["pattern"], "1500") and not re.fullmatch(
        jpy["amount"]["pattern"], "15.0"
    )
    assert re.fullmatch(usd["amount"]["pattern"], "0.01") and not re.fullmatch(
        usd["amount"]["pattern"], "0.00"
    )
    assert re.fullmatch(kwd["amount"]["pattern"], "1.250") and not re.fullmatch(
        usd["amount"]["pattern"], "1.250"
    )


def test_swagger_ui_is_public_and_loads_its_assets_locally(db):
    page = Client().get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert assets and all(a.startswith("/static/") for a in assets), assets
    assert "cdn" not in html.lower()
    for asset in assets:
        assert Client().get(asset).status_code == 200, asset


def test_the_schema_says_a_replayed_create_or_rotation_has_no_secret(schema):
    component = schema["components"]["schemas"]["WebhookEndpointWithSecret"]
    assert "secret" not in component["required"]
    assert component["properties"]["secret_omitted"]["type"] == "boolean"
    for path, status in (
        ("/api/v1/webhook-endpoints", "201"),
        ("/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret", "200"),
    ):
        operation = schema["paths"][path]["post"]
        assert operation["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/WebhookEndpointWithSecret"
        }
        assert "secret_omitted" in operation["description"]


def test_every_operation_documents_414_and_431_as_problems(schema):
    operations = [
        (path, method, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 20
    problem_ref = "#/components/schemas/Problem"
    for path, method, operation in operations:
        for status, code in (("414", "uri_too_long"), ("431", "request_header_fields_too_large")):
            answer = operation["responses"].get(status)
            assert answer is not None, (method, path, status)
            media = answer["content"]["application/problem+json"]
            assert media["schema"] == {"$ref": problem_ref}
            assert code in answer["description"]
            assert [e["value"]["code"] for e in media["examples"].values()] == [code]


def test_query_operations_document_the_repeated_parameter_400(schema):
    answer = schema["paths"]["/api/v1/payments/{payment_id}/events"]["get"]["responses"]["400"]
    assert "repeated_parameter" in answer["description"]
    codes = {e["value"]["code"] for e in answer["content"]["application/problem+json"]["examples"].values()}
    assert codes == {"validation_error", "repeated_parameter"}
