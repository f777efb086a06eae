"""POST/GET /api/v1/payments, GET /api/v1/payments/{id}, cancel: happy paths and every error path."""

from datetime import timedelta

import pytest
from django.utils import timezone

from payments.models import Event, GatewayAttempt, Payment, PaymentBatch
from payments.services.payments import payment_hold
from tests.api.conftest import assert_problem
from tests.factories import PaymentFactory, payment_input

LIST = "/api/v1/payments"


def detail(payment_id: str) -> str:
    return f"{LIST}/{payment_id}"


# Create ---------------------------------------------------------------------------------------


def test_create_submits_and_answers_201_with_the_payment_as_it_stands(api, merchant_a, key_a):
    response = api.post(LIST, payment_input(metadata={"order": "42"}, description="Invoice 42"))
    assert response.status_code == 201, response.content
    body = response.json()
    payment = Payment.objects.get(public_id=body["id"])
    assert body["id"].startswith("pay_") and body["object"] == "payment"
    assert body["status"] == "processing"
    assert body["amount"] == "12.50" and body["currency"] == "USD" and body["refunded_amount"] == "0.00"
    assert body["metadata"] == {"order": "42"} and body["description"] == "Invoice 42"
    assert body["failure_code"] is None and body["next_action"] is None and body["batch"] is None
    assert response["Location"] == f"http://testserver{detail(body['id'])}"
    assert payment.merchant == merchant_a and payment.amount_minor == 1250
    assert payment.api_key.prefix == key_a.split("_")[1]
    assert GatewayAttempt.objects.filter(payment=payment).count() == 1
    types = list(payment.events.values_list("type", "actor"))
    assert types[0] == ("payment.created", f"api_key:{payment.api_key.public_id}")
    assert ("payment.processing", f"api_key:{payment.api_key.public_id}") in types


def test_create_with_3ds_account_answers_requires_action_with_next_action(api):
    body = api.post(LIST, payment_input(beneficiary_account="4000000000003155")).json()
    assert body["status"] == "requires_action"
    assert body["next_action"]["type"] == "redirect_to_url"


def test_create_of_a_risky_payment_answers_on_hold_without_gateway_call(api, merchant_a):
    merchant_a.risk_threshold = 0
    merchant_a.save()
    body = api.post(LIST, payment_input()).json()
    assert body["status"] == "on_hold"
    assert not GatewayAttempt.objects.exists()


def test_declined_payment_is_failed_with_its_code(api, sandbox_wire, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(LIST, payment_input(beneficiary_account="4000000000000002")).json()
    body = api.get(detail(created["id"])).json()
    assert body["status"] == "failed"
    assert body["failure_code"] == "card_declined" and body["failure_message"]


def test_amounts_follow_the_currency_decimals(api):
    assert (
        api.post(LIST, payment_input(reference="J", amount="1500", currency="JPY")).json()["amount"] == "1500"
    )
    assert (
        api.post(LIST, payment_input(reference="K", amount="1.250", currency="KWD")).json()["amount"]
        == "1.250"
    )


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"amount": "12.505"}, "amount", "too_many_decimals"),
        ({"amount": "1.5", "currency": "JPY"}, "amount", "too_many_decimals"),
        ({"amount": "0"}, "amount", "amount_not_positive"),
        ({"amount": "-5.00"}, "amount", "amount_not_positive"),
        ({"amount": 12.5}, "amount", "invalid"),
        ({"amount": "1e3"}, "amount", "invalid_amount"),
        ({"currency": "XYZ"}, "currency", "invalid_currency"),
        ({"currency": "usd"}, "currency", "invalid_currency"),
        ({"method": "cheque"}, "method", "invalid_method"),
        ({"reference": "has space"}, "reference", "invalid_reference"),
        ({"reference": "R" * 141}, "reference", "too_long"),
        ({"beneficiary_name": "   "}, "beneficiary_name", "required"),
        ({"beneficiary_account": "12"}, "beneficiary_account", "invalid_account"),
        ({"beneficiary_email": "not-an-email"}, "beneficiary_email", "invalid_email"),
        ({"beneficiary_phone": "call me"}, "beneficiary_phone", "invalid_phone"),
        ({"description": "nul\x00byte"}, "description", "nul"),
        ({"metadata": {"n": 1}}, "metadata", "invalid"),
        ({"metadata": "x"}, "metadata", "invalid"),
        ({"metadata": {"k" * 41: "v"}}, "metadata", "invalid_key"),
        ({"metadata": {"": "v"}}, "metadata", "invalid_key"),
        ({"metadata": {f"k{i}": "v" * 500 for i in range(17)}}, "metadata", "too_large"),
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, "metadata", "too_many_keys"),
        ({"beneficiary_name": None}, "beneficiary_name", "null"),
    ],
)
def test_invalid_fields_are_422_with_per_field_errors_and_store_nothing(api, overrides, field, code):
    body = assert_problem(api.post(LIST, payment_input(**overrides)), 422, "validation_error")
    assert {"field": field, "code": code} in [
        {"field": e["field"], "code": e["code"]} for e in body["errors"]
    ]
    assert not Payment.objects.exists()


