"""Sending Deliveries (DESIGN section 1, last step); fanout.py creates them from Events.

- Sending: a worker claims the next attempt of a due delivery with one
  conditional UPDATE that commits the attempt counter and leases the row
  (`next_attempt_at` pushed out), calls the channel's transport outside any
  transaction, then records the outcome if its claim still holds. A
  merchant's webhooks are sent only by holders of its send slots (slots.py),
  so one merchant's hanging endpoint cannot hold every worker.
- Recovery: the sweeper re-enqueues due deliveries (retries and leases that ran
  out because a worker died mid-send) and dead-letters those out of attempts.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When, Window
from django.db.models.functions import Cast, RowNumber
from django.utils import timezone

from merchants.models import WebhookEndpoint
from payments.channels import SendResult, Transport, TransportError, get_transport
from payments.channels.messages import ENDPOINT_AT_RISK, ENDPOINT_DISABLED
from payments.models import Channel, Delivery, DeliveryStatus, TimingModel
from payments.queue import enqueue
from payments.services.notifications.fanout import CHUNK, SMALL_FANOUT, merchant_notice
from payments.services.notifications.slots import Slot, slot_free, slot_renew, slot_take
from payments.services.timing_models import timing_model

logger = logging.getLogger(__name__)

# An endpoint whose failures have gone on this long is disabled and its merchant told.
FAILING_DISABLE_AFTER = timedelta(hours=24)
# A chunk task stops claiming new deliveries after this long (below Q_CLUSTER's timeout).
CHUNK_BUDGET_SECONDS = 60
SWEEP_LIMIT = 5000
SWEEP_PER_MERCHANT = 500
# Deliveries claimed, sent and recorded together by a chunk task.
BATCH = 25
D = DeliveryStatus


def lease_seconds() -> int:
    """How long a claimed attempt may run before the sweeper may claim the delivery again."""
    return max(int(settings.PAYDESK_SWEEP_AFTER), 60)


# Sending --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one attempt gave, before it is recorded."""

    delivery: Delivery
    attempt: int
    duration_ms: int = 0
    result: SendResult | None = None
    error: TransportError | None = None
    touch_endpoint: bool = True


def _claim(delivery: Delivery, now: datetime) -> bool:
    """Take the next attempt of a delivery loaded as `delivery`; False if it is not due or taken.

    One conditional UPDATE, committed at once outside a transaction: it counts
    the attempt and leases the row (moves `next_attempt_at` past the lease)
    before anything is sent. It matches only the attempt count that was read,
    so two workers can never hold the same attempt.
    """
    lease_end = now + timedelta(seconds=lease_seconds())
    claimed = Delivery.objects.filter(
        pk=delivery.pk,
        status=D.PENDING,
        attempts=delivery.attempts,
        attempts__lt=F("max_attempts"),
        next_attempt_at__lte=now,
    ).update(attempts=delivery.attempts + 1, last_attempt_at=now, next_attempt_at=lease_end)
    if claimed:
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.next_attempt_at = lease_end
    return bool(claimed)


def delivery_claim(delivery_id: int, *, now: datetime | None = None) -> Delivery | None:
    """Load a delivery and take its next attempt; return it, or None if it is not due or taken."""
    delivery = Delivery.objects.select_related("event", "endpoint").filter(pk=delivery_id).first()
    if delivery is None or not _claim(delivery, now or timezone.now()):
        return None
    return delivery


def _claim_batch(delivery_ids: list[int]) -> list[Delivery]:
    """Take the next attempt of every due delivery among `delivery_ids` in one committed transaction.

    Rows another worker holds are skipped (SKIP LOCKED on PostgreSQL; SQLite
    serialises write transactions), so no attempt is ever held twice.
    """
    now = timezone.now()
    lease_end = now + timedelta(seconds=lease_seconds())
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "endpoint")
            .filter(pk__in=delivery_ids, status=D.PENDING, next_attempt_at__lte=now)
            .filter(attempts__lt=F("max_attempts"))
            .order_by("pk")
        )
        if rows:
            Delivery.objects.filter(pk__in=[d.pk for d in rows]).update(
                attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=lease_end
            )
    for delivery in rows:
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.next_attempt_at = lease_end
    return rows


