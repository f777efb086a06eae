"""Home (issue 11): figures of today, 7 and 30 days from a rollup the lifecycle core keeps."""

import io

import pytest
from django.db import connection
from django.db.models import Count, Sum
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from payments.models import Payment, PaymentDailyStat
from payments.services.payments import payment_create
from payments.services.refunds import refund_create
from tests.factories import payment_input

pytestmark = pytest.mark.django_db(transaction=True)


def _pay(merchant, n, **kw):
    return [
        payment_create(
            merchant=merchant,
            data=payment_input(
                reference=f"{kw.get('prefix', 'P')}-{i}", **{k: v for k, v in kw.items() if k != "prefix"}
            ),
        )
        for i in range(n)
    ]


def test_the_front_page_is_the_overview_with_its_figures(client, alice, merchant_a, sandbox_wire):
    ok = _pay(merchant_a, 3, amount="10.00")
    _pay(merchant_a, 1, prefix="D", amount="5.00", beneficiary_account="4000000000000002")
    refund_create(payment=ok[0], amount="4.00")
    client.force_login(alice)
    page = client.get(reverse("dashboard:home")).content.decode()
    assert reverse("dashboard:home") == "/"
    assert 'data-currency="USD">30.00 <span class="fs-6">USD' in page
    assert 'id="home-count">4<' in page
    assert 'id="home-success-rate">75.0 %' in page
    assert "card_declined" in page and "4.00 USD" in page
    assert "<svg" in page and 'role="img"' in page  # the charts are drawn on the server
    for window in ("today", "7d", "30d"):
        assert client.get(reverse("dashboard:home"), {"window": window}).status_code == 200


def test_the_rollup_agrees_with_the_payments(merchant_a, sandbox_wire):
    _pay(merchant_a, 4, amount="7.25")
    _pay(merchant_a, 2, prefix="F", beneficiary_account="4000000000000051")
    stats = {
        row["kind"]: (row["n"], row["a"])
        for row in PaymentDailyStat.objects.values("kind").annotate(n=Sum("count"), a=Sum("amount_minor"))
    }
    truth = dict(Payment.objects.values_list("status").annotate(n=Count("id")).order_by())
    assert stats["created"][0] == Payment.objects.count() == 6
    assert stats["succeeded"] == (truth["succeeded"], 4 * 725)
    assert stats["failed"][0] == truth["failed"] == 2
    assert set(PaymentDailyStat.objects.filter(kind="failed").values_list("failure_code", flat=True)) == {
        "insufficient_funds"
    }


def test_the_home_page_never_counts_the_payments(client, alice, merchant_a, sandbox_wire):
    """Its queries do not grow with the payments, and the one on the payments table stops at a limit."""
    client.force_login(alice)
    _pay(merchant_a, 2)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("dashboard:home"))
    _pay(merchant_a, 20, prefix="MORE")
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("dashboard:home"))
    assert len(few) == len(many)
    on_payments = [q["sql"] for q in many if 'FROM "payments_payment"' in q["sql"]]
    assert on_payments and all("LIMIT" in sql for sql in on_payments), on_payments


def _totals() -> dict:
    return {
        (r["day"], r["currency"], r["method"], r["kind"], r["failure_code"]): (r["n"], r["a"])
        for r in PaymentDailyStat.objects.values("day", "currency", "method", "kind", "failure_code")
        .annotate(n=Sum("count"), a=Sum("amount_minor"))
        .order_by()
    }


def test_rebuild_rollup_recomputes_from_the_events_what_the_core_kept(merchant_a, sandbox_wire):
    from django.core.management import call_command

    ok = _pay(merchant_a, 3, amount="12.40")
    _pay(merchant_a, 2, prefix="F", beneficiary_account="4000000000000051")
    refund_create(payment=ok[1], amount="2.40")
    kept = _totals()
    assert kept and any(k[3] == "refunded" for k in kept) and any(k[4] == "insufficient_funds" for k in kept)
    PaymentDailyStat.objects.all().delete()  # as after an upgrade from before the rollup
    call_command("rebuild_rollup", stdout=io.StringIO())
    assert _totals() == kept


def test_home_adds_the_currencies_up_in_the_base_currency_and_flags_stale_rates(
    client, alice, merchant_a, sandbox_wire, monkeypatch
):
    from datetime import date, timedelta
    from pathlib import Path

    from django.utils import timezone

    ecb = Path(__file__).resolve().parents[1] / "data" / "eurofxref-daily.xml"  # USD 1.0512, GBP 0.8304
    call_command_quiet("import_rates", str(ecb))
    merchant_a.base_currency = "EUR"
    merchant_a.allowed_currencies = []
    merchant_a.save()
    _pay(merchant_a, 1, amount="105.12", currency="USD")
    _pay(merchant_a, 1, prefix="E", amount="10.00", currency="EUR")
    client.force_login(alice)
    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: date(2026, 12, 5))
    page = client.get(reverse("dashboard:home"), {"window": "today"}).content.decode()
    assert "≈ 110.00 EUR in all" in page  # 105.12 USD is 100.00 EUR, plus 10.00 EUR
    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: date(2026, 12, 5) + timedelta(days=30))
    page = client.get(reverse("dashboard:home"), {"window": "30d"}).content.decode()
    assert "in all" not in page and "No total in EUR: a reference rate is missing or older than" in page


def call_command_quiet(*args):
    from django.core.management import call_command

    call_command(*args, stdout=io.StringIO())
