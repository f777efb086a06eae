"""The seed's C(r) and N(r) fitted by maximum likelihood from history (issue 15, DESIGN section 11).

Synthetic data are drawn from known curves with a fixed seed; the fits must
recover k and theta within 10 %.
"""

import math
import random
from datetime import timedelta
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.utils import timezone

from payments.logistic import arrival_fit, logistic_fit
from payments.models import (
    Delivery,
    DeliveryStatus,
    GatewayAttempt,
    GatewayCallback,
    PaymentStatus,
    TimingModel,
)
from payments.services.notifications.endpoints import webhook_endpoint_create
from payments.services.timing_models import (
    delivery_success_chances,
    reconcile_query_after,
    timing_model,
    timing_models_fit,
)
from tests.factories import PaymentFactory


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def logistic_delay(rng: random.Random, k: float, theta: float) -> float:
    """A delay whose distribution function is 1 / (1 + e^{-k (r - theta)}) (inverse transform)."""
    u = rng.uniform(1e-9, 1 - 1e-9)
    return theta + math.log(u / (1 - u)) / k


def close(value: float, expected: float, within: float = 0.10) -> bool:
    return abs(value - expected) <= within * abs(expected)


def test_arrival_fit_recovers_k_and_theta_from_delays_some_still_waiting():
    rng = random.Random(15)
    k, theta = 0.8, 6.0
    observed, censored = [], []
    for _ in range(3000):
        delay = logistic_delay(rng, k, theta)
        age = rng.uniform(2, 30)  # how long ago the payment was submitted
        (observed if delay <= age else censored).append(delay if delay <= age else age)
    assert len(censored) > 100  # the censoring matters
    fit = arrival_fit(observed, censored)
    assert close(fit.k, k) and close(fit.theta, theta), fit
    assert close(fit.inverse(0.95), theta + math.log(19) / k)


def test_arrival_fit_ignoring_the_waiting_would_be_biased():
    """The censored waits carry information: dropping them moves theta down (a check on the test data)."""
    rng = random.Random(16)
    observed, censored = [], []
    for _ in range(3000):
        delay = logistic_delay(rng, 0.5, 12.0)
        age = rng.uniform(2, 20)
        (observed if delay <= age else censored).append(min(delay, age))
    with_waits = arrival_fit(observed, censored)
    without = arrival_fit(observed, [])
    assert close(with_waits.theta, 12.0) and close(with_waits.k, 0.5)
    assert without.theta < 0.9 * 12.0


def test_logistic_fit_recovers_the_chance_of_delivery_attempt_r():
    rng = random.Random(17)
    k, theta = 0.9, 3.5
    xs, ys = [], []
    for _ in range(6000):
        r = rng.randint(1, 8)
        xs.append(float(r))
        ys.append(int(rng.random() < 1 / (1 + math.exp(-k * (r - theta)))))
    a, b, _ll, _iterations = logistic_fit(xs, ys)
    assert close(b, k) and close(-a / b, theta)


# From PayDesk's history ----------------------------------------------------------------------


def _callback_history(merchant, *, n: int, k: float, theta: float, seed: int = 18) -> int:
    """n sandbox payment attempts with callbacks after logistic delays; return how many arrived.

    Every tenth was submitted in the last 20 seconds, so some still wait for theirs (censored);
    five more lost their callback an hour and a half ago (left out: reconciliation queries them).
    """
    rng = random.Random(seed)
    now = timezone.now()
    arrived = 0
    ages = [rng.uniform(1, 20) if i % 10 == 0 else rng.uniform(60, 3600) for i in range(n)] + [5400] * 5
    for i, age in enumerate(ages):
        submitted = now - timedelta(seconds=age)
        delay = logistic_delay(rng, k, theta) if i < n else age + 1
        waiting = delay > age
        payment = PaymentFactory(
            merchant=merchant,
            gateway="sandbox",
            status=PaymentStatus.PROCESSING if waiting else PaymentStatus.SUCCEEDED,
        )
        attempt = GatewayAttempt.objects.create(
            payment=payment, gateway="sandbox", idempotency_key=f"{payment.public_id}-1", status="answered"
        )
        GatewayAttempt.objects.filter(pk=attempt.pk).update(created_at=submitted, answered_at=submitted)
        if waiting:
            continue
        arrived += 1
        callback = GatewayCallback.objects.create(
            gateway="sandbox", event_id=f"sbxevt_{i}", status="applied", body="{}", payment=payment
        )
        # A delay below zero (the curve's far tail) arrives with the answer.
        at = submitted + timedelta(seconds=max(delay, 0.001))
        GatewayCallback.objects.filter(pk=callback.pk).update(received_at=at)
    return arrived


