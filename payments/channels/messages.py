"""What people read: the event catalogue and the title/body/link of a delivery for email, SMS and in-app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from merchants.models import NotificationTopic
from payments.models import BatchStatus, PaymentStatus
from payments.models.payment import TRANSITION_EVENT_TYPES

if TYPE_CHECKING:
    from payments.models import Delivery

# Event-less notices, sent by PayDesk itself rather than fanned out from an Event.
WEBHOOK_TEST = "webhook.test"
ENDPOINT_DISABLED = "webhook_endpoint.disabled"
# A failing endpoint whose fitted N(r) says its next attempt will probably fail too.
ENDPOINT_AT_RISK = "webhook_endpoint.at_risk"
BENEFICIARY_PAID = "beneficiary.paid"
# The approvals inbox: a validated batch, and an operator asking named approvers.
BATCH_AWAITS_APPROVAL = "batch.awaits_approval"
APPROVAL_REQUESTED = "batch.approval_requested"
# Told to a merchant's owners whatever their preferences: money moved for a payment given up.
LATE_SUCCESS = "incident.late_success"
# Events that are not a status: an incident on a payment.
INCIDENT_EVENTS = ("payment.late_success",)

REFUND_EVENTS = ("refund.created", "refund.succeeded", "refund.failed")


def event_types() -> list[str]:
    """Return every event type merchants can subscribe to (webhooks and preferences)."""
    payment = [f"payment.{s}" for s in PaymentStatus.values] + list(TRANSITION_EVENT_TYPES.values())
    payment += list(INCIDENT_EVENTS)
    batch = [f"batch.{s}" for s in BatchStatus.values]
    return payment + list(REFUND_EVENTS) + batch


# What an event says, for people (timelines, preference lists); the type itself stays the stable key.
EVENT_LABELS = {
    "payment.created": gettext_lazy("Payment created"),
    "payment.on_hold": gettext_lazy("Held for review"),
    "payment.released": gettext_lazy("Released after review"),
    "payment.processing": gettext_lazy("Sent to the gateway"),
    "payment.requires_action": gettext_lazy("Waiting for the customer"),
    "payment.succeeded": gettext_lazy("Payment succeeded"),
    "payment.failed": gettext_lazy("Payment failed"),
    "payment.cancelled": gettext_lazy("Payment cancelled"),
    "payment.retried": gettext_lazy("Payment retried"),
    "payment.partially_refunded": gettext_lazy("Partially refunded"),
    "payment.refunded": gettext_lazy("Refunded in full"),
    "payment.reversed": gettext_lazy("Reversed (chargeback)"),
    "payment.late_success": gettext_lazy("Paid after it was given up"),
    "refund.created": gettext_lazy("Refund requested"),
    "refund.succeeded": gettext_lazy("Refund succeeded"),
    "refund.failed": gettext_lazy("Refund failed"),
    "batch.uploaded": gettext_lazy("Batch uploaded"),
    "batch.validating": gettext_lazy("Batch being validated"),
    "batch.validated": gettext_lazy("Batch validated"),
    "batch.rejected": gettext_lazy("Batch rejected"),
    "batch.approved": gettext_lazy("Batch approved"),
    "batch.processing": gettext_lazy("Batch being paid"),
    "batch.completed": gettext_lazy("Batch completed"),
    "batch.cancelled": gettext_lazy("Batch cancelled"),
    "batch.cancel_requested": gettext_lazy("Batch cancellation requested"),
    WEBHOOK_TEST: gettext_lazy("Test event"),
    ENDPOINT_DISABLED: gettext_lazy("Webhook endpoint disabled"),
    BENEFICIARY_PAID: gettext_lazy("Beneficiary paid"),
    LATE_SUCCESS: gettext_lazy("Paid after it was given up"),
}


def event_label(event_type: str) -> str:
    """The translated name of an event type (the type itself when it has none)."""
    label = EVENT_LABELS.get(event_type)
    return str(label) if label is not None else event_type


# Failure codes PayDesk and its sandbox give, explained with the next step; a gateway's own codes
# keep the gateway's message.
FAILURE_EXPLANATIONS = {
    "card_declined": gettext_lazy("The card issuer declined the payment. Ask the customer for another card."),
    "insufficient_funds": gettext_lazy(
        "The paying account does not hold enough money. Try again once it is funded."
    ),
    "processing_error": gettext_lazy("A temporary error at the gateway. Retry the payment."),
    "chargeback": gettext_lazy(
        "The payer disputed the payment and the money was taken back. Check with the payer."
    ),
    "rejected_after_review": gettext_lazy("PayDesk's risk review rejected the payment. Nothing was paid."),
    "gateway_not_configured": gettext_lazy(
        "The gateway for this method is not set up for your merchant. Ask an owner to add its credentials."
    ),
    "gateway_unavailable": gettext_lazy("The gateway could not be reached. Retry in a few minutes."),
}


def failure_explanation(code: str, message: str = "") -> str:
    """The translated explanation of a failure code, else the gateway's own message."""
    explanation = FAILURE_EXPLANATIONS.get(code)
    return str(explanation) if explanation is not None else message


