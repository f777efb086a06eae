"""Gateway fixtures: keys generated per test session, merchant accounts, fake provider servers."""

from __future__ import annotations

import pytest

from merchants.models import GatewayAccount
from payments.gateways import paypal
from tests.gateways.vendors import FakeAlipay, FakePayPal, FakeWeChatPay, make_keypair

ALIPAY_APP_ID = "2021000000000001"
WECHAT_APPID = "wxd678efh567hg6787"
WECHAT_MCHID = "1230000109"
WECHAT_MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
WECHAT_PLATFORM_SERIAL = "PUB_KEY_ID_0112300001092026010500000000001"
WECHAT_APIV3_KEY = "a7cde1ZJB1kG2e7VfTs3jQzaAa6Q2xq4"
PAYPAL_CLIENT_ID = "AYSq3RDGsmBLJE-otTkBtM-jBRd1TCQwFf9RGfwddNXWz0uFU9ztymylOhRS"
PAYPAL_SECRET = "EGnHDxD_qRPdaLdZz8iCr8N7_MzF-YHPTkjs6NKYQvQSBngp4PTTVWkPZRbL"
PAYPAL_WEBHOOK_ID = "1JE4291016473214C"


@pytest.fixture(scope="session")
def keys():
    """RSA key pairs for every party, generated once per run (never shipped in the repo)."""
    return {
        name: make_keypair()
        for name in ("alipay_app", "alipay", "wechat_merchant", "wechat_platform", "paypal", "intruder")
    }


@pytest.fixture
def gateway_urls(settings, httpserver):
    url = httpserver.url_for("").rstrip("/")
    settings.PAYDESK_GATEWAY_URLS = {
        "alipay": {"sandbox": url + "/gateway.do", "live": url + "/gateway.do"},
        "wechat_pay": {"sandbox": url, "live": url},
        "paypal": {"sandbox": url, "live": url},
    }
    settings.PAYDESK_PUBLIC_URL = "https://paydesk.example"
    settings.PAYDESK_PAYPAL_RETURN_URL = "https://paydesk.example/"
    return url


@pytest.fixture
def routes(settings):
    """Route each wallet method to its real gateway (the sandbox keeps the others)."""
    settings.PAYDESK_GATEWAY_ROUTES = {
        **settings.PAYDESK_GATEWAY_ROUTES,
        "alipay": "alipay",
        "wechat_pay": "wechat_pay",
        "paypal": "paypal",
    }


@pytest.fixture(autouse=True)
def _fresh_paypal_tokens():
    paypal._tokens.clear()
    yield
    paypal._tokens.clear()


@pytest.fixture
def alipay_account(merchant_a, keys):
    return GatewayAccount.objects.create(
        merchant=merchant_a,
        gateway="alipay",
        app_id=ALIPAY_APP_ID,
        private_key=keys["alipay_app"].private_pkcs1_b64,
        public_keys={"alipay": keys["alipay"].public_b64},
    )


@pytest.fixture
def wechat_account(merchant_a, keys):
    return GatewayAccount.objects.create(
        merchant=merchant_a,
        gateway="wechat_pay",
        app_id=WECHAT_APPID,
        mch_id=WECHAT_MCHID,
        key_serial=WECHAT_MERCHANT_SERIAL,
        private_key=keys["wechat_merchant"].private_pem,
        secret=WECHAT_APIV3_KEY,
        public_keys={WECHAT_PLATFORM_SERIAL: keys["wechat_platform"].public_pem},
    )


@pytest.fixture
def paypal_account(merchant_a):
    return GatewayAccount.objects.create(
        merchant=merchant_a,
        gateway="paypal",
        app_id=PAYPAL_CLIENT_ID,
        secret=PAYPAL_SECRET,
        webhook_id=PAYPAL_WEBHOOK_ID,
    )


@pytest.fixture
def fake_alipay(httpserver, gateway_urls, keys):
    fake = FakeAlipay(httpserver, keys["alipay_app"], keys["alipay"])
    yield fake
    assert fake.errors == []


@pytest.fixture
def fake_wechat(httpserver, gateway_urls, keys):
    fake = FakeWeChatPay(
        httpserver, keys["wechat_merchant"], keys["wechat_platform"], WECHAT_PLATFORM_SERIAL, WECHAT_MCHID
    )
    yield fake
    assert fake.errors == []


@pytest.fixture
def fake_paypal(httpserver, gateway_urls, keys):
    fake = FakePayPal(httpserver, PAYPAL_CLIENT_ID, PAYPAL_SECRET, keys["paypal"])
    yield fake
    assert fake.errors == []