def _delivery_history(endpoint, *, n: int, k: float, theta: float, top: int = 8, seed: int = 19) -> None:
    """n webhook deliveries to `endpoint`, attempt r succeeding with chance 1/(1+e^{-k(r-theta)})."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        attempts, status = top, DeliveryStatus.DEAD
        for r in range(1, top + 1):
            if rng.random() < 1 / (1 + math.exp(-k * (r - theta))):
                attempts, status = r, DeliveryStatus.SUCCEEDED
                break
        rows.append(
            Delivery(
                merchant=endpoint.merchant,
                type="payment.succeeded",
                channel="webhook",
                endpoint=endpoint,
                status=status,
                attempts=attempts,
                max_attempts=top,
            )
        )
    Delivery.objects.bulk_create(rows)


@pytest.fixture
def endpoint(merchant_a):
    endpoint, _secret = webhook_endpoint_create(merchant=merchant_a, url="https://hooks.example/a")
    return endpoint


@pytest.mark.django_db
def test_fit_timing_models_fits_both_curves_from_history_and_puts_them_in_force(
    merchant_a, endpoint, django_capture_on_commit_callbacks, clock
):
    # Time stands still: the waits of the payments still waiting are their ages when the data were made.
    arrived = _callback_history(merchant_a, n=800, k=0.6, theta=8.0)
    _delivery_history(endpoint, n=1500, k=0.9, theta=3.0)
    assert timing_model("callback", "sandbox") is None  # and that answer is cached
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("fit_timing_models", "--min-samples", "100", stdout=out)
    printed = out.getvalue()

    c = TimingModel.objects.get(kind="callback", subject="sandbox")
    assert close(c.k, 0.6) and close(c.theta, 8.0), (c.k, c.theta)
    assert c.samples == 800 and c.positives == arrived and 700 < arrived < 800
    n = TimingModel.objects.get(kind="notification", subject=endpoint.public_id)
    assert close(n.k, 0.9) and close(n.theta, 3.0), (n.k, n.theta)
    assert "C(r) sandbox: 800 payment attempts since" in printed
    assert f"{arrived} callbacks arrived" in printed and f"{800 - arrived} still waiting" in printed
    assert f"k = {c.k:.6g}, theta = {c.theta:.6g}" in printed
    assert f"N(r) {endpoint.public_id}:" in printed and f"k = {n.k:.6g}, theta = {n.theta:.6g}" in printed
    # Gateways without history are refused, and say so.
    assert "C(r) alipay: 0 payment attempts" in printed and "refused: fewer than 100 attempts" in printed
    # In force: read through the cache by reconciliation and the endpoint page.
    assert timing_model("callback", "sandbox").k == pytest.approx(c.k)
    chances = delivery_success_chances(endpoint, 8)
    assert [r for r, _p in chances] == list(range(1, 9))
    assert chances[0][1] < 0.5 < chances[-1][1]


@pytest.mark.django_db
def test_too_little_data_is_refused_and_nothing_saved(merchant_a, endpoint, clock):
    _callback_history(merchant_a, n=20, k=0.6, theta=8.0)
    out = StringIO()
    with pytest.raises(CommandError, match="nothing saved"):
        call_command("fit_timing_models", stdout=out)
    assert "C(r) sandbox: 20 payment attempts" in out.getvalue()  # the five lost ones left out
    assert "refused: fewer than 50 attempts" in out.getvalue()
    assert not TimingModel.objects.exists()


@pytest.mark.django_db
def test_an_endpoint_that_never_answers_is_refused_not_fitted(merchant_a, endpoint):
    _delivery_history(endpoint, n=200, k=0.9, theta=50.0)  # practically never succeeds
    results = {r.subject: r for r in timing_models_fit(min_samples=50, dry_run=True)}
    if results[endpoint.public_id].positives == 0:
        assert "Only one class" in results[endpoint.public_id].refused
    assert not TimingModel.objects.exists()  # dry run


@pytest.mark.django_db
def test_the_query_time_is_where_c_passes_095_within_its_bounds(settings):
    settings.PAYDESK_RECONCILE_QUERY_MIN = 10
    settings.PAYDESK_RECONCILE_QUERY_MAX = 600
    assert reconcile_query_after("alipay", 120) == 120  # no model: the configured query_after
    TimingModel.objects.create(
        kind="callback", subject="alipay", k=0.5, theta=20, samples=1, positives=1, log_likelihood=0
    )
    cache.clear()
    assert reconcile_query_after("alipay", 120) == pytest.approx(20 + math.log(19) / 0.5)
    TimingModel.objects.create(
        kind="callback", subject="alipay", k=0.5, theta=2000, samples=1, positives=1, log_likelihood=0
    )
    cache.clear()
    assert reconcile_query_after("alipay", 120) == 600
    TimingModel.objects.create(
        kind="callback", subject="alipay", k=2, theta=0, samples=1, positives=1, log_likelihood=0
    )
    cache.clear()
    assert reconcile_query_after("alipay", 120) == 10


@pytest.mark.django_db
def test_the_daily_schedule_refits(merchant_a, clock):
    from django_q.models import Schedule

    from payments.apps import ensure_schedules
    from payments.tasks import timing_models_fit_task

    ensure_schedules(sender=None)
    schedule = Schedule.objects.get(name="paydesk-fit-timing-models")
    assert (
        schedule.func == "payments.tasks.timing_models_fit_task" and schedule.schedule_type == Schedule.DAILY
    )
    _callback_history(merchant_a, n=120, k=0.6, theta=8.0)
    assert timing_models_fit_task() == 1
    assert TimingModel.objects.get().fitted_by == "daily schedule"
