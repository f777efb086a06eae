"""Oversized requests (414, 431) and repeated query parameters (400) are problem details, like every error.

The seen failure (issue 17): Schemathesis sent `GET /api/v1/payments/{id}/events`
with a cursor of `!` and dozens of repeated `limit` parameters, a 4,550-byte
request line; gunicorn answered `414 URI Too Long` as an HTML page, a status
the schema did not document, before the API could reject the parameters.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import Client

from payments.api.request_limits import oversized_problem
from payments.models import PaymentBatch
from tests.api.conftest import PROBLEM
from tests.factories import PaymentFactory

ROOT = Path(__file__).resolve().parents[2]
URI_TOO_LONG = {
    "type": "https://paydesk.dev/problems/uri_too_long",
    "title": "URI too long",
    "status": 414,
    "code": "uri_too_long",
    "detail": "The request URI is longer than the server accepts; send fewer or shorter parameters.",
}
HEADERS_TOO_LARGE = {
    "type": "https://paydesk.dev/problems/request_header_fields_too_large",
    "title": "Request header fields too large",
    "status": 431,
    "code": "request_header_fields_too_large",
    "detail": "The request's header fields are larger or more numerous than the server accepts.",
}
# The seen request: a cursor of "!" and dozens of repeated limits, 4,550 bytes on the request line.
SEEN_QUERY = "cursor=%21&" + "&".join(f"limit={'9' * 40}" for _ in range(96))


def seen_request_line(payment_id: str) -> bytes:
    return f"GET /api/v1/payments/{payment_id}/events?{SEEN_QUERY} HTTP/1.1".encode()


# Django's own limits (RequestLimitsMiddleware) -------------------------------------------------------


def test_a_uri_over_the_limit_is_a_414_problem_on_every_path(db, settings):
    long_query = "x=" + "a" * settings.PAYDESK_MAX_URI_BYTES
    for path in ("/api/v1/payments", "/api/v1/nowhere", "/payments/"):
        response = Client().get(f"{path}?{long_query}")
        assert response.status_code == 414, path
        assert response["Content-Type"] == PROBLEM
        assert response.json() == URI_TOO_LONG


def test_a_uri_at_the_limit_reaches_the_api(api, settings):
    path = "/api/v1/payments?reference="
    query_pad = settings.PAYDESK_MAX_URI_BYTES - len(path)
    response = api.get(path + "A" * query_pad)
    # Past the size check: the API itself rejects an over-long reference.
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_the_uri_limit_is_a_setting(api, settings):
    settings.PAYDESK_MAX_URI_BYTES = 300
    assert api.get("/api/v1/payments?reference=" + "A" * 250).status_code == 400
    assert api.get("/api/v1/payments?reference=" + "A" * 300).status_code == 414


def test_header_fields_over_the_size_limit_are_a_431_problem(api, settings):
    response = api.get("/api/v1/payments", HTTP_X_PADDING="a" * settings.PAYDESK_MAX_HEADER_BYTES)
    assert response.status_code == 431
    assert response["Content-Type"] == PROBLEM
    assert response.json() == HEADERS_TOO_LARGE


def test_too_many_header_fields_are_a_431_problem(api, settings):
    extra = {f"HTTP_X_FIELD_{i}": "1" for i in range(settings.PAYDESK_MAX_HEADER_FIELDS + 1)}
    response = api.get("/api/v1/payments", **extra)
    assert response.status_code == 431
    assert response.json()["code"] == "request_header_fields_too_large"


def test_ordinary_headers_pass(api):
    response = api.get("/api/v1/payments", HTTP_X_PADDING="a" * 4000)
    assert response.status_code == 200


# gunicorn's limits (config/gunicorn.py) ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the answer to the end; return its status, headers and (de-chunked) body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        decoded = b""
        while True:
            size, _, body = body.partition(b"\r\n")
            if int(size, 16) == 0:
                break
            decoded += body[: int(size, 16)]
            body = body[int(size, 16) + 2 :]
        body = decoded
    return status, headers, body


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    """gunicorn started as production starts it (`-c config/gunicorn.py`), on a free port."""
    tmp = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}", "DEBUG": "1"}
    env.pop("REDIS_URL", None)
    log = open(tmp / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "-b", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                exchange(
                    port, b"GET /api/v1/payments HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("gunicorn did not start:\n" + (tmp / "gunicorn.log").read_text())
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_gunicorn_answers_a_10_kb_request_line_with_the_same_414_problem(gunicorn):
    raw = b"GET /api/v1/payments?x=" + b"a" * 10_240 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    status, headers, body = exchange(gunicorn, raw)
    assert status == 414
    assert headers["content-type"] == PROBLEM
    assert json.loads(body) == URI_TOO_LONG
    assert body == oversized_problem(414)


def test_gunicorn_answers_an_oversized_header_with_the_same_431_problem(gunicorn):
    raw = b"GET /api/v1/payments HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 40_000 + b"\r\n\r\n"
    status, headers, body = exchange(gunicorn, raw)
    assert status == 431
    assert headers["content-type"] == PROBLEM
    assert json.loads(body) == HEADERS_TOO_LARGE


def test_under_gunicorn_paydesk_answers_what_gunicorn_can_parse(gunicorn):
    """gunicorn's limits sit above PayDesk's: a URI just over PayDesk's limit is PayDesk's 414."""
    raw = (
        b"GET /api/v1/payments?x="
        + b"a" * 8100
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    status, headers, body = exchange(gunicorn, raw)
    assert status == 414
    assert headers["content-type"] == PROBLEM
    assert json.loads(body) == URI_TOO_LONG


def test_the_seen_4550_byte_request_line_reaches_the_api(gunicorn):
    """Issue 17: this request line was gunicorn's HTML 414; now the API answers it (401: no key sent)."""
    line = seen_request_line("pay_x")
    assert 4500 < len(line) < 4700
    status, headers, body = exchange(gunicorn, line + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert status == 401
    assert headers["content-type"] == PROBLEM


def test_gunicorn_limits_sit_above_paydesks(settings):
    from config import gunicorn as conf

    request_line_overhead = len("OPTIONS  HTTP/1.1")
    assert conf.limit_request_line >= settings.PAYDESK_MAX_URI_BYTES + request_line_overhead
    assert conf.limit_request_fields > settings.PAYDESK_MAX_HEADER_FIELDS
    assert conf.limit_request_field_size > settings.PAYDESK_MAX_HEADER_BYTES
    assert conf.worker_class == "config.gunicorn.ProblemThreadWorker"


# Repeated query parameters -----------------------------------------------------------------------------


@pytest.fixture
def ids(merchant_a):
    payment = PaymentFactory(merchant=merchant_a)
    batch = PaymentBatch.objects.create(merchant=merchant_a, name="payroll.csv")
    return {"payment": payment.public_id, "batch": batch.public_id}


LISTS = [
    ("/api/v1/payments", "limit"),
    ("/api/v1/payments", "status"),
    ("/api/v1/payments", "cursor"),
    ("/api/v1/events", "type"),
    ("/api/v1/batches", "status"),
    ("/api/v1/webhook-endpoints", "limit"),
    ("/api/v1/payments/{payment}/events", "limit"),
    ("/api/v1/payments/{payment}/refunds", "cursor"),
    ("/api/v1/batches/{batch}/payments", "ordering"),
    ("/api/v1/batches/{batch}/errors", "format"),
    ("/api/v1/batches/{batch}/report", "format"),
]
VALUES = {
    "limit": ("5", "100"),
    "status": ("created", "created"),
    "cursor": ("a.1.pay_x", "b.2.pay_y"),
    "type": ("payment.created", "payment.failed"),
    "ordering": ("created_at", "-created_at"),
    "format": ("csv", "csv"),
}


@pytest.mark.parametrize(("path", "name"), LISTS)
def test_a_repeated_query_parameter_is_a_400_naming_it(api, ids, path, name):
    first, second = VALUES[name]
    response = api.get(path.format(**ids) + f"?{name}={first}&{name}={second}")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == "repeated_parameter"
    assert name in body["detail"]
    assert body["errors"] == [
        {
            "field": name,
            "code": "repeated_parameter",
            "message": "This query parameter is given more than once; give it once.",
        }
    ]


def test_every_repeated_parameter_is_named(api):
    response = api.get("/api/v1/payments?limit=1&limit=2&status=created&status=failed&currency=USD")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["limit", "status"]


def test_the_seen_request_is_a_400_naming_limit(api, ids):
    response = api.get(f"/api/v1/payments/{ids['payment']}/events?{SEEN_QUERY}")
    assert response.status_code == 400
    assert response.json()["code"] == "repeated_parameter"
    assert [e["field"] for e in response.json()["errors"]] == ["limit"]


def test_a_parameter_given_once_still_works(api, ids):
    assert api.get("/api/v1/payments?limit=5&status=created").status_code == 200
    assert api.get(f"/api/v1/batches/{ids['batch']}/report?format=csv").status_code == 200


def test_the_documented_proxy_answers_the_same_bodies():
    """docs/operations.md's nginx snippet serves exactly what PayDesk and its gunicorn serve."""
    text = (ROOT / "docs" / "operations.md").read_text()
    for status in (414, 431):
        body = re.search(rf"return {status} '(.*)';", text).group(1).replace("\\'", "'")
        assert body.encode() == oversized_problem(status)
