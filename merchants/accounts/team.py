"""Team use cases: invitations by e-mail (single use, expiring), role changes and removals, all audited."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from merchants.audit import audit_record
from merchants.models import Invitation, Membership, Merchant


class TeamError(ValueError):
    """A team change that is not allowed (the message says why, for the user)."""


def invitation_create(*, merchant: Merchant, email: str, role: str, invited_by, accept_url, request=None):
    """Invite `email` to `merchant` with `role` and send the link; return the invitation.

    `accept_url(raw_token)` builds the absolute link. Only the token's hash is
    stored; earlier open invitations of the same address are revoked.
    """
    email = email.strip().lower()
    if role not in Membership.Role.values:
        raise TeamError(_("Unknown role."))
    if Membership.objects.filter(merchant=merchant, user__email__iexact=email).exists():
        raise TeamError(_("%(email)s is already a member.") % {"email": email})
    raw = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        Invitation.objects.filter(merchant=merchant, email=email, accepted_at=None, revoked_at=None).update(
            revoked_at=now
        )
        invitation = Invitation.objects.create(
            merchant=merchant,
            email=email,
            role=role,
            token_hash=Invitation.hash_token(raw),
            invited_by=invited_by,
            expires_at=now + timedelta(hours=settings.PAYDESK_INVITATION_HOURS),
        )
        audit_record(
            action="invitation.sent",
            user=invited_by,
            merchant=merchant,
            obj=invitation,
            after={"email": email, "role": role},
            request=request,
        )
    context = {
        "merchant": merchant,
        "role": invitation.get_role_display(),
        "link": accept_url(raw),
        "hours": settings.PAYDESK_INVITATION_HOURS,
        "invited_by": invited_by,
    }
    send_mail(
        _("You are invited to %(merchant)s on PayDesk") % {"merchant": merchant.name},
        render_to_string("email/invitation.txt", context),
        None,
        [email],
    )
    return invitation


def invitation_open(raw: str) -> Invitation | None:
    """The open invitation behind a link, or None when it is unknown, used, revoked or expired."""
    invitation = (
        Invitation.objects.select_related("merchant").filter(token_hash=Invitation.hash_token(raw)).first()
    )
    return invitation if invitation is not None and invitation.is_open() else None


def invitation_accept(*, raw: str, user=None, password: str = "", request=None) -> Membership:
    """Use an invitation once: join with `user`, or create the invited address's account with `password`.

    Raise TeamError when the link is no longer valid (used, revoked, expired).
    """
    User = get_user_model()
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update().filter(token_hash=Invitation.hash_token(raw)).first()
        )
        if invitation is None or not invitation.is_open():
            raise TeamError(_("This invitation is no longer valid: ask for a new one."))
        if user is None:
            if User.objects.filter(username__iexact=invitation.email).exists():
                raise TeamError(_("An account with this address exists: log in first, then open the link."))
            user = User.objects.create_user(
                username=invitation.email, email=invitation.email, password=password
            )
        membership, created = Membership.objects.get_or_create(
            user=user, merchant=invitation.merchant, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        if created:
            audit_record(
                action="membership.added",
                user=user,
                merchant=invitation.merchant,
                object_type="merchants.membership",
                object_id=str(user.pk),
                after={"role": membership.role, "user": str(user), "invitation": invitation.pk},
                request=request,
            )
    return membership


def _last_owner(membership: Membership) -> bool:
    return (
        membership.role == Membership.Role.OWNER
        and Membership.objects.filter(merchant_id=membership.merchant_id, role=Membership.Role.OWNER).count()
        == 1
    )


def membership_set_role(*, membership: Membership, role: str, by, request=None) -> Membership:
    """Change a member's role (audited); the merchant keeps at least one owner."""
    if role not in Membership.Role.values:
        raise TeamError(_("Unknown role."))
    with transaction.atomic():
        Merchant.objects.select_for_update().get(pk=membership.merchant_id)
        membership.refresh_from_db()
        if membership.role == role:
            return membership
        if _last_owner(membership):
            raise TeamError(_("A merchant needs at least one owner."))
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            action="membership.role_changed",
            user=by,
            merchant=membership.merchant,
            object_type="merchants.membership",
            object_id=str(membership.user_id),
            before={"role": before},
            after={"role": role, "user": str(membership.user)},
            request=request,
        )
    return membership


def membership_remove(*, membership: Membership, by, request=None) -> None:
    """Remove a member (audited); the merchant keeps at least one owner."""
    with transaction.atomic():
        Merchant.objects.select_for_update().get(pk=membership.merchant_id)
        if _last_owner(membership):
            raise TeamError(_("A merchant needs at least one owner."))
        audit_record(
            action="membership.removed",
            user=by,
            merchant=membership.merchant,
            object_type="merchants.membership",
            object_id=str(membership.user_id),
            before={"role": membership.role},
            after={"user": str(membership.user)},
            request=request,
        )
        membership.delete()
