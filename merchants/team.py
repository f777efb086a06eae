"""The team page's use cases: change a member's role, remove a member (owners only, audited)."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from merchants.audit import audit_record
from merchants.models import Membership


class TeamChangeRefused(ValueError):
    """The change would leave the merchant without an owner, or names an unknown role."""


def _owners_left(membership: Membership) -> int:
    return (
        Membership.objects.filter(merchant_id=membership.merchant_id, role=Membership.Role.OWNER)
        .exclude(pk=membership.pk)
        .count()
    )


def membership_set_role(*, membership: Membership, role: str, user, request=None) -> Membership:
    if role not in Membership.Role.values:
        raise TeamChangeRefused(_("Unknown role."))
    with transaction.atomic():
        locked = Membership.objects.select_for_update().get(pk=membership.pk)
        if (
            locked.role == Membership.Role.OWNER
            and role != Membership.Role.OWNER
            and not _owners_left(locked)
        ):
            raise TeamChangeRefused(_("A merchant keeps at least one owner."))
        before = locked.role
        locked.role = role
        locked.save(update_fields=["role"])
        audit_record(
            action="membership.role_changed",
            user=user,
            merchant=locked.merchant,
            obj=locked,
            before={"role": before},
            after={"role": role},
            request=request,
        )
    return locked


def membership_remove(*, membership: Membership, user, request=None) -> None:
    with transaction.atomic():
        locked = Membership.objects.select_for_update().get(pk=membership.pk)
        if locked.role == Membership.Role.OWNER and not _owners_left(locked):
            raise TeamChangeRefused(_("A merchant keeps at least one owner."))
        audit_record(
            action="membership.removed",
            user=user,
            merchant=locked.merchant,
            obj=locked,
            before={"user": locked.user.get_username(), "role": locked.role},
            request=request,
        )
        locked.delete()
