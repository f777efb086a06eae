"""Alipay transfers (alipay.fund.trans.uni.transfer) in certificate mode, checked with Alipay's own SDK."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from alipay.aop.api.domain.AlipayFundTransUniTransferModel import AlipayFundTransUniTransferModel
from alipay.aop.api.domain.Participant import Participant
from django.test import Client

from merchants.crypto import alipay_cert_sn, alipay_root_cert_sn
from merchants.models import GatewayAccount
from payments.models import BatchRowError, GatewayCallback, Payment
from payments.services.batches.lifecycle import batch_approve
from payments.services.reconcile import payment_reconcile
from tests.gateways.conftest import ALIPAY_APP_ID
from tests.gateways.vendors import alipay_certificates, alipay_sign, documented_cert_sn
from tests.payments.test_batch_support import csv_bytes, media, upload  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media")]


@pytest.fixture(scope="module")
def certs(keys):
    return alipay_certificates(keys["alipay_app"], keys["alipay"])


@pytest.fixture(autouse=True)
def transfer_route(settings):
    settings.PAYDESK_PAYOUT_ROUTES = {**settings.PAYDESK_PAYOUT_ROUTES, "alipay": "alipay_transfer"}


@pytest.fixture
def transfer_account(merchant_a, keys, certs):
    return GatewayAccount.objects.create(
        merchant=merchant_a,
        gateway="alipay_transfer",
        app_id=ALIPAY_APP_ID,
        private_key=keys["alipay_app"].private_pkcs1_b64,
        app_certificate=certs.app_certificate,
        root_certificate=certs.root_chain,
        public_keys={documented_cert_sn(certs.alipay_certificate): certs.alipay_certificate},
    )


@pytest.fixture
def fake(fake_alipay, certs):
    root_sn = documented_cert_sn(
        certs.root_chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    )
    fake_alipay.cert_sns = (documented_cert_sn(certs.app_certificate), root_sn)
    fake_alipay.alipay_cert_sn = documented_cert_sn(certs.alipay_certificate)
    return fake_alipay


def sdk_biz(key: str, amount: str, account: str, kind: str, name: str, title: str, remark: str) -> dict:
    """The biz_content Alipay's own SDK builds for the same transfer."""
    model = AlipayFundTransUniTransferModel()
    model.out_biz_no, model.trans_amount = key, amount
    model.product_code, model.biz_scene = "TRANS_ACCOUNT_NO_PWD", "DIRECT_TRANSFER"
    model.order_title, model.remark = title, remark
    payee = Participant()
    payee.identity, payee.identity_type, payee.name = account, kind, name
    model.payee_info = payee
    return model.to_alipay_dict()


def transfer_answer(biz: dict) -> dict:
    if biz["payee_info"]["name"] == "Wrong Name":
        return {
            "code": "40004",
            "msg": "Business Failed",
            "sub_code": "PAYEE_USER_INFO_ERROR",
            "sub_msg": "名字不符",
        }
    status = "DEALING" if biz["trans_amount"] == "300.00" else "SUCCESS"
    return {
        "code": "10000",
        "msg": "Success",
        "out_biz_no": biz["out_biz_no"],
        "order_id": "20260105110070000006" + biz["out_biz_no"][-4:],
        "pay_fund_order_id": "20260105110070001506",
        "status": status,
        "trans_date": "2026-01-05 10:00:00",
    }


def notification(keys, biz: dict, notify_id: str, key=None) -> bytes:
    params = {
        "notify_id": notify_id,
        "utc_timestamp": "1767578400000",
        "msg_method": "alipay.fund.trans.order.changed",
        "app_id": ALIPAY_APP_ID,
        "version": "1.1",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "biz_content": json.dumps(biz, separators=(",", ":")),
    }
    params["sign"] = alipay_sign(key or keys["alipay"], params)
    return urlencode(params).encode()


def post(body: bytes):
    return Client().post(
        "/callbacks/alipay_transfer/",
        data=body,
        content_type="application/x-www-form-urlencoded; charset=utf-8",
    )


def test_certificate_sns_follow_alipays_rule_and_skip_non_rsa_roots(certs):
    assert alipay_cert_sn(certs.app_certificate) == documented_cert_sn(certs.app_certificate)
    first_root = certs.root_chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    assert alipay_root_cert_sn(certs.root_chain) == documented_cert_sn(first_root)  # the EC root is left out


