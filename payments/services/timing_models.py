"""The seed's C(r) and N(r) fitted from PayDesk's own history (DESIGN section 11, issue 15).

C(r), per gateway: the probability that a payment's callback has arrived r
seconds after submission. Data: every real-time payment attempt at that
gateway submitted within PAYDESK_TIMING_WINDOW_DAYS; the delay from the
attempt to the first callback about its payment is an observation, a payment
still waiting (processing, requires_action) without one is censored at its
age (up to PAYDESK_RECONCILE_QUERY_MAX: one waiting longer has lost its
callback and is queried); a payment settled without a callback (a
synchronous answer, a query) tells nothing of callbacks and is left out. Reconciliation queries the
gateway once C(r) passes PAYDESK_RECONCILE_QUANTILE (0.95), bounded by
PAYDESK_RECONCILE_QUERY_MIN/MAX, instead of the fixed `query_after`.

N(r), per webhook endpoint: the probability that delivery attempt r
succeeds. Data: every webhook delivery to it within the window that made at
least one attempt; a delivery that succeeded at attempt n gives failures at
1..n-1 and a success at n, any other gives failures at 1..n. Shown on the
endpoint's page; when a failing endpoint's next attempt is predicted to fail
(N below PAYDESK_WEBHOOK_WARN_BELOW), its merchant is warned before the
endpoint would be disabled.

Both are refitted by `manage.py fit_timing_models` and daily by django-q2;
a fit is refused, with nothing saved, on too little data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache as shared_cache
from django.db import transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from merchants.models import WebhookEndpoint
from payments.logistic import Fit, FitError, arrival_fit, logistic_fit
from payments.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    GatewayAttempt,
    GatewayCallback,
    PaymentStatus,
    TimingModel,
)

CACHE_TTL = 60  # seconds: the longest a new fit waits to be used by every process
PENDING_STATES = (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION)
_NONE = "none"  # cached "no model"


@dataclass(frozen=True)
class TimingFit:
    kind: str
    subject: str
    samples: int
    positives: int
    fit: Fit | None
    data: str  # what the fit was made from, in words
    refused: str = ""  # why there is no fit
    saved: TimingModel | None = None


def _window(now: datetime) -> datetime:
    return now - timedelta(days=settings.PAYDESK_TIMING_WINDOW_DAYS)


# C(r): callback arrival per gateway ------------------------------------------------------


def callback_delays(gateway: str, *, now: datetime) -> tuple[list[float], list[float]]:
    """(observed delays, censored waits) in seconds of the gateway's recent real-time payment attempts."""
    first_callback = Min(
        "payment__callbacks__received_at",
        filter=Q(payment__callbacks__received_at__gte=F("created_at"))
        & ~Q(payment__callbacks__status=GatewayCallback.Status.REJECTED),
    )
    rows = (
        GatewayAttempt.objects.filter(
            kind=GatewayAttempt.Kind.PAYMENT,
            gateway=gateway,
            payment__batch=None,
            answered_at__isnull=False,
            created_at__gte=_window(now),
        )
        .annotate(first_callback=first_callback)
        .values_list("created_at", "first_callback", "payment__status")
    )
    # A payment waiting longer than reconciliation ever waits has lost its callback (it is queried):
    # it says nothing of how long callbacks take.
    horizon = settings.PAYDESK_RECONCILE_QUERY_MAX
    observed, censored = [], []
    for submitted, arrived, status in rows.iterator(chunk_size=5000):
        if arrived is not None:
            observed.append((arrived - submitted).total_seconds())
        elif status in PENDING_STATES and (waited := (now - submitted).total_seconds()) <= horizon:
            censored.append(max(waited, 0.0))
    return observed, censored


def callback_fit(gateway: str, *, now: datetime, min_samples: int) -> TimingFit:
    observed, censored = callback_delays(gateway, now=now)
    samples = len(observed) + len(censored)
    data = (
        f"{samples} payment attempts since {_window(now):%Y-%m-%d}: {len(observed)} callbacks arrived"
        + (f" (delays {min(observed):.1f}-{max(observed):.1f} s)" if observed else "")
        + f", {len(censored)} still waiting"
    )
    kind = TimingModel.Kind.CALLBACK
    if samples < min_samples:
        return TimingFit(
            kind, gateway, samples, len(observed), None, data, f"fewer than {min_samples} attempts"
        )
    try:
        fit = arrival_fit(observed, censored)
    except FitError as exc:
        return TimingFit(kind, gateway, samples, len(observed), None, data, str(exc))
    return TimingFit(kind, gateway, samples, len(observed), fit, data)


# N(r): delivery success per webhook endpoint ---------------------------------------------


