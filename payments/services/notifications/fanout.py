"""Fan-out: every Event becomes Delivery rows, in the transaction that writes the Event.

Who an Event goes to is a merchant's enabled webhook endpoints and
notification preferences, read on every state change from one query whose
SQL is built once per number of merchants (payments/db.py), plus the members
who opted in to e-mail for the event's topic (their personal settings, a
second query). Operational
notices (an endpoint disabled) and beneficiaries' "you have been paid"
notices are Deliveries too, so sending, retries and recovery are the same
for all of them (sending.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from merchants.models import Membership, Merchant, NotificationPreference, WebhookEndpoint
from payments.channels import get_transport
from payments.channels.messages import BENEFICIARY_PAID, delivery_topic
from payments.channels.sms import is_phone_number
from payments.db import fanout_rows
from payments.models import Channel, Delivery, Event, Payment, PaymentStatus
from payments.queue import enqueue_on_commit

# Up to this many deliveries get a task each; more are sent in chunks.
SMALL_FANOUT = 20
CHUNK = 100


def fanout_targets(
    merchant_ids: list[int],
) -> tuple[dict[int, list[WebhookEndpoint]], dict[int, list[NotificationPreference]]]:
    """The merchants' enabled webhook endpoints and enabled preferences, in one query (payments/db.py).

    Read on every state change, inside the changing transaction. Rows come back
    as unsaved model instances carrying only what the fan-out needs (never an
    endpoint's secret).
    """
    endpoints: dict[int, list[WebhookEndpoint]] = defaultdict(list)
    prefs: dict[int, list[NotificationPreference]] = defaultdict(list)
    rows = fanout_rows(
        WebhookEndpoint,
        NotificationPreference,
        merchant_ids=merchant_ids,
        endpoint_status=WebhookEndpoint.Status.ENABLED,
    )
    for kind, pk, merchant_id, url, events, recipients in rows:
        if kind == "":
            endpoints[merchant_id].append(
                WebhookEndpoint(pk=pk, merchant_id=merchant_id, url=url, events=events)
            )
        else:
            prefs[merchant_id].append(
                NotificationPreference(
                    pk=pk, merchant_id=merchant_id, channel=kind, events=events, recipients=recipients
                )
            )
    return endpoints, prefs


# Deliveries ------------------------------------------------------------------------------


def new_delivery(
    *,
    merchant_id: int,
    type: str,
    channel: str,
    event: Event | None = None,
    endpoint: WebhookEndpoint | None = None,
    endpoint_id: int | None = None,
    recipient: str = "",
    payload: dict | None = None,
    now: datetime | None = None,
) -> Delivery:
    """Return an unsaved Delivery due now, its attempt budget taken from the channel's schedule."""
    return Delivery(
        merchant_id=merchant_id,
        event=event,
        type=type,
        channel=channel,
        endpoint_id=endpoint.pk if endpoint is not None else endpoint_id,
        recipient=recipient[:2000],
        payload=payload or {},
        max_attempts=get_transport(channel).max_attempts,
        next_attempt_at=now or timezone.now(),
    )


def _owner_emails(merchant_ids: Iterable[int]) -> dict[int, list[str]]:
    emails: dict[int, list[str]] = defaultdict(list)
    owners = Membership.objects.filter(merchant_id__in=merchant_ids, role=Membership.Role.OWNER).exclude(
        user__email=""
    )
    for merchant_id, email in owners.values_list("merchant_id", "user__email").order_by("pk"):
        emails[merchant_id].append(email)
    return emails


def _member_email_choices(merchant_ids: Iterable[int]) -> dict[int, list[Membership]]:
    """Members who saved personal settings and have an address, by merchant (one query)."""
    members: dict[int, list[Membership]] = defaultdict(list)
    rows = (
        Membership.objects.filter(merchant_id__in=merchant_ids)
        .exclude(notifications={})
        .exclude(user__email="")
        .select_related("user")
        .only("merchant_id", "notifications", "user__email")
        .order_by("pk")
    )
    for member in rows:
        members[member.merchant_id].append(member)
    return members


def deliveries_for_events(events: Sequence[Event]) -> list[Delivery]:
    """Create the Delivery rows of saved `events` and enqueue their sending on commit.

    Call it inside the transaction that wrote the events, so an event and its
    deliveries commit together. Set-based for batches: one query for the
    merchants' enabled webhook endpoints, one for their notification
    preferences, one for owners' emails if a preference needs them, then
    `bulk_create` (the events must have primary keys, which `bulk_create`
    returns on PostgreSQL and SQLite). Sending is enqueued on commit, one task
    per delivery for a few, chunks of CHUNK for more; the sweeper sends
    whatever a lost hook leaves behind.
    """
    events = list(events)
    if not events:
        return []
    if any(e.pk is None for e in events):
        raise ValueError("deliveries_for_events needs saved events (with primary keys).")
    merchant_ids = sorted({e.merchant_id for e in events})
    endpoints, prefs = fanout_targets(merchant_ids)
    needs_owners = {
        p.merchant_id for ps in prefs.values() for p in ps if p.channel == Channel.EMAIL and not p.recipients
    }
    owners = _owner_emails(needs_owners) if needs_owners else {}
    # Members who opted in to e-mail for a topic get it too (merchants.Membership.wants; off by default).
    opted_in = _member_email_choices(merchant_ids)

    now = timezone.now()
    rows: list[Delivery] = []
    for event in events:
        m = event.merchant_id
        targets: list[tuple[str, str, int | None]] = [
            (Channel.WEBHOOK, endpoint.url, endpoint.pk)
            for endpoint in endpoints.get(m, ())
            if endpoint.subscribes_to(event.type)
        ]
        for pref in prefs.get(m, ()):
            if not pref.subscribes_to(event.type):
                continue
            if pref.channel == Channel.INAPP:
                targets.append((Channel.INAPP, "", None))
            elif pref.channel == Channel.EMAIL:
                targets.extend((Channel.EMAIL, a, None) for a in pref.recipients or owners.get(m, []))
            elif pref.channel == Channel.SMS:
                targets.extend((Channel.SMS, number, None) for number in pref.recipients)
        topic = delivery_topic(event.type)
        if topic is not None and opted_in.get(m):
            addressed = {r.lower() for c, r, _e in targets if c == Channel.EMAIL}
            for member in opted_in[m]:
                if member.wants(topic, "email") and member.user.email.lower() not in addressed:
                    addressed.add(member.user.email.lower())
                    targets.append((Channel.EMAIL, member.user.email, None))
        rows.extend(
            new_delivery(
                merchant_id=m,
                type=event.type,
                channel=channel,
                event=event,
                endpoint_id=endpoint_id,
                recipient=recipient,
                now=now,
            )
            for channel, recipient, endpoint_id in targets
        )
    if not rows:
        return []
    created = Delivery.objects.bulk_create(rows, batch_size=1000)
    enqueue_sending([d.pk for d in created])
    return created


def enqueue_sending(delivery_ids: list[int]) -> None:
    """Enqueue, on commit, the sending of these deliveries."""
    if len(delivery_ids) <= SMALL_FANOUT:
        for pk in delivery_ids:
            enqueue_on_commit("payments.tasks.delivery_send_task", pk)
        return
    for i in range(0, len(delivery_ids), CHUNK):
        enqueue_on_commit("payments.tasks.deliveries_send_task", delivery_ids[i : i + CHUNK])


def merchant_notice(*, merchant_id: int, type: str, payload: dict) -> list[Delivery]:
    """Tell a merchant's owners by email and every member in-app, whatever the merchant's preferences.

    Used for operational notices (an endpoint disabled); call inside a transaction.
    A member who turned the notice's topic off in-app does not see it (inapp.py);
    one who opted in to its e-mail gets it as the owners do.
    """
    now = timezone.now()
    rows = [new_delivery(merchant_id=merchant_id, type=type, channel=Channel.INAPP, payload=payload, now=now)]
    addresses = list(_owner_emails([merchant_id]).get(merchant_id, []))
    topic = delivery_topic(type)
    if topic is not None:
        known = {a.lower() for a in addresses}
        for member in _member_email_choices([merchant_id]).get(merchant_id, []):
            if member.wants(topic, "email") and member.user.email.lower() not in known:
                known.add(member.user.email.lower())
                addresses.append(member.user.email)
    for address in addresses:
        rows.append(
            new_delivery(
                merchant_id=merchant_id,
                type=type,
                channel=Channel.EMAIL,
                recipient=address,
                payload=payload,
                now=now,
            )
        )
    created = Delivery.objects.bulk_create(rows)
    enqueue_sending([d.pk for d in created])
    return created


def beneficiary_notices(
    payments: Iterable[Payment], *, channels: Sequence[str] = (Channel.EMAIL, Channel.SMS)
) -> list[Delivery]:
    """Queue "you have been paid" notices to the beneficiaries of succeeded payments.

    For batches: the batch service calls it with the payments of a batch (or a
    chunk) whose merchant opted in. One Delivery per payment and channel, for
    beneficiaries with an email address (email) or an E.164 phone number (sms);
    other payments, and payments not succeeded, are skipped. The rows are
    written with `bulk_create` inside the caller's transaction if there is one,
    and sent on commit by chunk tasks, each over one connection per channel
    (one SMTP session, one SMS provider session), not one per message.
    Retries and recovery are those of every Delivery.
    """
    payments = [p for p in payments if p.status == PaymentStatus.SUCCEEDED]
    names = dict(Merchant.objects.filter(pk__in={p.merchant_id for p in payments}).values_list("pk", "name"))
    now = timezone.now()
    rows: list[Delivery] = []
    for payment in payments:
        payload = {
            "payment": payment.public_id,
            "merchant": names[payment.merchant_id],
            "reference": payment.reference,
            "amount": payment.amount,
            "currency": payment.currency,
            "beneficiary_name": payment.beneficiary_name,
            "description": payment.description,
        }
        targets = []
        if Channel.EMAIL in channels and payment.beneficiary_email:
            targets.append((Channel.EMAIL, payment.beneficiary_email))
        phone = "".join(c for c in payment.beneficiary_phone if c in "+0123456789")
        if Channel.SMS in channels and is_phone_number(phone):
            targets.append((Channel.SMS, phone))
        rows.extend(
            new_delivery(
                merchant_id=payment.merchant_id,
                type=BENEFICIARY_PAID,
                channel=channel,
                recipient=recipient,
                payload=payload,
                now=now,
            )
            for channel, recipient in targets
        )
    with transaction.atomic():
        created = Delivery.objects.bulk_create(rows, batch_size=1000)
        ids = [d.pk for d in created]
        for i in range(0, len(ids), CHUNK):
            enqueue_on_commit("payments.tasks.deliveries_send_task", ids[i : i + CHUNK])
    return created
