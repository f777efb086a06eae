"""Webhook targets on private, loopback or link-local addresses are refused, at creation and at send time."""

from __future__ import annotations

import socket

import pytest

from merchants.models import WebhookEndpoint
from payments.channels import webhook
from payments.channels.webhook import UrlNotAllowed, check_url, is_public_address
from payments.models import DeliveryStatus
from payments.services.notifications.endpoints import NotificationsInvalid, webhook_endpoint_create
from payments.services.notifications.sending import delivery_send
from tests.channels.conftest import deliveries, final_payment, record


def _resolver(*addresses: str):
    def resolve(host, port, type=0):
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1"]  # noqa: S104
    + ["fe80::1", "fc00::1", "::ffff:127.0.0.1", "224.0.0.1"],
)
def test_non_public_addresses_are_not_public(address):
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_public(address):
    assert is_public_address(address)


# IPv6 addresses that carry an IPv4 address are judged by the IPv4 inside (address, public?).
EMBEDDED_IPV4 = [
    # NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): the last 32 bits.
    ("64:ff9b::7f00:1", False),  # 127.0.0.1
    ("64:ff9b::a9fe:a9fe", False),  # 169.254.169.254, cloud metadata
    ("64:ff9b::10.0.0.1", False),
    ("64:ff9b::c0a8:101", False),  # 192.168.1.1
    ("64:ff9b::808:808", True),  # 8.8.8.8
    # Local-use NAT64 64:ff9b:1::/48 (RFC 8215), /96 form; any other form cannot be told: refused.
    ("64:ff9b:1::7f00:1", False),
    ("64:ff9b:1::a00:1", False),
    ("64:ff9b:1::808:808", True),
    ("64:ff9b:1:2:3:4:808:808", False),
    # 6to4 2002::/16 (RFC 3056): bits 16-47.
    ("2002:7f00:1::1", False),
    ("2002:a9fe:a9fe::1", False),
    ("2002:c0a8:101:1::1", False),
    ("2002:808:808::1", True),
    # Teredo 2001::/32 (RFC 4380): the server (bits 32-63) and the client (last 32 bits, inverted).
    ("2001:0:7f00:1:0:0:f7f7:f7f7", False),  # server 127.0.0.1
    ("2001:0:808:808:0:0:80ff:fefe", False),  # client 127.0.1.1
    ("2001:0:808:808:0:0:5601:5656", False),  # client 169.254.169.169
    ("2001:0:808:808:0:0:f7f7:f7f7", True),  # server and client 8.8.8.8
    # IPv4-compatible ::a.b.c.d (RFC 4291, deprecated), IPv4-mapped and IPv4-translated.
    ("::127.0.0.1", False),
    ("::10.1.2.3", False),
    ("::169.254.169.254", False),
    ("::8.8.8.8", True),
    ("::ffff:10.0.0.1", False),
    ("::ffff:8.8.8.8", True),
    ("::ffff:0:127.0.0.1", False),
    ("::ffff:0:8.8.8.8", True),
    ("::", False),
    ("::1", False),
]


@pytest.mark.parametrize(("address", "public"), EMBEDDED_IPV4)
def test_an_ipv4_inside_an_ipv6_address_decides(address, public):
    assert is_public_address(address) is public


@pytest.mark.parametrize("address", [a for a, public in EMBEDDED_IPV4 if not public])
def test_a_host_resolving_to_a_wrapped_private_ipv4_is_refused(settings, address):
    settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(UrlNotAllowed, match="private, loopback or link-local"):
        check_url("https://hooks.example.com/in", resolve=_resolver(address))


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.5", "169.254.169.254", "::1"])
def test_a_host_resolving_to_a_private_address_is_refused(settings, address):
    settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(UrlNotAllowed, match="private, loopback or link-local"):
        check_url("https://hooks.example.com/in", resolve=_resolver(address))


def test_one_private_address_among_public_ones_is_enough_to_refuse(settings):
    settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(UrlNotAllowed):
        check_url("https://hooks.example.com/in", resolve=_resolver("93.184.216.34", "10.0.0.1"))


def test_a_public_host_is_accepted(settings):
    settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE = False
    check_url("https://hooks.example.com/in", resolve=_resolver("93.184.216.34"))


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "https://user:pw@example.com/x", "example.com/hook", "https://", "http://[::1"],
)
def test_malformed_or_unsafe_urls_are_refused_even_when_private_targets_are_allowed(settings, url):
    settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE = True
    with pytest.raises(UrlNotAllowed):
        check_url(url)


@pytest.mark.django_db
def test_creating_an_endpoint_on_loopback_is_refused_unless_allowed(settings, merchant_a):
    settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(NotificationsInvalid) as caught:
        webhook_endpoint_create(merchant=merchant_a, url="http://127.0.0.1:9/hook")
    assert [(e.field, e.code) for e in caught.value.errors] == [("url", "url_not_allowed")]
    assert not WebhookEndpoint.objects.exists()
    settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE = True
    endpoint, _secret = webhook_endpoint_create(merchant=merchant_a, url="http://127.0.0.1:9/hook")
    assert endpoint.is_enabled


@pytest.mark.django_db
def test_dns_rebinding_is_caught_at_send_time_and_disables_the_endpoint(
    settings, merchant_a, receiver, monkeypatch
):
    """The name looked public when the endpoint was saved; at send time it points at loopback."""
    settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE = False
    monkeypatch.setattr(webhook.socket, "getaddrinfo", _public_then_real(socket.getaddrinfo))
    endpoint, _secret = webhook_endpoint_create(merchant=merchant_a, url=receiver.url)
    monkeypatch.undo()

    event = record(final_payment(merchant_a))
    [delivery] = deliveries(event=event, channel="webhook")
    assert delivery_send(delivery_id=delivery.pk) == DeliveryStatus.FAILED
    assert receiver.requests == [], "nothing reached the loopback receiver"
    delivery.refresh_from_db()
    assert "Address refused" in delivery.error
    endpoint.refresh_from_db()
    assert endpoint.status == WebhookEndpoint.Status.DISABLED


def _public_then_real(real):
    calls = {"n": 0}

    def resolve(host, port, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            return _resolver("93.184.216.34")(host, port)
        return real(host, port, *args, **kwargs)

    return resolve


@pytest.mark.django_db
def test_loopback_receivers_work_when_private_targets_are_allowed(settings, merchant_a, endpoint_a, receiver):
    settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE = True
    event = record(final_payment(merchant_a))
    [delivery] = deliveries(event=event)
    assert delivery_send(delivery_id=delivery.pk) == DeliveryStatus.SUCCEEDED
    assert receiver.ids == [event.public_id]