def delivery_outcomes(endpoint: WebhookEndpoint, *, now: datetime) -> tuple[list[float], list[int]]:
    """(attempt numbers, 1 if that attempt succeeded) of the endpoint's recent webhook deliveries."""
    rows = Delivery.objects.filter(
        endpoint=endpoint, channel=Channel.WEBHOOK, attempts__gt=0, created_at__gte=_window(now)
    ).values_list("attempts", "status")
    xs: list[float] = []
    ys: list[int] = []
    for attempts, status in rows.iterator(chunk_size=5000):
        succeeded = status == DeliveryStatus.SUCCEEDED
        for r in range(1, attempts + 1):
            xs.append(float(r))
            ys.append(int(succeeded and r == attempts))
    return xs, ys


def delivery_fit(endpoint: WebhookEndpoint, *, now: datetime, min_samples: int) -> TimingFit:
    xs, ys = delivery_outcomes(endpoint, now=now)
    samples, positives = len(xs), sum(ys)
    top = int(max(xs)) if xs else 0
    data = (
        f"{samples} delivery attempts since {_window(now):%Y-%m-%d} (attempt numbers 1-{top}): "
        f"{positives} succeeded"
    )
    kind = TimingModel.Kind.NOTIFICATION
    subject = endpoint.public_id
    if samples < min_samples:
        return TimingFit(kind, subject, samples, positives, None, data, f"fewer than {min_samples} attempts")
    try:
        a, b, ll, iterations = logistic_fit(xs, ys)
    except FitError as exc:
        return TimingFit(kind, subject, samples, positives, None, data, str(exc))
    if b == 0:
        return TimingFit(kind, subject, samples, positives, None, data, "the attempt number changes nothing")
    fit = Fit(k=b, theta=-a / b, log_likelihood=ll, iterations=iterations)
    return TimingFit(kind, subject, samples, positives, fit, data)


# Fitting and reading ---------------------------------------------------------------------


def timing_models_fit(
    *, min_samples: int = 50, dry_run: bool = False, fitted_by: str = "", now: datetime | None = None
) -> list[TimingFit]:
    """Fit C(r) for every configured gateway and N(r) for every enabled webhook endpoint.

    Save each fit that the data support (unless dry_run), as the model in
    force for its gateway or endpoint; return every fit and every refusal.
    """
    now = now or timezone.now()
    results = [callback_fit(slug, now=now, min_samples=min_samples) for slug in settings.PAYDESK_GATEWAYS]
    endpoints = WebhookEndpoint.objects.filter(status=WebhookEndpoint.Status.ENABLED).order_by("id")
    results += [delivery_fit(e, now=now, min_samples=min_samples) for e in endpoints]
    if dry_run:
        return results
    saved = []
    with transaction.atomic():
        for result in results:
            if result.fit is None or not (math.isfinite(result.fit.k) and math.isfinite(result.fit.theta)):
                saved.append(result)
                continue
            row = TimingModel.objects.create(
                kind=result.kind,
                subject=result.subject,
                k=result.fit.k,
                theta=result.fit.theta,
                samples=result.samples,
                positives=result.positives,
                log_likelihood=result.fit.log_likelihood,
                data_from=_window(now),
                data_to=now,
                fitted_by=fitted_by[:200],
            )
            saved.append(TimingFit(**{**result.__dict__, "saved": row}))
            key = _cache_key(result.kind, result.subject)
            transaction.on_commit(lambda key=key: shared_cache.delete(key))
    return saved


def _cache_key(kind: str, subject: str) -> str:
    return f"payments:timing-model:v1:{kind}:{subject}"


def timing_model(kind: str, subject: str) -> Fit | None:
    """The fitted curve in force for (kind, subject), or None; read through the cache (CACHE_TTL)."""
    key = _cache_key(kind, subject)
    cached = shared_cache.get(key)
    if cached is None:
        row = TimingModel.objects.filter(kind=kind, subject=subject).order_by("-fitted_at", "-id").first()
        cached = _NONE if row is None else (row.k, row.theta)
        shared_cache.set(key, cached, CACHE_TTL)
    if cached == _NONE:
        return None
    k, theta = cached
    return Fit(k=k, theta=theta, log_likelihood=float("nan"), iterations=0)


def reconcile_query_after(gateway: str, default: float) -> float:
    """Seconds after submission to query the gateway: where C(r) passes the quantile, else `default`.

    Bounded by PAYDESK_RECONCILE_QUERY_MIN and PAYDESK_RECONCILE_QUERY_MAX.
    """
    fit = timing_model(TimingModel.Kind.CALLBACK, gateway)
    if fit is None or fit.k <= 0:
        return default
    at = fit.inverse(settings.PAYDESK_RECONCILE_QUANTILE)
    return min(max(at, settings.PAYDESK_RECONCILE_QUERY_MIN), settings.PAYDESK_RECONCILE_QUERY_MAX)


def delivery_success_chances(endpoint: WebhookEndpoint, attempts: int) -> list[tuple[int, float]] | None:
    """N(r) of the endpoint for r = 1..attempts, or None without a fitted model."""
    fit = timing_model(TimingModel.Kind.NOTIFICATION, endpoint.public_id)
    if fit is None:
        return None
    return [(r, fit.at(r)) for r in range(1, attempts + 1)]