def delivery_send(*, delivery_id: int) -> str:
    """Make the next attempt of one delivery if it is due; return its status after, or "" if not claimed.

    Safe to call any number of times and concurrently (at-least-once task
    delivery): only the caller whose claim succeeds sends. A webhook is sent
    only while holding one of its merchant's send slots (`webhooks_send`);
    with every slot held this returns "" and the delivery stays due, for the
    holder to send.
    """
    row = (
        Delivery.objects.filter(pk=delivery_id, status=D.PENDING)
        .values_list("channel", "merchant_id")
        .first()
    )
    if row is None:
        return ""
    channel, merchant_id = row
    if channel == Channel.WEBHOOK:
        until = time.monotonic() + CHUNK_BUDGET_SECONDS
        return webhooks_send(merchant_id=merchant_id, delivery_ids=[delivery_id], until=until).get(
            delivery_id, ""
        )
    delivery = delivery_claim(delivery_id)
    if delivery is None:
        return ""
    return delivery_attempt(delivery, get_transport(channel))


def deliveries_send(
    *, delivery_ids: list[int], budget_seconds: float = CHUNK_BUDGET_SECONDS
) -> dict[str, int]:
    """Send a chunk of deliveries, one connection per channel, claiming and recording in batches.

    Each batch of BATCH deliveries is claimed in one transaction (attempt
    counters committed before any send) and its outcomes recorded in one
    transaction after the sends: two commits per batch, not per delivery. A
    worker that dies mid-batch loses nothing: its claimed rows are sent again
    after their lease, as new attempts. A claimed row is not sent once too
    little of its lease is left for a send to finish: its attempt is given
    back and it stays due. What the time budget leaves stays due, for the
    sweeper. Webhooks go merchant by merchant through `webhooks_send`.
    """
    deadline = time.monotonic() + budget_seconds
    counts: dict[str, int] = defaultdict(int)
    by_channel: dict[str, list[int]] = defaultdict(list)
    webhooks: dict[int, list[int]] = defaultdict(list)
    for pk, channel, merchant_id in (
        Delivery.objects.filter(pk__in=delivery_ids, status=D.PENDING)
        .order_by("pk")
        .values_list("pk", "channel", "merchant_id")
    ):
        if channel == Channel.WEBHOOK:
            webhooks[merchant_id].append(pk)
        else:
            by_channel[channel].append(pk)
    for channel, ids in by_channel.items():
        transport = get_transport(channel)
        try:
            transport.open()
        except Exception as exc:
            # Nothing was claimed yet: leave the chunk due, for the sweeper to try again.
            logger.warning("could not open %s connection: %s", channel, exc)
            counts["unopened"] += len(ids)
            continue
        try:
            for i in range(0, len(ids), BATCH):
                if time.monotonic() > deadline:
                    counts["left_for_sweeper"] += len(ids) - i
                    break
                for status in _send_batch(ids[i : i + BATCH], transport, counts).values():
                    counts[status] += 1
        finally:
            transport.close()
    for merchant_id, ids in webhooks.items():
        for status in webhooks_send(
            merchant_id=merchant_id, delivery_ids=ids, until=deadline, counts=counts
        ).values():
            counts[status] += 1
    return dict(counts)


def webhooks_send(
    *, merchant_id: int, delivery_ids: list[int], until: float, counts: dict[str, int] | None = None
) -> dict[int, str]:
    """Send a merchant's webhook deliveries, then its other due ones, holding one of its send slots.

    Return the status of every delivery attempted, by id. Until the monotonic
    time `until`:
    - With every slot of the merchant held (slots.py), nothing is claimed:
      the deliveries stay due, for the holder.
    - The holder sends `delivery_ids`, then the merchant's other due webhooks,
      batch by batch, renewing its slot's lease before each batch.
    - An endpoint that gave no answer (timed out, refused the connection) is
      not sent to again in this call: its other deliveries stay due, for the
      sweeper. A hanging endpoint costs a worker one deadline per task.
    - Having freed the slot, it looks for due webhooks once more: a task that
      found the slot taken meanwhile left its deliveries to it. What is left
      when its time is up goes back to the queue as a new task, behind the
      work queued meanwhile.
    """
    counts = defaultdict(int) if counts is None else counts
    transport = get_transport(Channel.WEBHOOK.value)  # the cache key is the plain str
    statuses: dict[int, str] = {}
    cut_off: set[int] = set()
    ids = delivery_ids
    while ids:
        slot = slot_take(merchant_id, lease=lease_seconds())
        if slot is None:
            counts["merchant_busy"] += len(ids)
            break
        try:
            attempted = _drain(slot, ids, transport, until, counts, cut_off, statuses)
        finally:
            slot_free(slot)
        ids = _due_webhooks(merchant_id, cut_off)
        if ids and time.monotonic() >= until:
            enqueue("payments.tasks.deliveries_send_task", ids)
            break
        if not attempted:
            break  # due but not claimable (another worker's claim in flight): the sweeper looks again
    return statuses


