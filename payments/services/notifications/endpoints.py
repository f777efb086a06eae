"""Use cases of webhook endpoints, notification preferences and the in-app feed.

The signing secret is returned only by `webhook_endpoint_create` and
`webhook_endpoint_rotate_secret`; it is stored encrypted and never shown again.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from merchants.audit import audit_record
from merchants.crypto import encrypt
from merchants.ids import new_public_id
from merchants.models import Merchant, NotificationPreference, WebhookEndpoint
from payments.channels.messages import WEBHOOK_TEST, event_types
from payments.channels.sms import is_phone_number
from payments.channels.webhook import UrlNotAllowed, check_url, generate_secret
from payments.models import Channel, Delivery, DeliveryStatus, Method, Notification, Payment
from payments.representations import payment_data
from payments.services.notifications.fanout import enqueue_sending, new_delivery
from payments.services.notifications.sending import endpoint_disable
from payments.validation import FieldError

ROTATION_OVERLAP = timedelta(hours=24)
MAX_ENDPOINTS = 20
MAX_RECIPIENTS = 10


class NotificationsInvalid(Exception):
    """Input that cannot be saved; `errors` lists every problem (field, code, message)."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class EndpointStateError(Exception):
    """The action is not possible in the endpoint's current state."""

    code = "invalid_state"


def _clean_url(url, errors: list[FieldError]) -> str:
    if not isinstance(url, str) or not url.strip():
        errors.append(FieldError("url", "required", _("Enter the URL that receives webhooks.")))
        return ""
    url = url.strip()
    if len(url) > 2000:
        errors.append(FieldError("url", "too_long", _("The URL is longer than 2000 characters.")))
        return url
    try:
        check_url(url)
    except UrlNotAllowed as exc:
        errors.append(FieldError("url", "url_not_allowed", str(exc)))
    return url


def _clean_events(events, errors: list[FieldError], field: str = "events") -> list[str]:
    if events is None:
        return []
    if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
        errors.append(FieldError(field, "invalid", _("Give a list of event types.")))
        return []
    known = set(event_types())
    unknown = sorted(set(events) - known)
    if unknown:
        errors.append(
            FieldError(
                field,
                "unknown_event_type",
                _("Unknown event types: %(types)s.") % {"types": ", ".join(unknown)},
            )
        )
    return [e for e in event_types() if e in set(events)]


def _clean_description(description, errors: list[FieldError]) -> str:
    description = "" if description is None else description
    if not isinstance(description, str) or len(description) > 500:
        errors.append(
            FieldError("description", "invalid", _("The description is text of at most 500 characters."))
        )
        return ""
    return description.strip()


AUDITED = ("url", "events", "description", "status")


def _audit(action: str, endpoint: WebhookEndpoint, *, before=None, after=None, request=None, api_key=None):
    audit_record(
        action=action,
        merchant=endpoint.merchant,
        obj=endpoint,
        before=before,
        after=after,
        request=request,
        api_key=api_key,
    )


def webhook_endpoint_create(
    *,
    merchant: Merchant,
    url: str,
    events: list[str] | None = None,
    description: str = "",
    request=None,
    api_key=None,
) -> tuple[WebhookEndpoint, str]:
    """Create an enabled endpoint (audited); return it and its secret, which is never retrievable again.

    `request` and `api_key` say who did it, for the audit log (none: the system).
    """
    errors: list[FieldError] = []
    clean_url = _clean_url(url, errors)
    clean_events = _clean_events(events, errors)
    clean_description = _clean_description(description, errors)
    if WebhookEndpoint.objects.filter(merchant=merchant).count() >= MAX_ENDPOINTS:
        errors.append(FieldError("url", "too_many_endpoints", _("A merchant can have at most 20 endpoints.")))
    if errors:
        raise NotificationsInvalid(errors)
    secret = generate_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            merchant=merchant,
            url=clean_url,
            events=clean_events,
            description=clean_description,
            secret_encrypted=encrypt(secret),
        )
        _audit(
            "webhook_endpoint.created",
            endpoint,
            after={n: getattr(endpoint, n) for n in AUDITED},
            request=request,
            api_key=api_key,
        )
    return endpoint, secret


