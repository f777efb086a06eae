"""Payment lists page through millions of rows without counting them all (payments/views/pagination.py)."""

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from payments import selectors
from payments.models import Payment, PaymentBatch
from payments.views.pagination import WindowPaginator
from tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_window(monkeypatch):
    """Count at most 50 rows past the requested page, so 120 payments are "more than counted"."""
    monkeypatch.setattr(WindowPaginator, "count_ahead", 50)


@pytest.fixture
def payments_120(merchant_a):
    return PaymentFactory.create_batch(120, merchant=merchant_a)


def refs(response) -> list[str]:
    return [p.reference for p in response.context["page"].object_list]


def newest_first(payments) -> list[str]:
    return [p.reference for p in sorted(payments, key=lambda p: (p.created_at, p.pk), reverse=True)]


def test_the_first_page_counts_a_window_and_shows_the_page_count_as_a_lower_bound(
    client, alice, payments_120, small_window
):
    client.force_login(alice)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("dashboard:payment_list"))
    page = response.context["page"]
    assert refs(response) == newest_first(payments_120)[:25]
    # 51 of 120 counted: at least 3 pages.
    assert (page.paginator.count, page.paginator.count_is_exact, page.has_next()) == (51, False, True)
    counts = [
        q["sql"]
        for q in queries.captured_queries
        if "COUNT(*)" in q["sql"] and "payments_payment" in q["sql"]
    ]
    assert len(counts) == 1 and "LIMIT 51" in counts[0]
    html = response.content.decode()
    assert "1 / 3+" in html and 'href="?page=2"' in html


def test_pages_past_the_counted_window_show_the_right_rows(client, alice, payments_120, small_window):
    client.force_login(alice)
    expected = newest_first(payments_120)
    response = client.get(reverse("dashboard:payment_list"), {"page": 4})
    page = response.context["page"]
    assert refs(response) == expected[75:100]
    # The window from row 76 holds the end: the count is exact again.
    assert (page.paginator.count, page.paginator.count_is_exact, page.has_next()) == (120, True, True)
    assert "4 / 5<" in response.content.decode()
    last = client.get(reverse("dashboard:payment_list"), {"page": 5})
    assert refs(last) == expected[100:] and not last.context["page"].has_next()


def test_a_page_past_the_end_lands_on_the_last_page(client, alice, payments_120, small_window):
    client.force_login(alice)
    for number in ("999", "1000000000000"):
        response = client.get(reverse("dashboard:payment_list"), {"page": number})
        assert response.context["page"].number == 5
        assert refs(response) == newest_first(payments_120)[100:]


def test_a_filter_with_few_matches_counts_exactly(client, alice, merchant_a, payments_120, small_window):
    PaymentFactory.create_batch(3, merchant=merchant_a, currency="EUR")
    client.force_login(alice)
    page = client.get(reverse("dashboard:payment_list"), {"currency": "EUR"}).context["page"]
    assert (page.paginator.count, page.paginator.count_is_exact, page.paginator.num_pages) == (3, True, 1)


@pytest.mark.parametrize("count_ahead", [10, 25, 37, 1000])
@pytest.mark.parametrize("orphans", [0, 4])
def test_every_page_holds_the_same_rows_as_with_djangos_paginator(merchant_a, count_ahead, orphans):
    PaymentFactory.create_batch(103, merchant=merchant_a)
    qs = selectors.payment_list(merchant=merchant_a)
    reference = Paginator(qs, 10, orphans=orphans)
    for number in [*reference.page_range, reference.num_pages + 3]:
        paginator = WindowPaginator(qs, 10, orphans=orphans)
        paginator.count_ahead = count_ahead
        ours, theirs = paginator.get_page(number), reference.get_page(number)
        assert [p.pk for p in ours] == [p.pk for p in theirs]
        assert (ours.number, ours.has_next(), ours.has_previous()) == (
            theirs.number,
            theirs.has_next(),
            theirs.has_previous(),
        )
        assert ours.start_index() == theirs.start_index()


def test_the_batch_payments_page_lists_that_batch_in_file_order(client, alice, merchant_a, merchant_b):
    batch, other = (PaymentBatch.objects.create(merchant=merchant_a) for _ in range(2))
    mine = [PaymentFactory(merchant=merchant_a, batch=batch) for _ in range(3)]
    PaymentFactory(merchant=merchant_a, batch=other)
    PaymentFactory(merchant=merchant_a)
    client.force_login(alice)
    response = client.get(reverse("dashboard:batch_payments", args=[batch.public_id]))
    assert refs(response) == [p.reference for p in sorted(mine, key=lambda p: p.pk)]
    assert Payment.objects.filter(merchant=merchant_a).count() == 5
