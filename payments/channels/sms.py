"""SMS: backends chosen like Django's email backends (settings.SMS_BACKEND), and the SMS transport.

Backends:
- `payments.channels.sms.ConsoleBackend` (default): writes each message to stdout.
- `payments.channels.sms.LocmemBackend`: appends to `payments.channels.sms.outbox` (tests).
- `payments.channels.sms.TwilioBackend`: Twilio's REST API (Messages.json, form-encoded, HTTP
  basic auth) with TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, SMS_FROM and TWILIO_API_BASE.
A backend instance is a connection: `open()`, any number of `send_messages()`, `close()`.
"""

from __future__ import annotations

import re
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests
from django.conf import settings
from django.utils.module_loading import import_string

from payments.channels import ConnectionTransport, SendResult, TransportError
from payments.channels.messages import describe

if TYPE_CHECKING:
    from payments.models import Delivery

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
MAX_BODY = 320
TIMEOUT_SECONDS = 15

# Messages "sent" by LocmemBackend, like django.core.mail.outbox.
outbox: list[SmsMessage] = []


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str
    from_: str = ""


class SmsError(Exception):
    """A message was not sent; `permanent` when resending cannot help (bad number, refused)."""

    def __init__(self, message: str, permanent: bool = False, *, status: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status


def is_phone_number(value: str) -> bool:
    return bool(E164.match(value))


class BaseSmsBackend:
    def __init__(self, **kwargs) -> None:
        self.from_ = kwargs.get("from_") or getattr(settings, "SMS_FROM", "") or "PayDesk"

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send_messages(self, messages: list[SmsMessage]) -> int:
        """Send every message; return how many were sent; raise SmsError on the first failure."""
        raise NotImplementedError


class ConsoleBackend(BaseSmsBackend):
    def __init__(self, stream=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def send_messages(self, messages: list[SmsMessage]) -> int:
        with self._lock:
            for message in messages:
                self.stream.write(f"SMS from {message.from_ or self.from_} to {message.to}: {message.body}\n")
            self.stream.flush()
        return len(messages)


class LocmemBackend(BaseSmsBackend):
    def send_messages(self, messages: list[SmsMessage]) -> int:
        for message in messages:
            if not is_phone_number(message.to):
                raise SmsError(f"{message.to} is not an E.164 phone number", permanent=True)
            outbox.append(SmsMessage(message.to, message.body, message.from_ or self.from_))
        return len(messages)


class TwilioBackend(BaseSmsBackend):
    """Twilio's Programmable Messaging REST API; one HTTP session per open connection."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.account_sid = kwargs.get("account_sid") or getattr(settings, "TWILIO_ACCOUNT_SID", "")
        self.auth_token = kwargs.get("auth_token") or getattr(settings, "TWILIO_AUTH_TOKEN", "")
        base = kwargs.get("api_base") or getattr(settings, "TWILIO_API_BASE", "") or "https://api.twilio.com"
        self.url = f"{base.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        self.session: requests.Session | None = None

    def open(self) -> None:
        if not (self.account_sid and self.auth_token):
            raise SmsError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set.")
        if self.session is None:
            self.session = requests.Session()
            self.session.auth = (self.account_sid, self.auth_token)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def send_messages(self, messages: list[SmsMessage]) -> int:
        opened_here = self.session is None
        self.open()
        try:
            for message in messages:
                self._send(message)
        finally:
            if opened_here:
                self.close()
        return len(messages)

    def _send(self, message: SmsMessage) -> None:
        form = {"To": message.to, "From": message.from_ or self.from_, "Body": message.body}
        try:
            response = self.session.post(self.url, data=form, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            raise SmsError(f"SMS provider unreachable: {type(exc).__name__}") from None
        if response.status_code in (200, 201):
            return
        try:
            detail = response.json().get("message", "")
        except ValueError:
            detail = response.text[:200]
        # 4xx other than throttling means the request itself is wrong: resending cannot help.
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
        raise SmsError(
            f"SMS provider answered {response.status_code}: {detail}"[:500],
            permanent=permanent,
            status=response.status_code,
        )


def get_connection(backend: str | None = None, **kwargs) -> BaseSmsBackend:
    return import_string(backend or getattr(settings, "SMS_BACKEND", "payments.channels.sms.ConsoleBackend"))(
        **kwargs
    )


def sms_text(delivery: Delivery) -> str:
    message = describe(delivery)
    text = f"PayDesk: {message.title}. {message.body}".strip()
    return text if len(text) <= MAX_BODY else text[: MAX_BODY - 1] + "…"


class SmsTransport(ConnectionTransport):
    """Send one SMS per delivery; between open() and close() sends share one backend connection."""

    name = "sms"

    def connect(self):
        return get_connection()

    def send(self, delivery: Delivery) -> SendResult:
        if not is_phone_number(delivery.recipient):
            raise TransportError(f"{delivery.recipient!r} is not an E.164 phone number.", permanent=True)
        connection = self.connection()
        try:
            connection.send_messages([SmsMessage(to=delivery.recipient, body=sms_text(delivery))])
        except SmsError as exc:
            raise TransportError(str(exc), permanent=exc.permanent, response_code=exc.status) from None
        return SendResult()