def _drain(
    slot: Slot,
    ids: list[int],
    transport: Transport,
    until: float,
    counts: dict[str, int],
    cut_off: set[int],
    statuses: dict[int, str],
) -> int:
    attempted = 0
    while ids:
        before = len(statuses)
        for i in range(0, len(ids), BATCH):
            if time.monotonic() >= until or not slot_renew(slot, lease=lease_seconds()):
                return attempted + len(statuses) - before
            statuses.update(_send_batch(ids[i : i + BATCH], transport, counts, cut_off))
        if len(statuses) == before:
            break
        attempted += len(statuses) - before
        ids = _due_webhooks(slot.merchant_id, cut_off)
    return attempted


def _due_webhooks(merchant_id: int, cut_off: set[int]) -> list[int]:
    """Up to CHUNK of the merchant's due webhook deliveries, oldest due first, none to `cut_off`."""
    due = Delivery.objects.filter(
        merchant_id=merchant_id,
        channel=Channel.WEBHOOK,
        status=D.PENDING,
        next_attempt_at__lte=timezone.now(),
        attempts__lt=F("max_attempts"),
    )
    if cut_off:
        due = due.exclude(endpoint_id__in=cut_off)
    return list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:CHUNK])


def _send_batch(
    ids: list[int], transport: Transport, counts: dict[str, int], cut_off: set[int] | None = None
) -> dict[int, str]:
    """Claim the due deliveries among `ids`, send them, record the outcomes; return their statuses.

    A claimed delivery is not sent, and its attempt is given back, once too
    little of the lease is left for a send, or when its endpoint is in
    `cut_off`; an endpoint that gives no answer is added to it.
    """
    batch = _claim_batch(ids)
    counts["skipped"] += len(ids) - len(batch)
    send_until = time.monotonic() + lease_seconds() - transport.max_send_seconds
    outcomes: list[Outcome] = []
    unsent: list[Delivery] = []
    for delivery in batch:
        if time.monotonic() > send_until or (cut_off is not None and delivery.endpoint_id in cut_off):
            unsent.append(delivery)
            continue
        outcome = _send(delivery, transport)
        outcomes.append(outcome)
        error = outcome.error
        if cut_off is not None and error is not None and error.response_code is None and not error.permanent:
            cut_off.add(delivery.endpoint_id)
    counts["left_for_sweeper"] += _unclaim(unsent)
    return {o.delivery.pk: status for o, status in zip(outcomes, _record(outcomes), strict=True)}


def _unclaim(deliveries: list[Delivery]) -> int:
    """Give back claimed attempts that were not made: due again at once, the attempt not counted."""
    if not deliveries:
        return 0
    claims = Q()
    for delivery in deliveries:
        claims |= Q(pk=delivery.pk, attempts=delivery.attempts)
    return Delivery.objects.filter(claims, status=D.PENDING).update(
        attempts=F("attempts") - 1, next_attempt_at=timezone.now()
    )


def delivery_attempt(delivery: Delivery, transport: Transport) -> str:
    """Send a claimed delivery through `transport` and record the outcome; return the status."""
    return _record([_send(delivery, transport)])[0]


def _send(delivery: Delivery, transport: Transport) -> Outcome:
    attempt = delivery.attempts
    endpoint = delivery.endpoint
    if delivery.channel == Channel.WEBHOOK and (endpoint is None or not endpoint.is_enabled):
        error = TransportError("The webhook endpoint is disabled.", permanent=True)
        return Outcome(delivery, attempt, error=error, touch_endpoint=False)
    started = time.monotonic()
    try:
        result = transport.send(delivery)
    except TransportError as exc:
        return Outcome(delivery, attempt, _ms(started), error=exc)
    except Exception as exc:
        # A bug in a transport must not lose the delivery: record it as a failed attempt.
        logger.exception("transport %s crashed on delivery %s", delivery.channel, delivery.public_id)
        error = TransportError(f"Internal error: {type(exc).__name__}: {exc}"[:500])
        return Outcome(delivery, attempt, _ms(started), error=error)
    return Outcome(delivery, attempt, _ms(started), result=result)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def retry_due_at(delivery: Delivery, attempts_made: int, now: datetime) -> datetime | None:
    """Return when the next attempt is due (schedule offsets from creation), None if none is left."""
    schedule = get_transport(delivery.channel).schedule
    if attempts_made >= min(len(schedule), delivery.max_attempts):
        return None
    return max(now, delivery.created_at + timedelta(seconds=schedule[attempts_made]))