def test_a_batch_transfers_to_alipay_accounts_checking_real_names(
    merchant_a, alice, carol, transfer_account, fake, keys, django_capture_on_commit_callbacks
):
    fake.answers["alipay.fund.trans.uni.transfer"] = transfer_answer
    data = csv_bytes(
        [
            ("AT-1", "100.00", "CNY", "alipay", "张三", "zhangsan@example.com"),
            ("AT-2", "200.00", "CNY", "alipay", "Wrong Name", "13800138000"),
            ("AT-3", "300.00", "CNY", "alipay", "李四", "2088102177846880"),
        ]
    )
    batch = upload(merchant_a, data, user=alice, capture=django_capture_on_commit_callbacks)
    assert batch.valid_count == 3
    with django_capture_on_commit_callbacks(execute=True):
        batch_approve(batch=batch, user=carol)

    sent = {r["biz"]["remark"]: r for r in fake.requests}
    ann = Payment.objects.get(reference="AT-1")
    assert sent["AT-1"]["method"] == "alipay.fund.trans.uni.transfer"
    assert sent["AT-1"]["notify_url"] == "https://paydesk.example/callbacks/alipay_transfer/"
    assert sent["AT-1"]["biz"] == sdk_biz(
        f"{ann.public_id}-1", "100.00", "zhangsan@example.com", "ALIPAY_LOGON_ID", "张三", "AT-1", "AT-1"
    )
    assert sent["AT-3"]["biz"]["payee_info"] == {
        "identity": "2088102177846880",
        "identity_type": "ALIPAY_USER_ID",
        "name": "李四",
    }
    states = {p.reference: (p.status, p.failure_code) for p in Payment.objects.filter(batch=batch)}
    assert states == {
        "AT-1": ("succeeded", ""),
        "AT-2": ("failed", "payee_user_info_error"),
        "AT-3": ("processing", ""),
    }

    key = f"{Payment.objects.get(reference='AT-3').public_id}-1"
    forged = notification(
        keys, {"out_biz_no": key, "status": "SUCCESS", "trans_amount": "300.00"}, "N0", keys["intruder"]
    )
    assert post(forged).status_code == 400
    assert GatewayCallback.objects.get(status="rejected").reason == "signature mismatch"
    with django_capture_on_commit_callbacks(execute=True):
        body = notification(
            keys, {"out_biz_no": key, "order_id": "O3", "status": "SUCCESS", "trans_amount": "300.00"}, "N1"
        )
        assert post(body).content == b"success"
    assert Payment.objects.get(reference="AT-3").status == "succeeded"
    with django_capture_on_commit_callbacks(execute=True):
        body = notification(keys, {"out_biz_no": key, "status": "REFUND", "trans_amount": "300.00"}, "N2")
        post(body)
    returned = Payment.objects.get(reference="AT-3")
    assert (returned.status, returned.failure_code) == ("reversed", "refund")
    assert batch.__class__.objects.get(pk=batch.pk).status == "completed"


def test_reconciliation_asks_the_common_query_and_applies_a_failure(
    merchant_a, alice, carol, transfer_account, fake, keys, django_capture_on_commit_callbacks
):
    fake.answers["alipay.fund.trans.uni.transfer"] = transfer_answer
    batch = upload(
        merchant_a,
        csv_bytes([("AQ-1", "300.00", "CNY", "alipay", "王五", "wangwu@example.com")]),
        user=alice,
        capture=django_capture_on_commit_callbacks,
    )
    with django_capture_on_commit_callbacks(execute=True):
        batch_approve(batch=batch, user=carol)
    payment = Payment.objects.get(reference="AQ-1")
    fake.answers["alipay.fund.trans.common.query"] = lambda biz: {
        "code": "10000",
        "msg": "Success",
        "out_biz_no": biz["out_biz_no"],
        "order_id": "O-Q",
        "status": "FAIL",
        "trans_amount": "300.00",
        "error_code": "PAYEE_ACCOUNT_STATUS_ERROR",
        "fail_reason": "收款账户状态异常",
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert payment_reconcile(payment_id=payment.pk, force=True) == "applied payment.failed"
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("failed", "payee_account_status_error")
    query = fake.requests[-1]
    assert query["method"] == "alipay.fund.trans.common.query"
    assert query["biz"] == {
        "out_biz_no": f"{payment.public_id}-1",
        "product_code": "TRANS_ACCOUNT_NO_PWD",
        "biz_scene": "DIRECT_TRANSFER",
    }


def test_an_answer_signed_by_an_unknown_certificate_leaves_the_transfer_pending(
    merchant_a, alice, carol, transfer_account, fake, django_capture_on_commit_callbacks, caplog
):
    fake.answers["alipay.fund.trans.uni.transfer"] = transfer_answer
    fake.alipay_cert_sn = "0" * 32
    batch = upload(
        merchant_a,
        csv_bytes([("AU-1", "100.00", "CNY", "alipay", "张三", "zhangsan@example.com")]),
        user=alice,
        capture=django_capture_on_commit_callbacks,
    )
    with django_capture_on_commit_callbacks(execute=True):
        batch_approve(batch=batch, user=carol)
    payment = Payment.objects.get(reference="AU-1")
    attempt = payment.attempts.get()
    assert (payment.status, attempt.status) == ("processing", "pending")
    assert "signed with unknown certificate" in caplog.text  # asked again later with the same out_biz_no


def test_rows_alipay_cannot_pay_are_row_errors(
    merchant_a, alice, transfer_account, django_capture_on_commit_callbacks
):
    data = csv_bytes(
        [
            ("AR-1", "10.00", "USD", "alipay", "Ann", "ann@example.com"),
            ("AR-2", "10.00", "CNY", "alipay", "Bo", "not-an-account"),
        ]
    )
    batch = upload(merchant_a, data, user=alice, capture=django_capture_on_commit_callbacks)
    codes = list(BatchRowError.objects.filter(batch=batch).order_by("line").values_list("line", "code"))
    assert codes == [(2, "currency_not_supported"), (3, "invalid_alipay_account")]
