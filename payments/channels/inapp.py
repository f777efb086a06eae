"""In-app notifications: entries in the dashboard's feed (the bell in the navigation bar)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import translation

from merchants.models import Membership
from merchants.services import user_languages
from payments.channels import SendResult, Transport, TransportError
from payments.channels.messages import delivery_topic, describe
from payments.models import Notification

if TYPE_CHECKING:
    from payments.models import Delivery


class InAppTransport(Transport):
    """Write one Notification per member who wants it (or the named user); resending adds nothing twice."""

    name = "inapp"
    schedule = (0, 30, 5 * 60, 30 * 60)

    def send(self, delivery: Delivery) -> SendResult:
        members = Membership.objects.filter(merchant_id=delivery.merchant_id)
        if delivery.recipient:
            members = members.filter(user_id=delivery.recipient)
        members = list(members.only("user_id", "notifications"))
        if not members:
            raise TransportError("Nobody is a member of this merchant to notify.", permanent=True)
        # A member who turned in-app notices of this topic off gets no entry (merchants.Membership.wants).
        topic = delivery_topic(delivery.type)
        user_ids = [m.user_id for m in members if topic is None or m.wants(topic, "inapp")]
        if not user_ids:
            return SendResult()
        # Each member reads the entry in the language they chose (the site's default otherwise).
        chosen = user_languages(user_ids=user_ids)
        messages = {}
        for language in {chosen.get(user_id, settings.LANGUAGE_CODE) for user_id in user_ids}:
            with translation.override(language):
                messages[language] = describe(delivery)
        notifications = []
        for user_id in user_ids:
            message = messages[chosen.get(user_id, settings.LANGUAGE_CODE)]
            notifications.append(
                Notification(
                    merchant_id=delivery.merchant_id,
                    user_id=user_id,
                    delivery=delivery,
                    level=message.level,
                    title=message.title[:200],
                    body=message.body,
                    link=message.link[:500],
                )
            )
        Notification.objects.bulk_create(
            notifications,
            # The unique (delivery, user) constraint makes a resend after a crash harmless.
            ignore_conflicts=True,
        )
        return SendResult()
