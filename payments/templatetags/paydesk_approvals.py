"""The approvals count in the navigation bar."""

from django import template

from payments.services.batches.approvals import batches_awaiting

register = template.Library()


@register.simple_tag(takes_context=True)
def approvals_waiting(context) -> int:
    request = context.get("request")
    merchant = getattr(request, "merchant", None)
    if merchant is None or not request.user.is_authenticated:
        return 0
    return len(batches_awaiting(merchant=merchant, user=request.user))
