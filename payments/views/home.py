"""Home: the day, the week and the month at a glance, from the rollup (payments/home_selectors.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from payments.home_selectors import WINDOWS, home_figures
from payments.models import Method
from payments.representations import amount_text
from payments.views.charts import bar_chart_by_day, horizontal_bars
from payments.views.dashboard import merchant_required


@merchant_required
def home(request: HttpRequest) -> HttpResponse:
    window = request.GET.get("window", "7d")
    if window not in WINDOWS:
        window = "7d"
    figures = home_figures(merchant=request.merchant, days=WINDOWS[window])
    methods = dict(Method.choices)
    charts = []
    for currency, series in sorted(figures.per_day.items(), key=lambda cs: -figures.volume.get(cs[0], 0))[:3]:
        charts.append(
            (
                _("Volume per day, %(currency)s") % {"currency": currency},
                bar_chart_by_day(series, currency, _("Succeeded volume per day in %(c)s") % {"c": currency}),
                [(d, amount_text(v, currency)) for d, v in series],
                currency,
            )
        )
    outcome = horizontal_bars(
        [
            (str(_("Succeeded")), figures.succeeded, str(figures.succeeded)),
            (str(_("Failed")), figures.failed, str(figures.failed)),
            (str(_("Reversed")), figures.reversed, str(figures.reversed)),
        ]
        if figures.succeeded + figures.failed + figures.reversed
        else [],
        _("Outcome split"),
        width=320,
        colors=("#146c43", "#b02a37", "#9a4700"),
    )
    main_currency = next(iter(c for c, _v in figures.volume_display()), None)
    by_method = (
        horizontal_bars(
            [
                (
                    str(methods.get(m, m)),
                    per.get(main_currency, 0),
                    f"{amount_text(per.get(main_currency, 0), main_currency)} {main_currency}",
                )
                for m, per in figures.by_method.items()
                if per.get(main_currency)
            ],
            _("Volume by method in %(c)s") % {"c": main_currency},
        )
        if main_currency
        else ""
    )
    return render(
        request,
        "home/home.html",
        {
            "figures": figures,
            "window": window,
            "windows": [("today", _("Today")), ("7d", _("7 days")), ("30d", _("30 days"))],
            "charts": charts,
            "outcome_chart": outcome,
            "method_chart": by_method,
            "main_currency": main_currency,
            "methods": methods,
        },
    )
