"""In-app notifications: entries in the dashboard's feed (the bell in the navigation bar)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from merchants.models import Membership
from payments.channels import SendResult, Transport, TransportError
from payments.channels.messages import describe
from payments.models import Notification

if TYPE_CHECKING:
    from payments.models import Delivery


class InAppTransport(Transport):
    """Write one Notification per member (or for the named user); resending adds nothing twice."""

    name = "inapp"
    schedule = (0, 30, 5 * 60, 30 * 60)

    def send(self, delivery: Delivery) -> SendResult:
        members = Membership.objects.filter(merchant_id=delivery.merchant_id)
        if delivery.recipient:
            members = members.filter(user_id=delivery.recipient)
        user_ids = list(members.values_list("user_id", flat=True))
        if not user_ids:
            raise TransportError("Nobody is a member of this merchant to notify.", permanent=True)
        message = describe(delivery)
        Notification.objects.bulk_create(
            [
                Notification(
                    merchant_id=delivery.merchant_id,
                    user_id=user_id,
                    delivery=delivery,
                    level=message.level,
                    title=message.title[:200],
                    body=message.body,
                    link=message.link[:500],
                )
                for user_id in user_ids
            ],
            # The unique (delivery, user) constraint makes a resend after a crash harmless.
            ignore_conflicts=True,
        )
        return SendResult()
