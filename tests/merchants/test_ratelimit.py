"""The client address rate limits count by: REMOTE_ADDR, or only the proxy header that is configured."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from merchants.ratelimit import client_address


def _request(remote: str = "203.0.113.9", **headers):
    return RequestFactory().post("/callbacks/sandbox/", REMOTE_ADDR=remote, **headers)


def test_without_a_configured_header_forwarded_headers_are_ignored(settings):
    settings.PAYDESK_CLIENT_IP_HEADER = ""
    request = _request(HTTP_X_FORWARDED_FOR="198.51.100.1", HTTP_X_REAL_IP="198.51.100.2")
    assert client_address(request) == "203.0.113.9"


@pytest.mark.parametrize(
    ("header", "value", "hops", "expected"),
    [
        # The proxy appends the address it saw: the entries before it are the client's own claims.
        ("X-Forwarded-For", "1.2.3.4, 198.51.100.7", 1, "198.51.100.7"),
        ("X-Forwarded-For", "198.51.100.7", 1, "198.51.100.7"),
        # Two proxies of yours (a CDN, then a load balancer): the second entry from the right.
        ("X-Forwarded-For", "1.2.3.4, 198.51.100.7, 10.0.0.2", 2, "198.51.100.7"),
        ("X-Real-IP", "198.51.100.8", 1, "198.51.100.8"),
        # Fewer entries than proxies: the request did not come through them all; count the peer.
        ("X-Forwarded-For", "198.51.100.7", 2, "203.0.113.9"),
        ("X-Forwarded-For", "", 1, "203.0.113.9"),
    ],
)
def test_a_configured_header_gives_the_address_its_proxy_wrote(settings, header, value, hops, expected):
    settings.PAYDESK_CLIENT_IP_HEADER = header
    settings.PAYDESK_TRUSTED_PROXIES = hops
    meta = "HTTP_" + header.upper().replace("-", "_")
    assert client_address(_request(**{meta: value})) == expected


def test_only_the_configured_header_is_trusted(settings):
    settings.PAYDESK_CLIENT_IP_HEADER = "X-Real-IP"
    request = _request(HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client_address(request) == "203.0.113.9"


def test_an_ipv6_client_counts_by_its_slash_64():
    first = client_address(_request("2001:db8:1:2::10"))
    second = client_address(_request("2001:db8:1:2:ffff:ffff:ffff:1"))
    other = client_address(_request("2001:db8:1:3::10"))
    assert first == second == "2001:db8:1:2::/64"
    assert other != first


def test_an_ipv4_mapped_client_counts_as_its_ipv4_address():
    assert client_address(_request("::ffff:198.51.100.3")) == "198.51.100.3"