def _record(outcomes: list[Outcome]) -> list[str]:
    """Record attempts' outcomes in one transaction; return their statuses in order.

    An outcome whose claim was overtaken (its lease ran out and another worker
    took the next attempt) changes nothing and reads "superseded". Failures
    are recorded first, one by one, since they may disable their endpoint;
    then every success with one UPDATE, since a success ends its endpoint's
    run of failures.
    """
    if not outcomes:
        return []
    now = timezone.now()
    statuses: dict[int, str] = {}
    with transaction.atomic():
        for outcome in outcomes:
            if outcome.error is not None:
                statuses[id(outcome)] = _record_failure(outcome, now)
        successes = [o for o in outcomes if o.error is None]
        if successes:
            statuses.update(_record_successes(successes, now))
    return [statuses[id(o)] for o in outcomes]


def _record_successes(successes: list[Outcome], now: datetime) -> dict[int, str]:
    def per_row(name: str, values: list) -> Cast:
        field = Delivery._meta.get_field(name)
        pairs = zip(successes, values, strict=True)
        whens = [When(pk=o.delivery.pk, then=Value(v, output_field=field)) for o, v in pairs]
        # PostgreSQL types a CASE of parameters as text; bulk_update casts it the same way.
        return Cast(Case(*whens, output_field=field), output_field=field)

    results = [o.result or SendResult() for o in successes]
    claims = Q()
    for outcome in successes:
        claims |= Q(pk=outcome.delivery.pk, attempts=outcome.attempt)
    updated = Delivery.objects.filter(claims, status=D.PENDING).update(
        status=D.SUCCEEDED,
        next_attempt_at=None,
        completed_at=now,
        error="",
        last_response_code=per_row("last_response_code", [r.response_code for r in results]),
        last_duration_ms=per_row("last_duration_ms", [o.duration_ms for o in successes]),
        response_excerpt=per_row("response_excerpt", [r.response_excerpt for r in results]),
    )
    ours = {o.delivery.pk for o in successes}
    if updated != len(successes):
        ours = set(
            Delivery.objects.filter(claims, status=D.SUCCEEDED, completed_at=now).values_list("pk", flat=True)
        )
    endpoint_ids = {o.delivery.endpoint_id for o in successes if o.delivery.pk in ours} - {None}
    if endpoint_ids:
        WebhookEndpoint.objects.filter(pk__in=endpoint_ids, first_failure_at__isnull=False).update(
            first_failure_at=None
        )
    statuses = {}
    for outcome in successes:
        if outcome.delivery.pk in ours:
            statuses[id(outcome)] = D.SUCCEEDED
        else:
            logger.warning(
                "delivery %s attempt %s outcome came after its lease",
                outcome.delivery.public_id,
                outcome.attempt,
            )
            statuses[id(outcome)] = "superseded"
    return statuses


def _record_failure(outcome: Outcome, now: datetime) -> str:
    delivery, error = outcome.delivery, outcome.error
    if error.permanent:
        status, due = D.FAILED, None
    else:
        due = retry_due_at(delivery, outcome.attempt, now)
        status = D.PENDING if due is not None else D.DEAD
    endpoint = None
    if outcome.touch_endpoint and delivery.endpoint_id is not None:
        # Lock order: endpoint before its deliveries (as endpoint_disable does).
        endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=delivery.endpoint_id).first()
    updated = Delivery.objects.filter(pk=delivery.pk, attempts=outcome.attempt, status=D.PENDING).update(
        status=status,
        next_attempt_at=due,
        completed_at=None if status == D.PENDING else now,
        last_response_code=error.response_code,
        last_duration_ms=outcome.duration_ms,
        response_excerpt=error.response_excerpt,
        error=str(error)[:500],
    )
    if not updated:
        logger.warning(
            "delivery %s attempt %s outcome came after its lease", delivery.public_id, outcome.attempt
        )
        return "superseded"
    if endpoint is not None and endpoint.is_enabled:
        _endpoint_failed(endpoint, error, now, attempt=outcome.attempt)
    return status