def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, data: dict, request=None, api_key=None, reason: str = ""
) -> WebhookEndpoint:
    """Change url, events, description and/or status (enabled | disabled) of an endpoint (audited)."""
    errors: list[FieldError] = []
    changes: dict = {}
    if "url" in data:
        changes["url"] = _clean_url(data["url"], errors)
    if "events" in data:
        changes["events"] = _clean_events(data["events"], errors)
    if "description" in data:
        changes["description"] = _clean_description(data["description"], errors)
    status = data.get("status")
    if "status" in data and status not in WebhookEndpoint.Status.values:
        errors.append(FieldError("status", "invalid_choice", _("Status is enabled or disabled.")))
    if errors:
        raise NotificationsInvalid(errors)
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = {n: getattr(locked, n) for n in AUDITED}
        for name, value in changes.items():
            setattr(locked, name, value)
        if changes:
            locked.save(update_fields=[*changes, "updated_at"])
        if status == WebhookEndpoint.Status.DISABLED and locked.is_enabled:
            endpoint_disable(locked, reason=_("Disabled by the merchant."), now=timezone.now(), notify=False)
        elif status == WebhookEndpoint.Status.ENABLED and not locked.is_enabled:
            _enable(locked)
        after = {n: getattr(locked, n) for n in AUDITED}
        changed = [n for n in AUDITED if before[n] != after[n]]
        if changed:
            _audit(
                "webhook_endpoint.changed",
                locked,
                before={n: before[n] for n in changed},
                after={n: after[n] for n in changed} | ({"reason": reason} if reason else {}),
                request=request,
                api_key=api_key,
            )
    return locked


def _enable(endpoint: WebhookEndpoint) -> None:
    errors: list[FieldError] = []
    _clean_url(endpoint.url, errors)
    if errors:
        raise NotificationsInvalid(errors)
    endpoint.status = WebhookEndpoint.Status.ENABLED
    endpoint.disabled_reason = ""
    endpoint.disabled_at = None
    endpoint.first_failure_at = None
    endpoint.save(
        update_fields=["status", "disabled_reason", "disabled_at", "first_failure_at", "updated_at"]
    )


def webhook_endpoint_set_enabled(
    *, endpoint: WebhookEndpoint, enabled: bool, request=None, reason: str = ""
) -> WebhookEndpoint:
    status = WebhookEndpoint.Status.ENABLED if enabled else WebhookEndpoint.Status.DISABLED
    return webhook_endpoint_update(endpoint=endpoint, data={"status": status}, request=request, reason=reason)


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, request=None, api_key=None) -> None:
    """Delete an endpoint with its delivery log (audited); its pending deliveries go with it."""
    with transaction.atomic():
        _audit(
            "webhook_endpoint.deleted",
            endpoint,
            before={n: getattr(endpoint, n) for n in AUDITED},
            request=request,
            api_key=api_key,
        )
        endpoint.delete()


def webhook_endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, request=None, api_key=None
) -> tuple[WebhookEndpoint, str]:
    """Give the endpoint a new secret; the old one keeps signing (beside it) for 24 hours."""
    secret = generate_secret()
    now = timezone.now()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret_encrypted = locked.secret_encrypted
        locked.previous_secret_expires_at = now + ROTATION_OVERLAP
        locked.secret_encrypted = encrypt(secret)
        locked.save(
            update_fields=[
                "previous_secret_encrypted",
                "previous_secret_expires_at",
                "secret_encrypted",
                "updated_at",
            ]
        )
        _audit(
            "webhook_endpoint.secret_rotated",
            locked,
            after={"secret": "rotated"},
            request=request,
            api_key=api_key,
        )
    return locked, secret


def _sample_payment(merchant: Merchant) -> dict:
    now = timezone.now()
    sample = Payment(
        public_id=new_public_id("pay"),
        merchant=merchant,
        reference="TEST-WEBHOOK",
        amount_minor=1250,
        currency="USD",
        method=Method.CARD,
        beneficiary_name="Ada Lovelace",
        beneficiary_account="4000000000001234",
        status="succeeded",
        created_at=now,
        updated_at=now,
    )
    return payment_data(sample)


def webhook_endpoint_send_test(*, endpoint: WebhookEndpoint) -> Delivery:
    """Queue a `webhook.test` message (a sample payment) to an enabled endpoint."""
    if not endpoint.is_enabled:
        raise EndpointStateError(_("Enable the endpoint before sending it a test event."))
    now = timezone.now()
    payload = {
        "id": "evt_test_" + secrets.token_hex(12),
        "timestamp": now.isoformat(),
        "data": _sample_payment(endpoint.merchant),
    }
    with transaction.atomic():
        delivery = new_delivery(
            merchant_id=endpoint.merchant_id,
            type=WEBHOOK_TEST,
            channel=Channel.WEBHOOK,
            endpoint=endpoint,
            recipient=endpoint.url,
            payload=payload,
            now=now,
        )
        delivery.save()
        enqueue_sending([delivery.pk])
    return delivery


