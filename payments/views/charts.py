"""Charts drawn on the server as SVG: readable without script and in print, each with a text alternative."""

from __future__ import annotations

from datetime import date

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from payments.representations import amount_text

PALETTE = ("#0a58ca", "#146c43", "#b02a37", "#9a4700", "#59359a", "#5c636a")


def _svg(width: int, height: int, label: str, body: str) -> SafeString:
    return mark_safe(  # noqa: S308 - every text in `body` is escaped where it is built
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{body}</svg>"
    )


def bar_chart_by_day(series: list[tuple[date, int]], currency: str, label: str) -> SafeString:
    """Vertical bars: one per day, the amount of succeeded payments in one currency."""
    width, height, pad = 640, 200, 28
    if not series:
        return SafeString("")
    top = max(v for _, v in series) or 1
    step = (width - 2 * pad) / len(series)
    bars = []
    for i, (day, value) in enumerate(series):
        h = (height - 2 * pad) * value / top
        x = pad + i * step
        y = height - pad - h
        text = f"{day.isoformat()}: {amount_text(value, currency)} {currency}"
        bars.append(
            f'<rect x="{x + step * 0.1:.1f}" y="{y:.1f}" width="{step * 0.8:.1f}" height="{h:.1f}" '
            f'fill="{PALETTE[0]}"><title>{escape(text)}</title></rect>'
        )
    first, last = series[0][0].isoformat(), series[-1][0].isoformat()
    axis = (
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#495057"/>'
        f'<text x="{pad}" y="{height - 8}" font-size="12" fill="#212529">{first}</text>'
        f'<text x="{width - pad}" y="{height - 8}" font-size="12" text-anchor="end" '
        f'fill="#212529">{last}</text>'
        f'<text x="{pad}" y="16" font-size="12" fill="#212529">{escape(amount_text(top, currency))} '
        f"{escape(currency)}</text>"
    )
    return _svg(width, height, label, "".join(bars) + axis)


def horizontal_bars(
    items: list[tuple[str, int, str]], label: str, *, width: int = 640, colors: tuple[str, ...] = PALETTE
) -> SafeString:
    """One labelled bar per item: (name, value, shown text); `width` is the drawing's own width."""
    if not items:
        return SafeString("")
    row = 30
    name_w = min(150, width // 3)
    bar_w = width - name_w - 110
    height = row * len(items) + 10
    top = max(v for _, v, _ in items) or 1
    parts = []
    for i, (name, value, shown) in enumerate(items):
        y = 5 + i * row
        w = max(2, bar_w * value / top)
        parts.append(
            f'<text x="0" y="{y + 19}" font-size="13" fill="#212529">{escape(name)}</text>'
            f'<rect x="{name_w}" y="{y + 4}" width="{w:.1f}" height="20" fill="{colors[i % len(colors)]}"/>'
            f'<text x="{name_w + w + 6:.1f}" y="{y + 19}" font-size="13" '
            f'fill="#212529">{escape(shown)}</text>'
        )
    return _svg(width, height, label, "".join(parts))
