"""Every API error is an RFC 9457 problem (application/problem+json), inside and outside DRF views."""

from unittest import mock

from django.test import Client, RequestFactory

from payments.api import problems
from tests.api.conftest import PROBLEM, Api, assert_problem


def test_unknown_api_url_is_a_problem_404(db):
    assert_problem(Client().get("/api/v1/nothing-here"), 404, "not_found")
    assert_problem(Client().post("/api/v2/payments"), 404, "not_found")


def test_trailing_slash_gets_a_hint(api):
    body = assert_problem(api.get("/api/v1/payments/"), 404, "not_found")
    assert "trailing slash" in body["detail"]


def test_unknown_url_outside_the_api_is_not_a_problem(db):
    response = Client().get("/definitely-not-a-page/x")
    assert response.status_code == 404
    assert response["Content-Type"] != PROBLEM


def test_django_level_handlers_answer_problems_under_api_only():
    factory = RequestFactory()
    api_request, page_request = factory.get("/api/v1/x"), factory.get("/dashboard/x")
    for handler, status, code in (
        (problems.handler400, 400, "bad_request"),
        (problems.handler403, 403, "forbidden"),
        (problems.handler404, 404, "not_found"),
    ):
        assert_problem(handler(api_request, Exception()), status, code)
        assert handler(page_request, Exception())["Content-Type"] != PROBLEM
    assert_problem(problems.handler500(api_request), 500, "server_error")
    assert problems.handler500(page_request)["Content-Type"] != PROBLEM


def test_unexpected_error_in_a_view_is_a_bare_500(api, caplog):
    with mock.patch(
        "payments.api.views.selectors.payment_list", side_effect=ZeroDivisionError("db pw=hunter2")
    ):
        response = api.get("/api/v1/payments")
    body = assert_problem(response, 500, "server_error")
    assert "hunter2" not in response.content.decode() and "ZeroDivisionError" not in response.content.decode()
    assert set(body) == {"type", "title", "status", "code", "detail"}
    assert "unhandled API error" in caplog.text


def test_not_acceptable_is_a_problem(api):
    assert_problem(api.get("/api/v1/payments", HTTP_ACCEPT="text/html"), 406, "not_acceptable")


def test_auth_errors_are_problems_for_every_route(db):
    for path in ("/api/v1/payments", "/api/v1/payments/pay_x", "/api/v1/events", "/api/v1/events/evt_x"):
        assert_problem(Api(None).get(path), 401, "unauthenticated")
