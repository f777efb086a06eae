"""Reconciliation queries a gateway once its fitted C(r) passes 0.95, not at a fixed query_after."""

from __future__ import annotations

import math

import pytest
from django.core.cache import cache

from payments.models import PaymentStatus, TimingModel
from payments.tasks import reconcile_task
from tests.gateways.test_reconcile import alipay_payment, queries

pytestmark = [pytest.mark.usefixtures("routes"), pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def answer_paid(fake):
    fake.answers["alipay.trade.query"] = lambda biz: {
        "code": "10000",
        "msg": "Success",
        "out_trade_no": biz["out_trade_no"],
        "trade_no": "2026010522001400000000000011",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "88.88",
    }


def test_reconciliation_queries_once_the_fitted_c_passes_095(
    merchant_a, alipay_account, fake_alipay, clock, settings
):
    settings.PAYDESK_RECONCILE_QUERY_MIN = 10
    # Fitted: alipay's callbacks arrive around 20 s, 95 % by 20 + ln(19) / 0.5 = 25.9 s (query_after: 120 s).
    TimingModel.objects.create(
        kind="callback", subject="alipay", k=0.5, theta=20.0, samples=500, positives=480, log_likelihood=0
    )
    payment = alipay_payment(merchant_a, fake_alipay)
    answer_paid(fake_alipay)
    assert 20 + math.log(19) / 0.5 == pytest.approx(25.89, abs=0.01)

    clock(seconds=25)
    assert reconcile_task()["alipay"] == 0
    assert queries(fake_alipay) == []

    clock(seconds=27)
    assert reconcile_task()["alipay"] == 1
    assert len(queries(fake_alipay)) == 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


def test_without_a_fitted_c_the_fixed_query_after_still_holds(merchant_a, alipay_account, fake_alipay, clock):
    alipay_payment(merchant_a, fake_alipay)
    answer_paid(fake_alipay)
    clock(seconds=27)
    assert reconcile_task()["alipay"] == 0
    clock(seconds=121)
    assert reconcile_task()["alipay"] == 1