def delivery_redeliver(*, delivery: Delivery) -> Delivery:
    """Queue a new delivery of the same message (same webhook-id) to the same recipient."""
    if delivery.channel == Channel.WEBHOOK and (
        delivery.endpoint is None or not delivery.endpoint.is_enabled
    ):
        raise EndpointStateError(_("Enable the endpoint before redelivering to it."))
    if delivery.status == DeliveryStatus.PENDING:
        raise EndpointStateError(_("This delivery is still being attempted."))
    with transaction.atomic():
        copy = new_delivery(
            merchant_id=delivery.merchant_id,
            type=delivery.type,
            channel=delivery.channel,
            event=delivery.event,
            endpoint=delivery.endpoint,
            recipient=delivery.endpoint.url if delivery.endpoint else delivery.recipient,
            payload=delivery.payload,
        )
        copy.redelivery_of = delivery
        copy.save()
        enqueue_sending([copy.pk])
    return copy


# Preferences ------------------------------------------------------------------------------


def _clean_preference(
    channel: str,
    enabled: bool,
    events: list[str] | None,
    recipients: list[str] | None,
    errors: list[FieldError],
) -> dict:
    if channel not in NotificationPreference.Channel.values:
        errors.append(FieldError("channel", "invalid_choice", _("Unknown channel.")))
        return {}
    field = f"{channel}.recipients"
    clean_events = _clean_events(events, errors, field=f"{channel}.events")
    clean_recipients: list[str] = []
    for raw in recipients or []:
        value = raw.strip()
        if not value:
            continue
        if channel == Channel.EMAIL:
            try:
                validate_email(value)
            except DjangoValidationError:
                message = _("%(value)s is not an email address.") % {"value": value}
                errors.append(FieldError(field, "invalid_email", message))
        elif channel == Channel.SMS and not is_phone_number(value):
            message = _("%(value)s is not a phone number in E.164 form (+14155550100).") % {"value": value}
            errors.append(FieldError(field, "invalid_phone", message))
        if value not in clean_recipients:
            clean_recipients.append(value)
    if len(clean_recipients) > MAX_RECIPIENTS:
        errors.append(FieldError(field, "too_many", _("At most 10 recipients per channel.")))
    if channel == Channel.SMS and enabled and not clean_recipients:
        errors.append(FieldError(field, "required", _("Give at least one phone number.")))
    return {
        "enabled": bool(enabled),
        "events": clean_events,
        "recipients": [] if channel == Channel.INAPP else clean_recipients,
    }


def notification_preferences_save(
    *, merchant: Merchant, channels: dict[str, dict]
) -> list[NotificationPreference]:
    """Set, for each channel (email, sms, inapp), `enabled`, `events` and `recipients`; all or nothing.

    Raise NotificationsInvalid listing every problem (fields `<channel>.events`,
    `<channel>.recipients`); nothing is saved then.
    """
    errors: list[FieldError] = []
    cleaned = {
        channel: _clean_preference(
            channel, values.get("enabled", True), values.get("events"), values.get("recipients"), errors
        )
        for channel, values in channels.items()
    }
    if errors:
        raise NotificationsInvalid(errors)
    with transaction.atomic():
        return [
            NotificationPreference.objects.update_or_create(
                merchant=merchant, channel=channel, defaults=values
            )[0]
            for channel, values in cleaned.items()
        ]


def notification_preference_update(
    *,
    merchant: Merchant,
    channel: str,
    enabled: bool,
    events: list[str] | None,
    recipients: list[str] | None,
) -> NotificationPreference:
    """Set which event types go to one `channel` (email, sms, inapp) and to whom."""
    values = {"enabled": enabled, "events": events, "recipients": recipients}
    return notification_preferences_save(merchant=merchant, channels={channel: values})[0]


# In-app feed ---------------------------------------------------------------------------------


def notifications_mark_read(*, merchant: Merchant, user, public_ids: list[str] | None = None) -> int:
    """Mark the user's unread notifications (all, or those named) read; return how many."""
    from django.db.models import Q

    qs = Notification.objects.filter(Q(user=user) | Q(user=None), merchant=merchant, read_at=None)
    if public_ids is not None:
        qs = qs.filter(public_id__in=public_ids)
    return qs.update(read_at=timezone.now())