def test_every_missing_required_field_is_listed(api):
    body = assert_problem(api.post(LIST, {}), 422, "validation_error")
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"reference", "amount", "currency", "method", "beneficiary_name", "beneficiary_account"}


def test_body_that_is_not_an_object_is_422(api):
    assert_problem(api.post(LIST, [payment_input()]), 422, "validation_error")


def test_malformed_json_is_400(api):
    body = assert_problem(api.post(LIST, raw='{"reference": '), 400, "parse_error")
    assert "JSON" in body["detail"]


def test_lone_surrogate_is_400_not_a_crash(api):
    assert_problem(api.post(LIST, raw='{"reference": "\\ud800"}'), 400, "parse_error")


def test_non_json_body_is_415(api):
    assert_problem(
        api.post(LIST, raw="reference=x", content_type="text/plain"), 415, "unsupported_media_type"
    )


def test_currency_not_enabled_for_the_merchant_is_422(api, merchant_a):
    merchant_a.allowed_currencies = ["EUR"]
    merchant_a.save()
    body = assert_problem(api.post(LIST, payment_input()), 422, "validation_error")
    assert body["errors"][0]["code"] == "currency_not_allowed"


def test_amount_over_the_merchant_limit_is_422(api, merchant_a):
    merchant_a.per_payment_limit_minor = 1000
    merchant_a.save()
    body = assert_problem(api.post(LIST, payment_input(amount="10.01")), 422, "validation_error")
    assert body["errors"] == [
        {"field": "amount", "code": "over_limit", "message": body["errors"][0]["message"]}
    ]


def test_duplicate_reference_is_409_and_creates_nothing(api, merchant_a):
    PaymentFactory(merchant=merchant_a, reference="ORDER-1")
    body = assert_problem(api.post(LIST, payment_input()), 409, "duplicate_reference")
    assert body["errors"][0]["field"] == "reference"
    assert Payment.objects.count() == 1


def test_same_reference_at_another_merchant_is_fine(api, merchant_b):
    PaymentFactory(merchant=merchant_b, reference="ORDER-1")
    assert api.post(LIST, payment_input()).status_code == 201


def test_oversized_body_is_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = payment_input(description="x" * 2000)
    assert_problem(api.post(LIST, body), 413, "payload_too_large")


# List -----------------------------------------------------------------------------------------


@pytest.fixture
def listed(merchant_a, merchant_b):
    """Five payments of A with distinct statuses, methods, currencies and ages; one of B."""
    now = timezone.now()
    batch = PaymentBatch.objects.create(merchant=merchant_a, name="payroll.csv")
    rows = [
        PaymentFactory(merchant=merchant_a, reference="P0", currency="USD", method="card"),
        PaymentFactory(merchant=merchant_a, reference="P1", currency="EUR", method="card"),
        PaymentFactory(merchant=merchant_a, reference="P2", currency="EUR", method="paypal", batch=batch),
        PaymentFactory(merchant=merchant_a, reference="P3", currency="USD", method="alipay"),
        PaymentFactory(merchant=merchant_a, reference="P4", currency="USD", method="card"),
    ]
    for age, payment in zip((5, 4, 3, 2, 1), rows, strict=True):
        Payment.objects.filter(pk=payment.pk).update(created_at=now - timedelta(days=age))
    payment_hold(payment=rows[3])
    PaymentFactory(merchant=merchant_b, reference="B0")
    return {"rows": [Payment.objects.get(pk=p.pk) for p in rows], "batch": batch, "now": now}


def refs(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [p["reference"] for p in response.json()["data"]]


def test_list_is_newest_first_and_only_the_merchants(api, listed):
    assert refs(api.get(LIST)) == ["P4", "P3", "P2", "P1", "P0"]


def test_list_oldest_first(api, listed):
    assert refs(api.get(LIST, {"ordering": "created_at"})) == ["P0", "P1", "P2", "P3", "P4"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "on_hold"}, ["P3"]),
        ({"method": "card"}, ["P4", "P1", "P0"]),
        ({"currency": "EUR"}, ["P2", "P1"]),
        ({"reference": "P1"}, ["P1"]),
        ({"method": "card", "currency": "USD"}, ["P4", "P0"]),
    ],
)
def test_list_filters(api, listed, params, expected):
    assert refs(api.get(LIST, params)) == expected


def test_list_filters_by_batch(api, listed):
    assert refs(api.get(LIST, {"batch": listed["batch"].public_id})) == ["P2"]


def test_list_filters_by_created_range(api, listed):
    now = listed["now"]
    params = {
        "created_gte": (now - timedelta(days=4, hours=1)).isoformat(),
        "created_lt": (now - timedelta(days=1, hours=1)).isoformat().replace("+00:00", "Z"),
    }
    assert refs(api.get(LIST, params)) == ["P3", "P2", "P1"]


