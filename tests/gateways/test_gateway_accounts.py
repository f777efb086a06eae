"""Gateway accounts: credentials encrypted at rest, write-only in the admin, never shown again."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from merchants.gateway_forms import GatewayAccountForm
from merchants.models import GatewayAccount
from payments.gateways import get_gateway
from tests.factories import UserFactory
from tests.gateways.conftest import WECHAT_APIV3_KEY, WECHAT_PLATFORM_SERIAL

pytestmark = pytest.mark.django_db


def raw_columns(account: GatewayAccount) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT private_key, secret FROM merchants_gatewayaccount WHERE id = %s",
            [account.pk],
        )
        return cursor.fetchone()


def test_secrets_are_encrypted_at_rest_and_read_back(wechat_account, keys):
    private_key, secret = raw_columns(wechat_account)

    assert private_key.startswith("gAAAAA") and "PRIVATE KEY" not in private_key
    assert secret.startswith("gAAAAA") and WECHAT_APIV3_KEY not in secret
    fresh = GatewayAccount.objects.get(pk=wechat_account.pk)
    assert fresh.secret == WECHAT_APIV3_KEY
    assert fresh.private_key == keys["wechat_merchant"].private_pem
    assert WECHAT_APIV3_KEY not in repr(fresh.secret)


def test_a_rotated_encryption_key_still_reads_old_secrets(settings, wechat_account):
    from cryptography.fernet import Fernet

    old = settings.FIELD_ENCRYPTION_KEY
    settings.FIELD_ENCRYPTION_KEY = f"{Fernet.generate_key().decode()},{old}"

    assert GatewayAccount.objects.get(pk=wechat_account.pk).secret == WECHAT_APIV3_KEY


def test_a_disabled_or_incomplete_account_is_not_used(wechat_account, merchant_a):
    gateway = get_gateway("wechat_pay")
    assert gateway.account_for(merchant_a.pk) == wechat_account

    GatewayAccount.objects.filter(pk=wechat_account.pk).update(enabled=False)
    assert gateway.account_for(merchant_a.pk) is None

    GatewayAccount.objects.filter(pk=wechat_account.pk).update(enabled=True, mch_id="")
    assert gateway.account_for(merchant_a.pk) is None


def _form_data(merchant, **overrides):
    data = {
        "merchant": merchant.pk,
        "gateway": "wechat_pay",
        "environment": "sandbox",
        "enabled": "on",
        "app_id": "wxd678efh567hg6787",
        "mch_id": "1230000109",
        "key_serial": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        "webhook_id": "",
        "new_private_key": "",
        "new_secret": "",
        "public_key_id": "",
        "public_key": "",
    }
    data.update(overrides)
    return data


def test_the_form_keeps_stored_secrets_when_left_blank_and_replaces_them_when_typed(wechat_account, keys):
    form = GatewayAccountForm(
        data=_form_data(wechat_account.merchant, app_id="wx0000000000000001"), instance=wechat_account
    )
    assert form.is_valid(), form.errors
    form.save()
    kept = GatewayAccount.objects.get(pk=wechat_account.pk)
    assert (kept.app_id, kept.secret) == ("wx0000000000000001", WECHAT_APIV3_KEY)

    new_secret = "b" * 32
    form = GatewayAccountForm(data=_form_data(kept.merchant, new_secret=new_secret), instance=kept)
    assert form.is_valid(), form.errors
    form.save()
    assert GatewayAccount.objects.get(pk=wechat_account.pk).secret == new_secret


def test_the_form_refuses_unreadable_keys_and_incomplete_accounts(merchant_a, keys):
    form = GatewayAccountForm(
        data=_form_data(merchant_a, new_private_key="not a key", public_key="nope", new_secret="short")
    )
    assert not form.is_valid()
    assert set(form.errors) >= {"new_private_key", "public_key", "new_secret"}

    form = GatewayAccountForm(
        data=_form_data(
            merchant_a,
            new_private_key=keys["wechat_merchant"].private_pem,
            new_secret=WECHAT_APIV3_KEY,
            public_key=keys["wechat_platform"].public_pem,
        )
    )
    assert not form.is_valid()
    assert "public_key_id" in form.errors  # WeChat Pay keys need their serial

    form = GatewayAccountForm(
        data=_form_data(
            merchant_a,
            new_private_key=keys["wechat_merchant"].private_pem,
            new_secret=WECHAT_APIV3_KEY,
            public_key_id=WECHAT_PLATFORM_SERIAL,
            public_key=keys["wechat_platform"].public_pem,
        )
    )
    assert form.is_valid(), form.errors
    account = form.save()
    assert list(account.public_keys) == [WECHAT_PLATFORM_SERIAL]
    assert account.missing_fields() == []


def test_the_admin_shows_secrets_masked_and_never_renders_them(wechat_account, keys):
    admin = UserFactory(username="root@paydesk.example", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)

    page = client.get(f"/admin/merchants/gatewayaccount/{wechat_account.pk}/change/")
    listing = client.get("/admin/merchants/gatewayaccount/")

    assert page.status_code == 200 and listing.status_code == 200
    html = page.content.decode()
    assert WECHAT_APIV3_KEY not in html
    assert keys["wechat_merchant"].private_pem.splitlines()[1] not in html
    assert "(set)" in html
    assert WECHAT_PLATFORM_SERIAL in html
    assert WECHAT_APIV3_KEY not in listing.content.decode()
