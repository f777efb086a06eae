"""Merchant-scoped reads of webhook endpoints, deliveries and the in-app feed.

An object of another merchant is simply not found (404), never forbidden.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from merchants.models import Merchant, NotificationPreference, WebhookEndpoint
from payments.models import Delivery, Notification
from payments.selectors import count_at_most


def webhook_endpoint_list(*, merchant: Merchant) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(merchant=merchant).order_by("-created_at", "-id")


def webhook_endpoint_get(*, merchant: Merchant, public_id: str) -> WebhookEndpoint:
    return get_object_or_404(
        WebhookEndpoint.objects.select_related("merchant"), merchant=merchant, public_id=public_id
    )


def delivery_list(
    *, merchant: Merchant, endpoint: WebhookEndpoint | None = None, status: str = ""
) -> QuerySet[Delivery]:
    qs = Delivery.objects.filter(merchant=merchant).select_related("event", "endpoint")
    if endpoint is not None:
        qs = qs.filter(endpoint=endpoint)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


def delivery_get(*, merchant: Merchant, public_id: str) -> Delivery:
    return get_object_or_404(
        Delivery.objects.select_related("event", "endpoint"), merchant=merchant, public_id=public_id
    )


def notification_preferences(*, merchant: Merchant) -> dict[str, NotificationPreference | None]:
    found = {p.channel: p for p in NotificationPreference.objects.filter(merchant=merchant)}
    return {channel: found.get(channel) for channel in NotificationPreference.Channel.values}


def notification_feed(*, merchant: Merchant, user) -> QuerySet[Notification]:
    return Notification.objects.filter(Q(user=user) | Q(user=None), merchant=merchant).order_by(
        "-created_at", "-id"
    )


def notification_unread_count(*, merchant: Merchant, user, cap: int | None = None) -> int:
    """Count the member's unread notifications; with `cap`, stop counting at cap + 1 (the bell's "99+")."""
    unread = notification_feed(merchant=merchant, user=user).filter(read_at=None)
    if cap is None:
        return unread.count()
    return count_at_most(unread, cap + 1)
