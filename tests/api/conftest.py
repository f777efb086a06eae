"""Helpers for API tests: a client that speaks JSON with a Bearer key."""

import json

import pytest
from django.test import Client

PROBLEM = "application/problem+json"


class Api:
    """A thin JSON client for /api/v1 with `Authorization: Bearer <key>`."""

    def __init__(self, key: str | None):
        self.client = Client()
        self.key = key

    def _headers(self, key, idem, extra):
        headers = {}
        key = self.key if key is None else key
        if key:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        if idem is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = idem
        headers.update(extra)
        return headers

    def get(self, path, params=None, *, key=None, **extra):
        return self.client.get(path, params or {}, **self._headers(key, None, extra))

    def post(
        self, path, body=None, *, key=None, idem=None, raw=None, content_type="application/json", **extra
    ):
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return self.client.post(path, data=data, content_type=content_type, **self._headers(key, idem, extra))

    def call(self, method, path, body=None, *, key=None, **extra):
        data = json.dumps(body) if body is not None else ""
        return self.client.generic(
            method, path, data=data, content_type="application/json", **self._headers(key, None, extra)
        )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The personas' passwords are irrelevant here; PBKDF2 would dominate the run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api(key_a):
    """Merchant A's API client (key with read, write, approve)."""
    return Api(key_a)


@pytest.fixture
def api_b(key_b):
    return Api(key_b)


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = json.loads(response.content)
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["type"].endswith("/" + code)
    assert body["detail"]
    assert "Traceback" not in response.content.decode()
    return body