def _endpoint_failed(
    endpoint: WebhookEndpoint, error: TransportError, now: datetime, *, attempt: int
) -> None:
    """Track an endpoint's run of failures; disable it on a permanent error or after a day of failing.

    Before that, once per run of failures, warn the merchant when the
    endpoint's fitted N(r) gives the next attempt less than
    PAYDESK_WEBHOOK_WARN_BELOW chance of success.
    """
    if error.permanent:
        endpoint_disable(endpoint, reason=str(error), now=now, notify=True)
        return
    if endpoint.first_failure_at is None:
        endpoint.first_failure_at = now
        endpoint.save(update_fields=["first_failure_at", "updated_at"])
    elif now - endpoint.first_failure_at >= FAILING_DISABLE_AFTER:
        since = endpoint.first_failure_at.strftime("%Y-%m-%d %H:%M UTC")
        endpoint_disable(endpoint, reason=f"Every delivery has failed since {since}.", now=now, notify=True)
        return
    _warn_if_at_risk(endpoint, next_attempt=attempt + 1)


def _warn_if_at_risk(endpoint: WebhookEndpoint, *, next_attempt: int) -> None:
    fit = timing_model(TimingModel.Kind.NOTIFICATION, endpoint.public_id)
    if fit is None:
        return
    chance = fit.at(next_attempt)
    if chance >= settings.PAYDESK_WEBHOOK_WARN_BELOW:
        return
    warned = Delivery.objects.filter(
        merchant_id=endpoint.merchant_id,
        type=ENDPOINT_AT_RISK,
        channel=Channel.INAPP,
        created_at__gte=endpoint.first_failure_at,
        payload__endpoint=endpoint.public_id,
    )
    if warned.exists():
        return
    disable_at = endpoint.first_failure_at + FAILING_DISABLE_AFTER
    merchant_notice(
        merchant_id=endpoint.merchant_id,
        type=ENDPOINT_AT_RISK,
        payload={
            "endpoint": endpoint.public_id,
            "url": endpoint.url,
            "attempt": next_attempt,
            "chance": round(chance, 3),
            "disable_at": disable_at.isoformat(),
        },
    )


def endpoint_disable(endpoint: WebhookEndpoint, *, reason: str, now: datetime, notify: bool) -> None:
    """Disable a locked endpoint, stop its pending deliveries and, if `notify`, tell the merchant."""
    endpoint.status = WebhookEndpoint.Status.DISABLED
    endpoint.disabled_reason = reason[:300]
    endpoint.disabled_at = now
    endpoint.first_failure_at = None
    endpoint.save(
        update_fields=["status", "disabled_reason", "disabled_at", "first_failure_at", "updated_at"]
    )
    Delivery.objects.filter(endpoint=endpoint, status=D.PENDING).update(
        status=D.FAILED, next_attempt_at=None, completed_at=now, error="The webhook endpoint was disabled."
    )
    if notify:
        merchant_notice(
            merchant_id=endpoint.merchant_id,
            type=ENDPOINT_DISABLED,
            payload={"endpoint": endpoint.public_id, "url": endpoint.url, "reason": endpoint.disabled_reason},
        )


# Recovery -----------------------------------------------------------------------------


def deliveries_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Dead-letter deliveries whose last attempt's lease ran out, and re-enqueue the due ones.

    Due means pending with `next_attempt_at` passed: a retry whose time has
    come, or an attempt whose worker died before recording its outcome. At
    most SWEEP_PER_MERCHANT of one merchant's are taken per sweep (their
    sender drains the rest), so one merchant's backlog at a hanging endpoint
    never crowds the others' retries out of the SWEEP_LIMIT.
    """
    now = now or timezone.now()
    dead = Delivery.objects.filter(
        status=D.PENDING, next_attempt_at__lte=now, attempts__gte=F("max_attempts")
    ).update(
        status=D.DEAD,
        next_attempt_at=None,
        completed_at=now,
        error="Dead-lettered: the last attempt never recorded an outcome.",
    )
    rank = Window(RowNumber(), partition_by=[F("merchant_id")], order_by=[F("next_attempt_at"), F("pk")])
    due = list(
        Delivery.objects.filter(status=D.PENDING, next_attempt_at__lte=now)
        .annotate(rank=rank)
        .filter(rank__lte=SWEEP_PER_MERCHANT)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    if len(due) <= SMALL_FANOUT:
        for pk in due:
            enqueue("payments.tasks.delivery_send_task", pk)
    else:
        for i in range(0, len(due), CHUNK):
            enqueue("payments.tasks.deliveries_send_task", due[i : i + CHUNK])
    return {"deliveries": len(due), "deliveries_dead": dead}
