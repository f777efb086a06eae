from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from merchants.models import ApiKey, Membership, Merchant
from payments.models import Payment


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()


@pytest.mark.django_db(transaction=True)
def test_seed_demo_is_idempotent_and_prints_a_working_key(sandbox_wire, settings):
    settings.DEBUG = True  # as `make run` runs it
    first = run("seed_demo")
    payments = Payment.objects.count()
    second = run("seed_demo")
    assert first[-1] == second[-1] and first[-1].startswith("pdk_")
    assert Merchant.objects.filter(slug="demo").count() == 1
    assert Payment.objects.count() == payments > 5
    assert set(Membership.objects.filter(merchant__slug="demo").values_list("role", flat=True)) == {
        "owner",
        "operator",
        "approver",
    }
    key = ApiKey.objects.get(merchant__slug="demo")
    assert key.matches(first[-1])
    assert Payment.objects.filter(status="on_hold").exists()


@pytest.mark.django_db
def test_create_merchant_prints_slug_last():
    lines = run("create_merchant", "Acme Ltd", "--owner-email", "boss@acme.example")
    merchant = Merchant.objects.get(slug=lines[-1])
    assert merchant.name == "Acme Ltd"
    assert merchant.memberships.get().user.email == "boss@acme.example"
    assert run("create_merchant", "Acme Ltd", "--owner-email", "b2@acme.example")[-1] == "acme-ltd-2"


@pytest.mark.django_db
def test_create_api_key_prints_key_once_and_stores_only_the_hash():
    slug = run("create_merchant", "Acme", "--owner-email", "o@acme.example")[-1]
    raw = run("create_api_key", slug, "--scopes", "read")[-1]
    key = ApiKey.objects.get()
    assert raw.startswith(f"pdk_{key.prefix}_") and key.matches(raw)
    assert raw not in (key.key_hash, key.prefix) and key.scopes == ["read"]


@pytest.mark.django_db
def test_create_api_key_rejects_unknown_merchant_and_scope():
    with pytest.raises(CommandError):
        run("create_api_key", "nope")
    slug = run("create_merchant", "Acme", "--owner-email", "o@acme.example")[-1]
    with pytest.raises(CommandError):
        run("create_api_key", slug, "--scopes", "read,admin")
