"""`{% unread_notifications as count %}`: the navbar bell's count for the signed-in member."""

from django import template

from payments.channels.messages import EVENT_GROUPS, failure_explanation, row_error_text
from payments.channels.messages import event_label as _event_label
from payments.notification_selectors import notification_unread_count

register = template.Library()


# The bell shows "99+" beyond this: every page renders it, so it never counts a whole feed.
BELL_CAP = 99


@register.simple_tag(takes_context=True)
def unread_notifications(context) -> int:
    """The unread count for the bell, at most BELL_CAP + 1 (shown as "99+")."""
    request = context.get("request")
    merchant = getattr(request, "merchant", None)
    if merchant is None or not request.user.is_authenticated:
        return 0
    return notification_unread_count(merchant=merchant, user=request.user, cap=BELL_CAP)


@register.filter
def event_group(event_type: str) -> str:
    """The heading an event type is listed under (Payments, Refunds, Batches)."""
    for label, prefix in EVENT_GROUPS:
        if str(event_type).startswith(prefix):
            return str(label)
    return ""


@register.filter
def event_label(event_type: str) -> str:
    """`{{ event.type|event_label }}`: "Payment succeeded" / "付款成功"."""
    return _event_label(str(event_type))


@register.simple_tag
def explain_failure(code: str, message: str = "") -> str:
    """`{% explain_failure payment.failure_code payment.failure_message %}` in the active language."""
    return failure_explanation(str(code or ""), str(message or ""))


@register.simple_tag
def row_error(code: str, message: str) -> str:
    """`{% row_error e.code e.message %}`: a batch row error in the active language."""
    return row_error_text(str(code or ""), str(message or ""))
