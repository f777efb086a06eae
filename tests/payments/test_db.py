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
