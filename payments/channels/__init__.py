"""Notification transports: one module per channel, a lazy registry by name.

A transport sends one Delivery and either returns a SendResult or raises
TransportError. It never changes a Delivery's status: the service in
payments/services/notifications/sending.py claims the row (attempt counter committed)
before calling `send` and records the outcome after it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from payments.models import Delivery

TRANSPORTS = {
    "webhook": "payments.channels.webhook.WebhookTransport",
    "email": "payments.channels.email.EmailTransport",
    "sms": "payments.channels.sms.SmsTransport",
    "inapp": "payments.channels.inapp.InAppTransport",
}

MINUTE = 60
HOUR = 60 * MINUTE


@dataclass(frozen=True)
class SendResult:
    """What the far side answered to a successful send."""

    response_code: int | None = None
    response_excerpt: str = ""


class TransportError(Exception):
    """A send failed. `permanent` means retrying cannot help (and disables a webhook endpoint)."""

    def __init__(
        self,
        message: str,
        permanent: bool = False,
        *,
        response_code: int | None = None,
        response_excerpt: str = "",
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.response_code = response_code
        self.response_excerpt = response_excerpt


class Transport:
    """Base class of a channel. Subclasses set `name` and `schedule` and implement `send`."""

    name = ""
    # Offsets in seconds from the delivery's creation at which each attempt is due.
    schedule: tuple[int, ...] = (0, 30, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 6 * HOUR)
    # The longest one send may take; a batch stops sending when less of its lease is left.
    max_send_seconds = 20

    @property
    def max_attempts(self) -> int:
        return len(self.schedule)

    def open(self) -> None:
        """Prepare a connection reused by the sends that follow (bulk sending)."""

    def close(self) -> None:
        """Release what `open` prepared."""

    def send(self, delivery: Delivery) -> SendResult:
        raise NotImplementedError


class ConnectionTransport(Transport):
    """A transport whose sends between open() and close() share one backend connection per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def connect(self):
        """Return a new backend connection (not yet opened)."""
        raise NotImplementedError

    def open(self) -> None:
        connection = self.connect()
        connection.open()
        self._local.connection = connection

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    def connection(self):
        """The connection opened by open(), or a fresh one for a single send."""
        return getattr(self._local, "connection", None) or self.connect()


@cache
def get_transport(name: str) -> Transport:
    """Return the process-wide transport for channel `name` (imported on first use)."""
    try:
        path = TRANSPORTS[name]
    except KeyError:
        raise LookupError(f"Unknown notification channel {name!r}") from None
    return import_string(path)()
