"""Who may approve a batch, and telling them: the approvals inbox and its notices.

`batch_approvers` is the same rule `batch_approve` enforces (role, four eyes,
the approver role above the merchant's threshold), as a query: the inbox and
the notices use it, so nobody is asked to approve what they may not.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _

from merchants.models import ApiKey, Membership, Merchant, NotificationTopic
from payments.channels.messages import APPROVAL_REQUESTED, BATCH_AWAITS_APPROVAL
from payments.models import BatchStatus, Channel, Delivery, PaymentBatch
from payments.representations import totals_data
from payments.services.notifications.fanout import enqueue_sending, new_delivery


class ApprovalRequestInvalid(ValueError):
    """The request names nobody who may approve, or the batch is not awaiting approval."""


def batch_over_threshold(batch: PaymentBatch, merchant: Merchant) -> bool:
    limit = merchant.batch_approval_threshold_minor
    return bool(limit) and any(t.get("amount_minor", 0) > limit for t in (batch.totals or {}).values())


def batch_uploader_id(batch: PaymentBatch):
    if batch.uploaded_by_id is not None:
        return batch.uploaded_by_id
    if batch.uploaded_by_key_id is not None:
        return (
            ApiKey.objects.filter(pk=batch.uploaded_by_key_id).values_list("created_by_id", flat=True).first()
        )
    return None


def batch_approvers(batch: PaymentBatch) -> QuerySet[Membership]:
    """The memberships whose user may approve `batch` (whatever its status)."""
    merchant = batch.merchant
    members = Membership.objects.filter(merchant=merchant).select_related("user")
    if batch_over_threshold(batch, merchant):
        members = members.filter(role=Membership.Role.APPROVER)
    else:
        members = members.filter(role__in=(Membership.Role.OWNER, Membership.Role.APPROVER))
    uploader = batch_uploader_id(batch) if merchant.four_eyes else None
    if uploader is not None:
        members = members.exclude(user_id=uploader)
    return members.order_by("user__email", "pk")


def batches_awaiting(*, merchant: Merchant, user) -> list[PaymentBatch]:
    """The validated batches of `merchant` that `user` may approve, oldest first."""
    membership = Membership.objects.filter(merchant=merchant, user=user).first()
    if membership is None or not membership.can_approve:
        return []
    waiting = PaymentBatch.objects.filter(merchant=merchant, status=BatchStatus.VALIDATED).select_related(
        "merchant", "uploaded_by"
    )
    return [b for b in waiting.order_by("validated_at", "pk")[:200] if _may_approve(b, membership)]


def _may_approve(batch: PaymentBatch, membership: Membership) -> bool:
    if batch.merchant.four_eyes and batch_uploader_id(batch) == membership.user_id:
        return False
    if batch_over_threshold(batch, batch.merchant):
        return membership.role == Membership.Role.APPROVER
    return True


def _notices(batch: PaymentBatch, type: str, user_ids: list[int], payload: dict) -> list[Delivery]:
    """Tell these members: in-app unless they turned approval notices off, e-mail if they opted in.

    Each member's choice is their own (Membership.wants, topic "approvals"):
    in-app is on by default, e-mail off. The e-mail goes to the member's
    address through the same sending path as every Delivery (sending.py).
    """
    members = (
        Membership.objects.filter(merchant_id=batch.merchant_id, user_id__in=user_ids)
        .select_related("user")
        .order_by("user_id")
    )
    topic = NotificationTopic.APPROVALS
    rows = []
    for member in members:
        targets = []
        if member.wants(topic, "inapp"):
            targets.append((Channel.INAPP, str(member.user_id)))
        if member.wants(topic, "email") and member.user.email:
            targets.append((Channel.EMAIL, member.user.email))
        rows.extend(
            new_delivery(
                merchant_id=batch.merchant_id,
                type=type,
                channel=channel,
                recipient=recipient,
                payload=payload,
            )
            for channel, recipient in targets
        )
    if not rows:
        return []
    created = Delivery.objects.bulk_create(rows)
    enqueue_sending([d.pk for d in created])
    return created


def _payload(batch: PaymentBatch) -> dict:
    totals = ", ".join(f"{t['amount']} {c}" for c, t in totals_data(batch.totals).items())
    return {
        "batch": batch.public_id,
        "name": batch.name or batch.public_id,
        "count": batch.valid_count,
        "totals": totals,
        "link": reverse("dashboard:batch_approve", args=[batch.public_id]),
    }


def batch_notify_approvers(*, batch: PaymentBatch) -> list[Delivery]:
    """Tell everyone who may approve a batch that was just validated (call in its transaction)."""
    users = list(batch_approvers(batch).values_list("user_id", flat=True))
    return _notices(batch, BATCH_AWAITS_APPROVAL, users, _payload(batch))


def batch_approval_request(*, batch: PaymentBatch, user, approver_ids: list[int]) -> list[Delivery]:
    """Ask the named members to approve `batch`; raise ApprovalRequestInvalid if none of them may."""
    if batch.status != BatchStatus.VALIDATED:
        raise ApprovalRequestInvalid(_("Only a batch awaiting approval can be sent for approval."))
    if not Membership.objects.filter(merchant_id=batch.merchant_id, user=user).exists():
        raise ApprovalRequestInvalid(_("You are not a member of this merchant."))
    allowed = set(batch_approvers(batch).values_list("user_id", flat=True))
    chosen = sorted(allowed & {int(pk) for pk in approver_ids})
    if not chosen:
        raise ApprovalRequestInvalid(_("Choose at least one member who may approve this batch."))
    requester = get_user_model().objects.get(pk=user.pk)
    payload = {
        **_payload(batch),
        "requested_by": requester.get_full_name() or requester.email or requester.username,
    }
    with transaction.atomic():
        return _notices(batch, APPROVAL_REQUESTED, chosen, payload)