def test_created_range_accepts_offsets_and_clamps_extreme_instants(api, listed):
    assert refs(api.get(LIST, {"created_gte": "0001-01-01T00:00:00+05:00"})) == ["P4", "P3", "P2", "P1", "P0"]
    assert refs(api.get(LIST, {"created_lt": "9999-12-31T23:59:59-05:00"})) == ["P4", "P3", "P2", "P1", "P0"]


def test_cursor_pagination_walks_forward_and_back(api, listed):
    first = api.get(LIST, {"limit": 2}).json()
    assert [p["reference"] for p in first["data"]] == ["P4", "P3"]
    assert first["has_more"] and first["previous_cursor"] is None
    assert first["next"].startswith("http://testserver/api/v1/payments?")
    second = api.get(LIST, {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [p["reference"] for p in second["data"]] == ["P2", "P1"]
    third = api.get(LIST, {"limit": 2, "cursor": second["next_cursor"]}).json()
    assert [p["reference"] for p in third["data"]] == ["P0"]
    assert not third["has_more"] and third["next_cursor"] is None
    back = api.get(LIST, {"limit": 2, "cursor": third["previous_cursor"]}).json()
    assert [p["reference"] for p in back["data"]] == ["P2", "P1"]
    start = api.get(LIST, {"limit": 2, "cursor": back["previous_cursor"]}).json()
    assert [p["reference"] for p in start["data"]] == ["P4", "P3"]
    assert start["previous_cursor"] is None


def test_pagination_breaks_created_at_ties_by_id(api, merchant_a):
    when = timezone.now()
    made = [PaymentFactory(merchant=merchant_a, reference=f"T{i}") for i in range(5)]
    Payment.objects.filter(pk__in=[p.pk for p in made]).update(created_at=when)
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.get(LIST, params).json()
        seen += [p["id"] for p in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(p.public_id for p in made) and len(seen) == 5


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "paid"}, "status"),
        ({"method": "cash"}, "method"),
        ({"currency": "usd"}, "currency"),
        ({"created_gte": "yesterday"}, "created_gte"),
        ({"created_lt": "2026-01-01T00:00:00"}, "created_lt"),
        ({"created_lt": "2026-02-30T00:00:00Z"}, "created_lt"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "1.0"}, "limit"),
        ({"ordering": "amount"}, "ordering"),
        ({"batch": "pay_123"}, "batch"),
        ({"cursor": "garbage"}, "cursor"),
    ],
)
def test_invalid_query_parameters_are_400_with_per_parameter_errors(api, listed, params, field):
    body = assert_problem(api.get(LIST, params), 400, "validation_error")
    assert [e["field"] for e in body["errors"]] == [field]


def test_empty_list(api):
    body = api.get(LIST).json()
    assert body["data"] == [] and body["has_more"] is False and body["next_cursor"] is None


# Detail ---------------------------------------------------------------------------------------


def test_get_payment(api, merchant_a):
    payment = PaymentFactory(merchant=merchant_a)
    body = api.get(detail(payment.public_id)).json()
    assert body["id"] == payment.public_id and body["status"] == "created" and body["amount"] == "10.00"


@pytest.mark.parametrize("payment_id", ["pay_doesnotexist000000000000", "pay_", "42", "evt_abc"])
def test_unknown_or_malformed_payment_id_is_404(api, payment_id):
    body = assert_problem(api.get(detail(payment_id)), 404, "not_found")
    assert payment_id not in body["detail"]


# Cancel ---------------------------------------------------------------------------------------


def test_cancel_a_held_payment(api, merchant_a):
    payment = PaymentFactory(merchant=merchant_a)
    payment_hold(payment=payment)
    response = api.post(f"{detail(payment.public_id)}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    event = Event.objects.filter(payment=payment).latest("id")
    assert event.type == "payment.cancelled" and event.actor.startswith("api_key:key_")


def test_cancel_a_processing_payment_is_409_and_changes_nothing(api):
    created = api.post(LIST, payment_input()).json()
    body = assert_problem(api.post(f"{detail(created['id'])}/cancel"), 409, "invalid_state")
    assert "processing" in body["detail"]
    assert Payment.objects.get(public_id=created["id"]).status == "processing"


def test_cancel_unknown_payment_is_404(api):
    assert_problem(api.post(f"{detail('pay_unknown')}/cancel"), 404, "not_found")


def test_unsupported_method_is_405_with_allow(api, merchant_a):
    payment = PaymentFactory(merchant=merchant_a)
    response = api.call("DELETE", detail(payment.public_id))
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]
    assert_problem(api.get(f"{detail(payment.public_id)}/cancel"), 405, "method_not_allowed")


def test_a_null_optional_field_is_absent_as_in_files_and_forms(api):
    response = api.post(LIST, payment_input(beneficiary_email=None, beneficiary_phone=None, description=None))
    assert response.status_code == 201, response.content
    assert response.json()["beneficiary_email"] == ""
