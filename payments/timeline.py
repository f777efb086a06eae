"""A payment's timeline as sentences with people's names ("Refund of 12.00 CNY requested by Alice Chen")."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _

from merchants.models import ApiKey
from payments.failure_help import failure_help
from payments.models import Event


def actor_names(events: Iterable[Event]) -> dict[str, str]:
    """Map each event's actor (`user:3`, `api_key:key_…`, `system…`, `gateway:…`) to a name (two queries)."""
    actors = {e.actor for e in events}
    users = {a.split(":", 1)[1] for a in actors if a.startswith("user:") and a[5:].isdigit()}
    keys = {a.split(":", 1)[1] for a in actors if a.startswith("api_key:")}
    names: dict[str, str] = {}
    for user in get_user_model().objects.filter(pk__in=users):
        names[f"user:{user.pk}"] = user.get_full_name() or user.email or user.get_username()
    for key in ApiKey.objects.filter(public_id__in=keys):
        names[f"api_key:{key.public_id}"] = _("API key %(name)s") % {"name": key.name or key.prefix}
    for actor in actors - names.keys():
        if actor.startswith("gateway:"):
            names[actor] = _("the gateway (%(name)s)") % {"name": actor.split(":", 1)[1]}
        elif actor == "system:risk":
            names[actor] = _("the risk check")
        elif actor.startswith("system") or not actor:
            names[actor] = _("PayDesk")
        elif actor.startswith("user:"):
            names[actor] = _("a former member")
        else:
            names[actor] = actor
    return names


def event_sentence(event: Event, who: str) -> str:
    """One timeline line for `event`, whose actor is called `who`."""
    data = event.data or {}
    obj = data.get("object") or {}
    refund = data.get("refund") or {}
    money = {"amount": obj.get("amount", ""), "currency": obj.get("currency", ""), "who": who}
    refund_money = {"amount": refund.get("amount", ""), "currency": refund.get("currency", ""), "who": who}
    t = event.type
    if t == "payment.created":
        return _("Payment of %(amount)s %(currency)s created by %(who)s") % money
    if t == "payment.processing":
        return _("Sent to the gateway by %(who)s") % money
    if t == "payment.requires_action":
        return _("Waiting for the customer to authenticate (%(who)s)") % money
    if t == "payment.succeeded":
        return _("Paid: %(amount)s %(currency)s, confirmed by %(who)s") % money
    if t == "payment.failed":
        help_ = failure_help(obj.get("failure_code", ""), obj.get("failure_retryable", False))
        return _("Failed (confirmed by %(who)s): %(why)s") % {"who": who, "why": help_.explanation}
    if t == "payment.on_hold":
        return _("Held for review by %(who)s") % money
    if t == "payment.released":
        return _("Released after review by %(who)s") % money
    if t == "payment.cancelled":
        return _("Cancelled by %(who)s") % money
    if t == "payment.retried":
        return _("Retried by %(who)s") % money
    if t == "payment.reversed":
        return _("Reversed: the money went back (%(who)s)") % money
    if t == "payment.late_success":
        return _("Money arrived after the payment was given up (%(who)s): held for review") % money
    if t in ("payment.refunded", "payment.partially_refunded"):
        return _("Refunded %(refunded)s %(currency)s in all") % {
            "refunded": obj.get("refunded_amount", ""),
            "currency": obj.get("currency", ""),
        }
    if t == "refund.created":
        return _("Refund of %(amount)s %(currency)s requested by %(who)s") % refund_money
    if t == "refund.succeeded":
        return _("Refund of %(amount)s %(currency)s paid back (%(who)s)") % refund_money
    if t == "refund.failed":
        return _("Refund of %(amount)s %(currency)s failed (%(who)s)") % refund_money
    return _("%(type)s by %(who)s") % {"type": t, "who": who}
