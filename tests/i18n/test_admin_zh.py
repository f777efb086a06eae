"""The Django admin in Chinese: PayDesk's models and actions by their Chinese names."""

import pytest
from django.test import Client

from tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def test_the_admin_lists_models_and_actions_in_chinese(admin_user):
    PaymentFactory()
    client = Client(headers={"accept-language": "zh-Hans"})
    client.force_login(admin_user)
    index = client.get("/admin/").content.decode()
    for name in ("付款", "退款", "付款批次", "商户", "事件", "网关回调"):
        assert f">{name}<" in index, name
    payments = client.get("/admin/payments/payment/").content.decode()
    assert "放行已挂起的付款并提交" in payments and "审核后拒绝已挂起的付款" in payments
