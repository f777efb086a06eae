"""POST/GET /api/v1/payments/{id}/refunds, GET /api/v1/payments/{id}/events, /api/v1/events."""

import pytest

from payments.models import Event, Refund
from tests.api.conftest import assert_problem
from tests.factories import PaymentFactory, payment_input

LIST = "/api/v1/payments"


@pytest.fixture
def succeeded(api, sandbox_wire, django_capture_on_commit_callbacks):
    """A 12.50 USD payment of merchant A that the sandbox has settled."""
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(LIST, payment_input()).json()
    body = api.get(f"{LIST}/{created['id']}").json()
    assert body["status"] == "succeeded"
    return body


def refunds_url(payment_id: str) -> str:
    return f"{LIST}/{payment_id}/refunds"


def test_partial_then_full_refund(api, succeeded, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(refunds_url(succeeded["id"]), {"amount": "5.00", "reason": "damaged"})
    assert response.status_code == 201, response.content
    refund = response.json()
    assert refund["id"].startswith("ref_") and refund["object"] == "refund"
    assert refund["payment"] == succeeded["id"]
    assert refund["amount"] == "5.00" and refund["currency"] == "USD" and refund["reason"] == "damaged"
    assert refund["status"] == "pending"
    payment = api.get(f"{LIST}/{succeeded['id']}").json()
    assert payment["status"] == "partially_refunded" and payment["refunded_amount"] == "5.00"

    with django_capture_on_commit_callbacks(execute=True):
        rest = api.post(refunds_url(succeeded["id"]), {}).json()
    assert rest["amount"] == "7.50"
    payment = api.get(f"{LIST}/{succeeded['id']}").json()
    assert payment["status"] == "refunded" and payment["refunded_amount"] == "12.50"

    listed = api.get(refunds_url(succeeded["id"])).json()
    assert [(r["amount"], r["status"]) for r in listed["data"]] == [
        ("5.00", "succeeded"),
        ("7.50", "succeeded"),
    ]


def test_refund_over_the_refundable_amount_is_422(api, succeeded):
    body = assert_problem(
        api.post(refunds_url(succeeded["id"]), {"amount": "12.51"}), 422, "validation_error"
    )
    assert body["errors"][0]["code"] == "exceeds_refundable"
    assert not Refund.objects.exists()


def test_refund_with_too_many_decimals_for_the_currency_is_422(api, succeeded):
    body = assert_problem(
        api.post(refunds_url(succeeded["id"]), {"amount": "1.001"}), 422, "validation_error"
    )
    assert body["errors"][0]["code"] == "too_many_decimals"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"amount": 5}, "amount"), ({"amount": "-1"}, "amount"), ({"reason": ["x"]}, "reason")],
)
def test_malformed_refund_fields_are_422(api, succeeded, body, field):
    problem = assert_problem(api.post(refunds_url(succeeded["id"]), body), 422, "validation_error")
    assert problem["errors"][0]["field"] == field


def test_refund_of_a_payment_not_succeeded_is_409(api):
    created = api.post(LIST, payment_input()).json()
    body = assert_problem(api.post(refunds_url(created["id"]), {"amount": "1.00"}), 409, "invalid_state")
    assert "processing" in body["detail"]
    assert not Refund.objects.exists()


def test_refund_of_unknown_payment_is_404(api):
    assert_problem(api.post(refunds_url("pay_nope"), {"amount": "1.00"}), 404, "not_found")
    assert_problem(api.get(refunds_url("pay_nope")), 404, "not_found")


def test_payment_events_are_its_timeline_oldest_first(api, succeeded):
    body = api.get(f"{LIST}/{succeeded['id']}/events").json()
    types = [e["type"] for e in body["data"]]
    assert types == ["payment.created", "payment.processing", "payment.succeeded"]
    first = body["data"][0]
    assert first["id"].startswith("evt_") and first["object"] == "event"
    assert first["payment"] == succeeded["id"]
    assert first["data"]["object"]["id"] == succeeded["id"]


def test_payment_events_paginate(api, succeeded):
    page = api.get(f"{LIST}/{succeeded['id']}/events", {"limit": 2}).json()
    assert len(page["data"]) == 2 and page["has_more"]
    rest = api.get(f"{LIST}/{succeeded['id']}/events", {"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [e["type"] for e in rest["data"]] == ["payment.succeeded"]


def test_events_of_unknown_payment_is_404(api):
    assert_problem(api.get(f"{LIST}/pay_nope/events"), 404, "not_found")


def test_event_list_newest_first_with_filters(api, api_b, succeeded):
    other = api.post(LIST, payment_input(reference="ORDER-2")).json()
    api_b.post(LIST, payment_input(reference="B-1"))
    events = api.get("/api/v1/events").json()["data"]
    assert events[0]["payment"] == other["id"]
    assert {e["payment"] for e in events} == {succeeded["id"], other["id"]}
    created = api.get("/api/v1/events", {"type": "payment.created"}).json()["data"]
    assert [e["payment"] for e in created] == [other["id"], succeeded["id"]]
    mine = api.get("/api/v1/events", {"payment": other["id"]}).json()["data"]
    assert {e["type"] for e in mine} == {"payment.created", "payment.processing"}


def test_event_list_rejects_bad_filters(api):
    assert_problem(api.get("/api/v1/events", {"type": "Payment Created"}), 400, "validation_error")
    assert_problem(api.get("/api/v1/events", {"payment": "evt_1"}), 400, "validation_error")


def test_get_event(api, merchant_a):
    payment = PaymentFactory(merchant=merchant_a)
    api.post(f"{LIST}/{payment.public_id}/cancel")
    event = Event.objects.get(payment=payment, type="payment.cancelled")
    body = api.get(f"/api/v1/events/{event.public_id}").json()
    assert body["id"] == event.public_id and body["type"] == "payment.cancelled"
    assert body["data"]["object"]["status"] == "cancelled"


def test_unknown_event_is_404(api):
    assert_problem(api.get("/api/v1/events/evt_nope"), 404, "not_found")
    assert_problem(api.get("/api/v1/events/pay_nope"), 404, "not_found")
