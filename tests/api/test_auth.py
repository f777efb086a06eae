"""Bearer API keys: hashed, found by prefix, scoped to one merchant, with scopes and a rate limit."""

import pytest
from django.core.cache import cache
from django.utils import timezone

from merchants.models import ApiKey, Merchant
from payments.api.auth import api_key_lookup
from tests.api.conftest import Api, assert_problem
from tests.factories import PaymentFactory, make_api_key, payment_input

LIST = "/api/v1/payments"


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    cache.clear()
    yield
    cache.clear()


def test_request_without_key_is_401_with_bearer_challenge(db):
    response = Api(None).get(LIST)
    assert_problem(response, 401, "unauthenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_other_scheme_is_401(key_a):
    response = Api(None).get(LIST, HTTP_AUTHORIZATION=f"Basic {key_a}")
    assert_problem(response, 401, "invalid_authorization")


def test_lowercase_bearer_scheme_is_accepted(key_a):
    assert Api(None).get(LIST, HTTP_AUTHORIZATION=f"bearer {key_a}").status_code == 200


@pytest.mark.parametrize(
    "raw",
    ["pdk_000000000000_nothere", "pdk_zzzz_x", "not-a-key", "pdk__", "pdk_%s_wrong-secret"],
)
def test_unknown_or_wrong_key_is_401(key_a, raw):
    if "%s" in raw:
        raw = raw % key_a.split("_")[1]  # right prefix, wrong secret
    assert_problem(Api(raw).get(LIST), 401, "invalid_api_key")


def test_revoked_key_is_401(merchant_a, key_a):
    key = ApiKey.objects.get(prefix=key_a.split("_")[1])
    key.revoke()
    key.save()
    assert_problem(Api(key_a).get(LIST), 401, "invalid_api_key")


def test_key_of_suspended_merchant_is_401(merchant_a, key_a):
    Merchant.objects.filter(pk=merchant_a.pk).update(status=Merchant.Status.SUSPENDED)
    assert_problem(Api(key_a).get(LIST), 401, "merchant_suspended")


@pytest.mark.parametrize("param", ["api_key", "key", "access_token", "token"])
def test_key_in_query_string_is_refused_even_with_a_valid_header(key_a, param):
    response = Api(key_a).get(LIST, {param: key_a})
    assert_problem(response, 401, "key_in_query")


def test_key_value_in_any_query_parameter_is_refused(key_a):
    assert_problem(Api(None).get(LIST, {"reference": key_a}), 401, "key_in_query")


def test_only_the_hash_is_stored_and_lookup_needs_the_whole_key(merchant_a, key_a):
    stored = ApiKey.objects.get(prefix=key_a.split("_")[1])
    assert key_a not in (stored.key_hash, stored.prefix)
    assert api_key_lookup(key_a) == stored
    assert api_key_lookup(key_a[:-1]) is None


def test_use_records_last_used_at(merchant_a, key_a):
    Api(key_a).get(LIST)
    assert ApiKey.objects.get(prefix=key_a.split("_")[1]).last_used_at is not None


def test_read_only_key_can_read_but_not_write(merchant_a, alice):
    reader = Api(make_api_key(merchant_a, ("read",)))
    assert reader.get(LIST).status_code == 200
    body = assert_problem(reader.post(LIST, payment_input()), 403, "insufficient_scope")
    assert "scope" in body["detail"]
    assert not merchant_a.payments.exists()


def test_write_only_key_cannot_read(merchant_a):
    writer = Api(make_api_key(merchant_a, ("write",)))
    assert_problem(writer.get(LIST), 403, "insufficient_scope")
    assert writer.post(LIST, payment_input()).status_code == 201


def test_every_request_is_scoped_to_the_keys_merchant(merchant_a, merchant_b, key_a, key_b):
    mine = PaymentFactory(merchant=merchant_a, reference="MINE")
    PaymentFactory(merchant=merchant_b, reference="THEIRS")
    body = Api(key_a).get(LIST).json()
    assert [p["id"] for p in body["data"]] == [mine.public_id]


def test_rate_limit_is_per_key_and_answers_429_with_retry_after(settings, merchant_a, key_a, key_b):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "3/min"}}
    client = Api(key_a)
    for _ in range(3):
        assert client.get(LIST).status_code == 200
    response = client.get(LIST)
    assert_problem(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert Api(key_b).get(LIST).status_code == 200  # another key has its own budget


def test_rate_limit_window_resets(settings, merchant_a, key_a, monkeypatch):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "1/min"}}
    now = timezone.now().timestamp()
    monkeypatch.setattr("merchants.ratelimit.time.time", lambda: now)
    client = Api(key_a)
    assert client.get(LIST).status_code == 200
    assert client.get(LIST).status_code == 429
    monkeypatch.setattr("merchants.ratelimit.time.time", lambda: now + 61)
    assert client.get(LIST).status_code == 200
