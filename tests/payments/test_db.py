"""insert_rows writes what save() would, sets primary keys, and writes nothing when a row is refused."""

import pytest
from django.db import IntegrityError, transaction

from payments.db import insert_rows
from payments.models import Event, Payment
from tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def test_rows_get_their_keys_generated_ids_and_timestamps(merchant_a):
    payment = PaymentFactory(merchant=merchant_a)
    events = [
        Event(merchant=merchant_a, payment=payment, type="payment.created", data={"n": 1}, actor="system"),
        Event(merchant=merchant_a, payment=payment, type="payment.processing", data={"n": 2}),
    ]
    with transaction.atomic():
        insert_rows(events)
    assert all(e.pk and not e._state.adding for e in events)
    stored = list(Event.objects.filter(pk__in=[e.pk for e in events]).order_by("pk"))
    assert [(e.public_id, e.type, e.data, e.actor) for e in stored] == [
        (e.public_id, e.type, e.data, e.actor) for e in events
    ]
    assert all(e.public_id.startswith("evt_") and e.created_at is not None for e in stored)


def test_a_refused_row_writes_none_of_them(merchant_a):
    taken = PaymentFactory(merchant=merchant_a, reference="TAKEN")
    rows = [
        Payment(merchant=merchant_a, reference="FREE", amount_minor=100, currency="USD", method="card"),
        Payment(
            merchant=merchant_a, reference=taken.reference, amount_minor=100, currency="USD", method="card"
        ),
    ]
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(rows)
    assert not Payment.objects.filter(reference="FREE").exists()


def test_nothing_to_insert_is_no_statement(django_assert_num_queries):
    with django_assert_num_queries(0):
        insert_rows([])


# Each hand-built read against the ORM code it replaces ------------------------------------------


def test_recent_figures_match_the_orm_aggregate(merchant_a, merchant_b):
    from datetime import timedelta

    from django.db.models import Avg, Case, Count, When
    from django.utils import timezone

    from merchants.crypto import field_hash
    from payments.db import recent_figures

    for i, (amount, currency, account) in enumerate(
        [(1000, "USD", "A1"), (3000, "USD", "A2"), (500, "EUR", "A1"), (7000, "USD", "A1")]
    ):
        PaymentFactory(
            merchant=merchant_a,
            reference=f"F{i}",
            amount_minor=amount,
            currency=currency,
            beneficiary_account=account,
        )
    PaymentFactory(merchant=merchant_b, reference="OTHER", amount_minor=99999, beneficiary_account="A1")
    newest = Payment.objects.filter(merchant=merchant_a).order_by("-created_at", "-id").first()
    since = timezone.now() - timedelta(hours=1)
    for exclude, limit in ((None, 200), (newest.pk, 200), (None, 2)):
        recent = Payment.objects.filter(merchant_id=merchant_a.pk)
        if exclude is not None:
            recent = recent.exclude(pk=exclude)
        orm = recent.order_by("-created_at", "-id")[:limit].aggregate(
            usual=Avg(Case(When(currency="USD", then="amount_minor"))),
            known=Count(Case(When(beneficiary_account_hash=field_hash("A1"), then=1))),
            last_hour=Count(Case(When(created_at__gte=since, then=1))),
        )
        usual, known, last_hour = recent_figures(
            Payment,
            merchant_id=merchant_a.pk,
            exclude_pk=exclude,
            currency="USD",
            account_hash=field_hash("A1"),
            since=since,
            limit=limit,
        )
        assert (float(usual), known, last_hour) == (float(orm["usual"]), orm["known"], orm["last_hour"])


