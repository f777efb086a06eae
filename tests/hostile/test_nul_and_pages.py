"""NUL characters and huge page numbers: 400 or 404 (or the last page), never a 500 from PostgreSQL.

PostgreSQL refuses U+0000 in text and a LIMIT beyond bigint; SQLite takes both, so the tests that
prove the fix are marked `postgres` (they run in the PostgreSQL pass of .ci/run). The unmarked
ones check the same answers on any database.
"""

import pytest
from django.test import Client

from payments.models import GatewayCallback
from tests.api.conftest import assert_problem
from tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999"

DASHBOARD_QUERIES = [
    "/?status=%00",
    "/?reference=R%00",
    "/?currency=%00",
    "/?method=%00",
    "/?page=%00",
    "/batches/?status=%00",
    "/notifications/?x%00=1",
]
DASHBOARD_PATHS = [
    "/payments/pay_%00/",
    "/payments/pay_%00/status.json",
    "/batches/bat_%00/",
    "/batches/bat_%00/errors.csv",
    "/webhooks/whe_%00/",
    "/funding-accounts/fac_%00/archive/",
]
API_PATHS = [
    "/api/v1/webhook-endpoints/whe_%00",
    "/api/v1/payments/pay_%00",
    "/api/v1/batches/bat_%00",
    "/api/v1/events/evt_%00",
]
API_QUERIES = ["/api/v1/payments?reference=%00", "/api/v1/payments?status=%00", "/api/v1/events?type=%00"]
PAGED = ["/", "/batches/", "/notifications/", "/webhooks/"]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _nul_in_query(alice, url):
    assert _client(alice).get(url).status_code == 400


def _nul_in_path(alice, url):
    assert _client(alice).get(url).status_code == 404


def _nul_in_switch(alice):
    client = _client(alice)
    assert client.post("/merchant/switch/", {"merchant": "merchant-a\x00"}).status_code == 400
    assert client.post("/payments/new/", {"reference": "R\x00", "amount": "1.00"}).status_code == 400


def _nul_in_api_path(key_a, url):
    response = Client().get(url, HTTP_AUTHORIZATION=f"Bearer {key_a}")
    assert_problem(response, 404, "not_found")


def _nul_in_api_query(key_a, url):
    response = Client().get(url, HTTP_AUTHORIZATION=f"Bearer {key_a}")
    assert_problem(response, 400, "bad_request")


def _huge_page(alice, merchant_a, path):
    PaymentFactory.create_batch(3, merchant=merchant_a)
    response = _client(alice).get(f"{path}?page={HUGE}")
    assert response.status_code == 200  # the last page, as for any page past the end


def _nul_cookie(alice):
    client = _client(alice)
    client.cookies["sessionid"] = "abc\x00def"
    assert client.get("/").status_code == 400


@pytest.mark.postgres
@pytest.mark.parametrize("url", DASHBOARD_QUERIES)
def test_nul_in_a_dashboard_query_string_is_400_on_postgres(alice, url):
    _nul_in_query(alice, url)


@pytest.mark.postgres
@pytest.mark.parametrize("url", DASHBOARD_PATHS)
def test_nul_in_a_dashboard_path_id_is_404_on_postgres(alice, url):
    _nul_in_path(alice, url)


@pytest.mark.postgres
def test_nul_in_dashboard_form_fields_is_400_on_postgres(alice):
    _nul_in_switch(alice)


@pytest.mark.postgres
@pytest.mark.parametrize("url", API_PATHS)
def test_nul_in_an_api_path_id_is_a_404_problem_on_postgres(key_a, url):
    _nul_in_api_path(key_a, url)


@pytest.mark.postgres
@pytest.mark.parametrize("url", API_QUERIES)
def test_nul_in_an_api_query_is_a_400_problem_on_postgres(key_a, url):
    _nul_in_api_query(key_a, url)


@pytest.mark.postgres
def test_nul_in_the_session_cookie_is_400_on_postgres(alice):
    _nul_cookie(alice)


@pytest.mark.postgres
@pytest.mark.parametrize("path", PAGED)
def test_a_huge_page_number_lands_on_the_last_page_on_postgres(alice, merchant_a, path):
    _huge_page(alice, merchant_a, path)


@pytest.mark.postgres
@pytest.mark.parametrize("gateway", ["sandbox", "alipay", "wechat_pay", "paypal"])
def test_a_callback_with_nul_characters_is_a_stored_rejection_on_postgres(gateway):
    _nul_callback(gateway)


def _nul_callback(gateway):
    body = b'{"id": "evt_\x00", "event_type": "x\\u0000"}'
    response = Client().post(
        f"/callbacks/{gateway}/", data=body, content_type="application/json", HTTP_X_NOTE="a\x00b"
    )
    assert response.status_code == 400
    row = GatewayCallback.objects.get()
    assert row.status == GatewayCallback.Status.REJECTED
    assert "\x00" not in row.body and row.body.startswith('{"id": "evt_')


# The same answers on any database (SQLite included) ------------------------------------------


@pytest.mark.parametrize("url", DASHBOARD_QUERIES[:2])
def test_nul_in_a_dashboard_query_string_is_400(alice, url):
    _nul_in_query(alice, url)


@pytest.mark.parametrize("url", DASHBOARD_PATHS[:2])
def test_nul_in_a_dashboard_path_id_is_404(alice, url):
    _nul_in_path(alice, url)


def test_nul_in_dashboard_form_fields_is_400(alice):
    _nul_in_switch(alice)


@pytest.mark.parametrize("url", API_PATHS[:1])
def test_nul_in_an_api_path_id_is_a_404_problem(key_a, url):
    _nul_in_api_path(key_a, url)


def test_a_huge_page_number_lands_on_the_last_page(alice, merchant_a):
    _huge_page(alice, merchant_a, "/")


@pytest.mark.parametrize("gateway", ["sandbox", "alipay"])
def test_a_callback_with_nul_characters_is_a_stored_rejection(gateway):
    _nul_callback(gateway)
