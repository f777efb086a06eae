"""Webhooks to merchants per the Standard Webhooks specification (DESIGN section 6).

Each request carries `webhook-id` (the event id, the same on every attempt),
`webhook-timestamp` (unix seconds of this attempt) and `webhook-signature`:
`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the
base64-decoded part of the endpoint's `whsec_` secret. During the 24 hours
after a rotation the old secret signs too; the signatures are space-separated.

2xx is success; anything else, 3xx included, is a failure (redirects are never
followed); 410 is permanent. A request has settings.PAYDESK_WEBHOOK_TIMEOUT
seconds (15) in total to connect, send, and get the status line, the headers
and the start of the body: a total deadline (channels/deadline.py), not a
per-read timeout that a receiver dripping bytes can stretch. Targets that resolve
to private, loopback or link-local addresses are refused unless
settings.PAYDESK_WEBHOOK_ALLOW_PRIVATE: the URL is checked when an endpoint is
saved, and the address actually connected to is checked on every send, so a
DNS answer that changes after the check (rebinding) cannot reach inside. An
IPv6 address that carries an IPv4 one (NAT64, 6to4, Teredo, IPv4-compatible or
-mapped) is judged by the IPv4 inside.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import socket
import threading
import time
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from merchants.crypto import SecretUnreadable
from merchants.models import WEBHOOK_SECRET_PREFIX
from payments.channels import HOUR, MINUTE, SendResult, Transport, TransportError
from payments.channels.deadline import SendDeadline, current_deadline, send_deadline

if TYPE_CHECKING:
    from payments.models import Delivery

# Offsets from the first attempt: 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
SCHEDULE = (0, 5, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 5 * HOUR, 10 * HOUR, 14 * HOUR, 20 * HOUR, 24 * HOUR)
# Seconds a connection attempt may take (within the request's total deadline).
CONNECT_SECONDS = 5
EXCERPT_CHARS = 1000
MAX_READ_BYTES = 64 * 1024
USER_AGENT = "PayDesk-Webhooks/1.0"
SECRET_BYTES = 24


class UrlNotAllowed(ValueError):
    """A webhook URL is malformed or points at an address webhooks may not reach."""


class BlockedAddress(OSError):
    """The connection reached an address webhooks may not reach (raised at connect time)."""


# Secrets and signatures ---------------------------------------------------------


def generate_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _secret_key(secret: str) -> bytes:
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(WEBHOOK_SECRET_PREFIX) :])


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return `v1,<base64 signature>` of one message under one secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


def webhook_body(delivery: Delivery) -> bytes:
    """Return the JSON body: the same bytes on every attempt of the same event."""
    if delivery.event_id is not None:
        event = delivery.event
        data = _with_full_beneficiary(event, event.data.get("object", event.data))
        message = {"type": event.type, "timestamp": event.created_at.isoformat(), "data": data}
    else:
        payload = delivery.payload
        message = {"type": delivery.type, "timestamp": payload.get("timestamp"), "data": payload.get("data")}
    return json.dumps(message, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False).encode()


def _with_full_beneficiary(event, data: dict) -> dict:
    """Event data stores beneficiary data masked; a merchant who chose full values gets them back."""
    if not (event.payment_id and isinstance(data, dict) and "beneficiary_account" in data):
        return data
    if not event.merchant.full_beneficiary_data:
        return data
    payment = event.payment
    return {
        **data,
        "beneficiary_account": str(payment.beneficiary_account),
        "beneficiary_email": str(payment.beneficiary_email),
        "beneficiary_phone": str(payment.beneficiary_phone),
    }


def signed_request(delivery: Delivery, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """Return the body and headers of one attempt; raise SecretUnreadable if the secret can't be read."""
    body = webhook_body(delivery)
    timestamp = int(time.time()) if timestamp is None else timestamp
    msg_id = delivery.message_id
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(delivery.endpoint.signing_secrets(), msg_id, timestamp, body),
        # Not signed, for the receiver's logs: which delivery and which attempt of it this is.
        "paydesk-delivery": delivery.public_id,
        "paydesk-attempt": str(delivery.attempts),
    }
    return body, headers