# Row errors are stored in English (the source language), the same for the API and the dashboard.
# A message without parameters is a msgid of its own; one with parameters (a limit, a currency) is
# told by its code's general sentence in another language.
ROW_ERROR_TEXTS = {
    "too_long": gettext_noop("The value is too long."),
    "invalid_method": gettext_noop("Unknown payment method."),
    "currency_not_allowed": gettext_noop("This currency is not enabled for the merchant."),
    "over_limit": gettext_noop("The amount exceeds the per-payment limit."),
    "too_many_decimals": gettext_noop("The amount has more decimals than its currency allows."),
    "invalid_amount": gettext_noop("The amount is not a decimal number greater than zero."),
    "extra_values": gettext_noop("The row has values outside the header's columns."),
    "unsupported_amount": gettext_noop("This amount cannot be read."),
    "gateway_not_configured": gettext_noop("No gateway is set up for this payment method."),
    "currency_not_supported": gettext_noop("The gateway of this method does not take this currency."),
    "no_payout_rail": gettext_noop("Batches cannot pay by this method yet."),
    "batch_only": gettext_noop("This method pays whole batches only."),
    "no_funding_account": gettext_noop("No funding account can pay this bank transfer."),
}


def row_error_text(code: str, message: str) -> str:
    """A stored row error in the active language: its own translation, else its code's sentence."""
    translated = _(message) if message else message
    if translated != message:
        return translated
    general = ROW_ERROR_TEXTS.get(code)
    if general is not None and _(general) != general:
        return _(general)
    return message


EVENT_GROUPS = (
    (gettext_lazy("Payments"), "payment."),
    (gettext_lazy("Refunds"), "refund."),
    (gettext_lazy("Batches"), "batch."),
)

# A member's personal topics (merchants.models.NotificationTopic) by delivery type; a type in none of
# them (a late success, a test event) reaches every member whatever they chose.
PAYMENT_PROBLEM_EVENTS = (
    "payment.failed",
    "payment.on_hold",
    "payment.reversed",
    "payment.requires_action",
)


def delivery_topic(type: str) -> str | None:
    """Return the NotificationTopic a delivery type belongs to, or None when members cannot opt out."""
    if type in (BATCH_AWAITS_APPROVAL, APPROVAL_REQUESTED):
        return NotificationTopic.APPROVALS
    if type in (ENDPOINT_DISABLED, ENDPOINT_AT_RISK):
        return NotificationTopic.WEBHOOKS
    if type in PAYMENT_PROBLEM_EVENTS:
        return NotificationTopic.PAYMENT_PROBLEMS
    if type in INCIDENT_EVENTS or type == LATE_SUCCESS:
        return None
    for prefix, topic in (
        ("payment.", NotificationTopic.PAYMENTS),
        ("refund.", NotificationTopic.REFUNDS),
        ("batch.", NotificationTopic.BATCHES),
    ):
        if type.startswith(prefix):
            return topic
    return None


LEVELS = {
    "payment.succeeded": "success",
    "refund.succeeded": "success",
    "batch.completed": "success",
    "payment.failed": "danger",
    "payment.reversed": "danger",
    "refund.failed": "danger",
    "batch.rejected": "danger",
    "payment.on_hold": "warning",
    "payment.requires_action": "warning",
    ENDPOINT_DISABLED: "danger",
    ENDPOINT_AT_RISK: "warning",
    "payment.late_success": "danger",
    LATE_SUCCESS: "danger",
}


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    link: str
    level: str


def absolute(path: str) -> str:
    return settings.PAYDESK_PUBLIC_URL + path if path.startswith("/") else path


