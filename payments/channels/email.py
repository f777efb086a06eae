"""Email through Django's email backends (settings.EMAIL_BACKEND / EMAIL_URL); HTML and text parts."""

from __future__ import annotations

import smtplib
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.utils import translation

from merchants.services import address_language
from payments.channels import ConnectionTransport, SendResult, TransportError
from payments.channels.messages import (
    APPROVAL_REQUESTED,
    BATCH_AWAITS_APPROVAL,
    BENEFICIARY_PAID,
    absolute,
    describe,
)

if TYPE_CHECKING:
    from payments.models import Delivery


def build_message(delivery: Delivery, connection=None) -> EmailMultiAlternatives:
    """Render one delivery as a two-part email to its recipient, in the language they chose."""
    language = address_language(email=delivery.recipient) or settings.LANGUAGE_CODE
    with translation.override(language):
        return _build_message(delivery, connection)


def _build_message(delivery: Delivery, connection=None) -> EmailMultiAlternatives:
    message = describe(delivery)
    if delivery.type == BENEFICIARY_PAID:
        template = "email/beneficiary_paid"
    elif delivery.type in (BATCH_AWAITS_APPROVAL, APPROVAL_REQUESTED):
        template = "email/approval"  # a member's own opt-in, not the merchant's preferences
    else:
        template = "email/notification"
    context = {
        "message": message,
        "link": absolute(message.link) if message.link else "",
        "merchant": delivery.merchant,
        "delivery": delivery,
        "payload": delivery.payload,
    }
    subject = " ".join(f"[PayDesk] {message.title}".split())
    email = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.recipient],
        connection=connection,
        headers={"X-PayDesk-Delivery": delivery.public_id},
    )
    email.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return email


class EmailTransport(ConnectionTransport):
    """Send one email per delivery; between open() and close() every send shares one connection."""

    name = "email"

    def connect(self):
        return get_connection()

    def send(self, delivery: Delivery) -> SendResult:
        if not delivery.recipient:
            raise TransportError("The delivery has no email address.", permanent=True)
        connection = self.connection()
        try:
            sent = build_message(delivery, connection).send()
        except smtplib.SMTPRecipientsRefused as exc:
            raise TransportError(f"Recipient refused: {exc}"[:500], permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"Email not sent: {type(exc).__name__}: {exc}"[:500]) from None
        if not sent:
            raise TransportError("The email backend sent nothing.")
        return SendResult()
