import segno
from django import template
from django.utils.safestring import mark_safe

from payments.models import BatchStatus, PaymentStatus
from payments.representations import cny_in_words, format_money

register = template.Library()


@register.filter
def qr_svg(content: str, scale: int = 4) -> str:
    """Render `content` as an inline SVG QR code (segno escapes nothing from the content into markup)."""
    if not content:
        return ""
    return mark_safe(segno.make(str(content), error="m").svg_inline(scale=scale))  # noqa: S308


@register.filter
def money(minor: int | None, currency: str) -> str:
    """`{{ payment.amount_minor|money:payment.currency }}`: ¥1,234.50 in the active language."""
    if minor is None or not currency:
        return ""
    return format_money(int(minor), str(currency))


@register.filter
def cny_words(minor: int | None, currency: str = "CNY") -> str:
    """`{{ amount_minor|cny_words:currency }}`: 大写金额 of a CNY amount, "" for other currencies."""
    if minor is None or str(currency).upper() != "CNY":
        return ""
    return cny_in_words(int(minor))


@register.filter
def status_label(status: str, kind: str = "payment") -> str:
    """The translated name of a payment (or, with "batch", a batch) status value."""
    choices = BatchStatus if kind == "batch" else PaymentStatus
    try:
        return str(choices(status).label)
    except ValueError:
        return str(status)