def _url(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _payment_sentence(obj: dict) -> dict:
    return {
        "reference": obj.get("reference", ""),
        "amount": obj.get("amount", ""),
        "currency": obj.get("currency", ""),
        "beneficiary": obj.get("beneficiary_name", ""),
        "id": obj.get("id", ""),
    }


def _status_words(event_type: str) -> str:
    """`payment.partially_refunded` -> "partially refunded", in the active language where known."""
    kind, _dot, status = event_type.partition(".")
    labels = {"payment": PaymentStatus, "batch": BatchStatus}.get(kind)
    if labels is not None and status in labels.values:
        return str(labels(status).label).lower()
    return status.replace("_", " ") or event_type


def describe(delivery: Delivery) -> Message:
    """Return the human message of a delivery, in the active language."""
    level = LEVELS.get(delivery.type, "info")
    if delivery.event_id is None:
        return _describe_notice(delivery, level)
    event = delivery.event
    data = event.data or {}
    obj = data.get("object") or {}
    status = _status_words(delivery.type)
    if delivery.type.startswith("refund.") and data.get("refund"):
        refund = data["refund"]
        params = {
            "amount": refund.get("amount", ""),
            "currency": refund.get("currency", ""),
            "reference": obj.get("reference", ""),
            "status": status,
        }
        title = _("Refund %(status)s: %(amount)s %(currency)s on %(reference)s") % params
        body = _("Refund %(id)s of payment %(payment)s is %(state)s.") % {
            "id": refund.get("id", ""),
            "payment": obj.get("id", ""),
            "state": refund.get("status", ""),
        }
        return Message(title, body, _url("dashboard:payment_detail", obj.get("id", "")), level)
    if obj.get("object") == "payment":
        params = {**_payment_sentence(obj), "status": status}
        title = _("Payment %(reference)s %(status)s") % params
        body = _("%(amount)s %(currency)s to %(beneficiary)s (%(id)s).") % params
        if obj.get("failure_code"):
            body += " " + _("Reason: %(code)s %(message)s") % {
                "code": obj["failure_code"],
                "message": obj.get("failure_message") or "",
            }
        return Message(title, body.strip(), _url("dashboard:payment_detail", obj["id"]), level)
    identifier = obj.get("id") or (event.batch.public_id if event.batch_id else event.public_id)
    title = _("%(type)s: %(id)s") % {"type": delivery.type, "id": identifier}
    return Message(title, _("Event %(id)s.") % {"id": event.public_id}, "", level)


def _describe_notice(delivery: Delivery, level: str) -> Message:
    payload = delivery.payload or {}
    if delivery.type == ENDPOINT_DISABLED:
        params = {"url": payload.get("url", ""), "reason": payload.get("reason", "")}
        return Message(
            _("Webhook endpoint disabled"),
            _("PayDesk stopped sending webhooks to %(url)s: %(reason)s") % params,
            _url("dashboard:webhook_endpoint_detail", payload.get("endpoint", "")),
            level,
        )
    if delivery.type == ENDPOINT_AT_RISK:
        chance = payload.get("chance", 0)
        params = {
            "url": payload.get("url", ""),
            "percent": f"{float(chance) * 100:.0f}" if isinstance(chance, (int, float)) else "?",
            "attempt": payload.get("attempt", ""),
            "when": str(payload.get("disable_at", ""))[:16].replace("T", " "),
        }
        return Message(
            _("Webhook endpoint at risk of being disabled"),
            _(
                "Deliveries to %(url)s keep failing. From its history, attempt %(attempt)s has a "
                "%(percent)s %% chance of success; if every delivery still fails at %(when)s UTC, "
                "PayDesk disables the endpoint."
            )
            % params,
            _url("dashboard:webhook_endpoint_detail", payload.get("endpoint", "")),
            level,
        )
    if delivery.type == LATE_SUCCESS:
        params = {
            "payment": payload.get("payment", ""),
            "amount": payload.get("amount", ""),
            "currency": payload.get("currency", ""),
        }
        return Message(
            _("Money received for a payment that was given up"),
            _(
                "A gateway took %(amount)s %(currency)s for payment %(payment)s after PayDesk had "
                "cancelled it or given up on it. It is held for review and refunded if your settings say so."
            )
            % params,
            _url("dashboard:payment_detail", payload.get("payment", "")),
            level,
        )
    if delivery.type in (BATCH_AWAITS_APPROVAL, APPROVAL_REQUESTED):
        params = {
            "name": payload.get("name", ""),
            "count": payload.get("count", 0),
            "totals": payload.get("totals", ""),
            "who": payload.get("requested_by", ""),
        }
        if delivery.type == APPROVAL_REQUESTED:
            title = _("%(who)s asks you to approve %(name)s") % params
        else:
            title = _("Batch %(name)s awaits your approval") % params
        body = _("%(count)s payments, %(totals)s.") % params
        return Message(title, body, payload.get("link", ""), "warning")
    if delivery.type == BENEFICIARY_PAID:
        params = {
            "merchant": payload.get("merchant", ""),
            "amount": payload.get("amount", ""),
            "currency": payload.get("currency", ""),
            "reference": payload.get("reference", ""),
        }
        return Message(
            _("You have been paid"),
            _("%(merchant)s sent you %(amount)s %(currency)s (reference %(reference)s).") % params,
            "",
            "success",
        )
    return Message(
        payload.get("title") or delivery.type, payload.get("body", ""), payload.get("link", ""), level
    )