def test_fanout_rows_match_the_two_querysets(merchant_a, merchant_b):
    from merchants.models import NotificationPreference, WebhookEndpoint
    from payments.db import fanout_rows

    def endpoint(merchant, url, status="enabled", events=()):
        return WebhookEndpoint.objects.create(
            merchant=merchant, url=url, status=status, events=list(events), secret_encrypted="x"
        )

    endpoint(merchant_a, "https://a.example/1", events=["payment.succeeded"])
    endpoint(merchant_a, "https://a.example/2", status="disabled")
    endpoint(merchant_b, "https://b.example/1")
    NotificationPreference.objects.create(merchant=merchant_a, channel="email", recipients=["x@a.example"])
    NotificationPreference.objects.create(merchant=merchant_a, channel="sms", enabled=False)
    NotificationPreference.objects.create(merchant=merchant_b, channel="inapp", events=["refund.failed"])
    ids = [merchant_a.pk, merchant_b.pk]
    rows = fanout_rows(WebhookEndpoint, NotificationPreference, merchant_ids=ids, endpoint_status="enabled")
    endpoints = WebhookEndpoint.objects.filter(merchant_id__in=ids, status="enabled").order_by("pk")
    prefs = NotificationPreference.objects.filter(merchant_id__in=ids, enabled=True).order_by("pk")
    assert rows == [("", e.pk, e.merchant_id, e.url, e.events, None) for e in endpoints] + [
        (p.channel, p.pk, p.merchant_id, "", p.events, p.recipients) for p in prefs
    ]
    assert fanout_rows(WebhookEndpoint, NotificationPreference, merchant_ids=[], endpoint_status="x") == []


def test_first_joined_matches_select_related(merchant_a, key_a):
    from merchants.models import ApiKey
    from payments.db import first_joined

    prefix = key_a.split("_")[1]
    orm = ApiKey.objects.select_related("merchant").filter(prefix=prefix).order_by("pk").first()
    ours = first_joined(ApiKey, "merchant", field="prefix", value=prefix)
    assert [getattr(ours, f.attname) for f in ApiKey._meta.concrete_fields] == [
        getattr(orm, f.attname) for f in ApiKey._meta.concrete_fields
    ]
    assert ours.merchant == orm.merchant and ours.merchant.name == "Merchant A"
    assert ours.scopes == orm.scopes and ours.created_at == orm.created_at
    assert first_joined(ApiKey, "merchant", field="prefix", value="000000000000") is None


def test_insert_with_children_writes_what_save_and_bulk_create_would(merchant_a):
    from payments.db import insert_with_children
    from payments.models import SandboxNotice, SandboxOperation

    def make(key):
        op = SandboxOperation(
            key=key,
            kind="payment",
            gateway_reference=f"sbx_{key}",
            amount_minor=100,
            currency="USD",
            answer={"a": 1},
        )
        notices = [
            SandboxNotice(
                seq=i, event_id=f"sbxevt_{key}_{i}", type="payment.succeeded", data={"i": i}, due_at=op_due
            )
            for i in range(2)
        ]
        return op, notices

    from django.utils import timezone

    op_due = timezone.now()
    op, notices = make("k1")
    with transaction.atomic():
        insert_with_children(op, notices, "operation")
    stored = SandboxOperation.objects.get(key="k1")
    assert stored.pk == op.pk and stored.answer == {"a": 1} and stored.created_at is not None
    assert list(stored.notices.order_by("seq").values_list("seq", "event_id", "data")) == [
        (0, "sbxevt_k1_0", {"i": 0}),
        (1, "sbxevt_k1_1", {"i": 1}),
    ]
    again, more = make("k1")  # the same key: refused, nothing written
    more[0].event_id, more[1].event_id = "new-0", "new-1"
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_with_children(again, more, "operation")
    assert SandboxNotice.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_pooled_connection_goes_back_to_its_pool_for_a_gateway_wait():
    """PAYDESK_DB_POOL: the thread holds no connection while it waits; the next statement borrows one."""
    from django.db import connections
    from django.db.utils import ConnectionHandler

    from payments.db import connection_released

    params = dict(connections["default"].settings_dict)
    params.update(CONN_MAX_AGE=0, CONN_HEALTH_CHECKS=False)
    # One connection in the pool: borrowing again succeeds only if the first one went back.
    params["OPTIONS"] = {**params.get("OPTIONS", {}), "pool": {"min_size": 1, "max_size": 1, "timeout": 3}}
    handler = ConnectionHandler({"default": params})
    conn = handler["default"]
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
        raw = conn.connection
        assert raw is not None
        connection_released(conn)
        assert conn.connection is None
        assert not raw.closed  # back in the pool, not closed
        with conn.pool.connection(timeout=3) as borrowed:
            assert borrowed is raw
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
    finally:
        conn.close()
        conn.close_pool()


def test_without_a_pool_the_connection_is_kept(db):
    from django.db import connection

    from payments.db import connection_released

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    held = connection.connection
    connection_released()
    assert connection.connection is held