# Address checks -------------------------------------------------------------------


def allow_private() -> bool:
    return bool(getattr(settings, "PAYDESK_WEBHOOK_ALLOW_PRIVATE", False))


# IPv6 forms that carry an IPv4 address a packet may end up at (RFC 6052, 8215, 3056, 4380, 4291).
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
NAT64_LOCAL_USE_96 = ipaddress.IPv6Network("64:ff9b:1::/96")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """Return the IPv4 addresses an IPv6 address stands for ([] if none); None if it cannot be told.

    IPv4-mapped, IPv4-translated and IPv4-compatible addresses, NAT64 (the
    well-known 64:ff9b::/96, and the local-use 64:ff9b:1::/48 in its /96 form:
    with another prefix length the IPv4 sits elsewhere, so it cannot be told),
    6to4 (2002::/16) and Teredo (2001::/32: its server and its client).
    """
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in NAT64_WELL_KNOWN or ip in IPV4_TRANSLATED:
        return [low32]
    if ip in NAT64_LOCAL_USE:
        return [low32] if ip in NAT64_LOCAL_USE_96 else None
    if ip in IPV4_COMPATIBLE:
        return [low32]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return []


def is_public_address(address: str) -> bool:
    """Whether webhooks may connect to `address`: globally routed, not multicast, nothing private inside.

    An IPv6 address that carries an IPv4 address (NAT64, 6to4, Teredo,
    IPv4-compatible or -mapped) is judged by the IPv4 inside, so that
    64:ff9b::7f00:1 is refused like 127.0.0.1.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is None:
            return False
        if inner:
            return all(v4.is_global and not v4.is_multicast for v4 in inner)
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, resolve=None) -> None:
    """Refuse a URL webhooks may not target; raise UrlNotAllowed with the reason.

    Only http(s), no credentials in the URL, and unless private targets are
    allowed, a host whose every address is public.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlNotAllowed("The URL is malformed.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlNotAllowed("The URL must start with http:// or https:// and name a host.")
    if parts.username or parts.password:
        raise UrlNotAllowed("The URL must not contain credentials.")
    if allow_private():
        return
    resolve = resolve or socket.getaddrinfo
    try:
        infos = resolve(
            parts.hostname, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (socket.gaierror, UnicodeError):
        raise UrlNotAllowed(f"The host {parts.hostname} cannot be resolved.") from None
    addresses = {info[4][0] for info in infos}
    blocked = sorted(a for a in addresses if not is_public_address(a))
    if not addresses or blocked:
        raise UrlNotAllowed(
            f"The host {parts.hostname} resolves to a private, loopback or link-local address "
            f"({', '.join(blocked)}); webhooks may only reach public addresses."
        )


class _PeerCheck:
    """Check the address a new connection actually reached, after DNS and connect.

    The socket is then put under the deadline of the send it serves.
    """

    def _new_conn(self):
        sock = super()._new_conn()
        if not allow_private():
            peer = sock.getpeername()[0]
            if not is_public_address(peer):
                sock.close()
                raise BlockedAddress(f"{self.host} connected to non-public address {peer}")
        deadline = current_deadline()
        if deadline is not None:
            deadline.watch(sock)
        return sock


class _CheckedHTTPConnection(_PeerCheck, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_PeerCheck, HTTPSConnection):
    pass


class _DeadlinePool:
    """Put a kept-alive connection taken from the pool under the deadline of the send it serves."""

    def _get_conn(self, timeout=None):
        conn = super()._get_conn(timeout)
        deadline = current_deadline()
        if deadline is not None and conn.sock is not None:
            deadline.watch(conn.sock)
        return conn


class _CheckedHTTPPool(_DeadlinePool, HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(_DeadlinePool, HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class CheckedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections refuse non-public peers."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}


def _blocked(exc: BaseException | None, depth: int = 0) -> BlockedAddress | None:
    if exc is None or depth > 8:
        return None
    if isinstance(exc, BlockedAddress):
        return exc
    for inner in (*exc.args, getattr(exc, "reason", None), exc.__cause__, exc.__context__):
        if isinstance(inner, BaseException):
            found = _blocked(inner, depth + 1)
            if found is not None:
                return found
    return None


# One HTTP session per worker process ---------------------------------------------

_session_lock = threading.Lock()
_session: requests.Session | None = None
_session_pid: int | None = None


def http_session() -> requests.Session:
    """Return this process's session (a forked worker makes its own, never sharing sockets)."""
    global _session, _session_pid
    with _session_lock:
        if _session is None or _session_pid != os.getpid():
            session = requests.Session()
            # Proxies from the environment would hide the real peer from the address check.
            session.trust_env = False
            # One session serves every merchant: never keep a cookie one receiver set.
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            adapter = CheckedAdapter(pool_connections=32, pool_maxsize=32)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            _session, _session_pid = session, os.getpid()
        return _session


def timeout_seconds() -> float:
    """The total time one webhook request may take (settings.PAYDESK_WEBHOOK_TIMEOUT)."""
    return float(settings.PAYDESK_WEBHOOK_TIMEOUT)


def _excerpt(response: requests.Response, deadline: SendDeadline) -> str:
    """Return the start of the response body; reading stops at 64 KiB or the deadline."""
    chunks, size, note = [], 0, ""
    try:
        for chunk in response.iter_content(4096):
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_READ_BYTES or deadline.expired:
                break
    except requests.RequestException as exc:
        # The status line arrived, so the status decides; the log shows why the body is cut.
        why = "deadline" if deadline.expired else type(exc).__name__
        note = f" [body unreadable: {why}]"
    finally:
        response.close()
    text = b"".join(chunks).decode("utf-8", errors="replace")
    return (text[: EXCERPT_CHARS - len(note)] + note) if note else text[:EXCERPT_CHARS]


class WebhookTransport(Transport):
    name = "webhook"
    schedule = SCHEDULE

    @property
    def max_send_seconds(self) -> float:
        return timeout_seconds() + 5

    def send(self, delivery: Delivery) -> SendResult:
        endpoint = delivery.endpoint
        if endpoint is None:
            raise TransportError("The webhook endpoint no longer exists.", permanent=True)
        try:
            body, headers = signed_request(delivery)
        except SecretUnreadable as exc:
            # A key problem on our side: retry once FIELD_ENCRYPTION_KEY is fixed.
            raise TransportError(str(exc)) from None
        seconds = timeout_seconds()
        with send_deadline(seconds) as deadline:
            try:
                response = http_session().post(
                    endpoint.url,
                    data=body,
                    headers=headers,
                    timeout=(min(CONNECT_SECONDS, seconds), seconds),
                    allow_redirects=False,
                    stream=True,
                )
            except requests.RequestException as exc:
                blocked = _blocked(exc)
                if blocked is not None:
                    raise TransportError(f"Address refused: {blocked}", permanent=True) from None
                if deadline.expired or isinstance(exc, requests.Timeout):
                    raise TransportError(f"No answer within {seconds:g} s.") from None
                raise TransportError(f"Connection failed: {type(exc).__name__}: {exc}"[:500]) from None
            excerpt = _excerpt(response, deadline)
        code = response.status_code
        if 200 <= code < 300:
            return SendResult(response_code=code, response_excerpt=excerpt)
        if code == 410:
            raise TransportError(
                "The receiver answered 410 Gone.",
                permanent=True,
                response_code=code,
                response_excerpt=excerpt,
            )
        raise TransportError(
            f"The receiver answered HTTP {code}.", response_code=code, response_excerpt=excerpt
        )
