"""Fixed-window request counters in the cache, and the client address they count by.

One atomic cache increment per request, whatever the rate (DRF's
SimpleRateThrottle stores every request's timestamp, which costs a list of
thousands of entries per request at API rates). Counters live in the cache:
shared across processes with Redis, per process with the local-memory cache.

The client address is REMOTE_ADDR. Behind a reverse proxy, and only when
settings.PAYDESK_CLIENT_IP_HEADER names the header that proxy sets, it is taken
from that header: from a list (X-Forwarded-For), the entry
PAYDESK_TRUSTED_PROXIES places from the right, i.e. the one written by the
outermost proxy you run; entries further left were sent by the client and are
never trusted. Any other header a client sends is ignored. An IPv6 client is
counted by its /64, the block one subscriber usually holds.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

DURATIONS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
IPV6_PREFIX = 64


def parse_rate(rate: str | None) -> tuple[int | None, int]:
    """Return (requests, seconds) of a rate like "6000/min"; (None, 1) for no limit ("" or None)."""
    if not rate:
        return None, 1
    num, period = rate.split("/")
    return int(num), DURATIONS[period.strip()[0].lower()]


@dataclass(frozen=True)
class Hit:
    """One counted request: `wait` is None when it is allowed, else the seconds until it would be."""

    count: int
    limit: int
    wait: float | None

    @property
    def first_refused(self) -> bool:
        """The first request of its window over the limit (log this one, not every refusal)."""
        return self.count == self.limit + 1


def rate_hit(scope: str, ident: str, limit: int, duration: int, *, now: float | None = None) -> Hit:
    """Count one request of `ident` in `scope` against `limit` per `duration` seconds.

    The window is fixed (`duration` seconds, aligned to the epoch), so a
    refused request waits until the window ends.
    """
    now = time.time() if now is None else now
    window = int(now // duration)
    key = f"throttle:{scope}:{ident}:{window}"
    try:
        count = cache.incr(key)
    except ValueError:
        # First request of the window (or the counter just expired).
        count = 1 if cache.add(key, 1, timeout=duration + 1) else cache.incr(key)
    wait = (window + 1) * duration - now if count > limit else None
    return Hit(count=count, limit=limit, wait=wait)


def retry_after_header(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


def client_ip(request: HttpRequest) -> str:
    """Return the client's address: REMOTE_ADDR, or the trusted proxy header's entry (module docstring)."""
    address = request.META.get("REMOTE_ADDR") or ""
    header = getattr(settings, "PAYDESK_CLIENT_IP_HEADER", "")
    if header:
        entries = [e.strip() for e in request.headers.get(header, "").split(",") if e.strip()]
        hops = max(1, int(getattr(settings, "PAYDESK_TRUSTED_PROXIES", 1)))
        if len(entries) >= hops:
            address = entries[-hops]
    return address


def client_address(request: HttpRequest) -> str:
    """Return the client's address as counted for rate limits (see the module docstring)."""
    return _counted(client_ip(request))


def client_ip_or_none(request: HttpRequest) -> str | None:
    """The client's address if it is one (for django-axes and the audit log), else None."""
    address = client_ip(request).split("%", 1)[0].strip("[]")
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _counted(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        # Not an address (a proxy misconfigured, a unix socket): count it as it is, bounded.
        return address[:64] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)
