"""The audit log: one writer, secrets masked, entries never changed or deleted."""

import pytest
from django.test import RequestFactory

from merchants.audit import MASK, audit_record
from merchants.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_an_entry_records_actor_object_change_and_client(alice, merchant_a):
    request = RequestFactory().post("/", HTTP_USER_AGENT="Firefox/140", HTTP_X_REQUEST_ID="req-1")
    request.user = alice
    entry = audit_record(
        action="merchant.settings_changed",
        merchant=merchant_a,
        obj=merchant_a,
        before={"per_payment_limit_minor": 100},
        after={"per_payment_limit_minor": 500},
        request=request,
    )
    entry.refresh_from_db()
    assert entry.actor == f"user:{alice.pk}" and entry.actor_user == alice
    assert (entry.object_type, entry.object_id) == ("merchants.merchant", str(merchant_a.pk))
    assert entry.before == {"per_payment_limit_minor": 100} and entry.after == {
        "per_payment_limit_minor": 500
    }
    assert (entry.ip, entry.user_agent, entry.request_id) == ("127.0.0.1", "Firefox/140", "req-1")


def test_secret_values_never_reach_the_log(merchant_a):
    entry = audit_record(
        action="gateway_account.changed",
        merchant=merchant_a,
        before={"private_key": "-----BEGIN RSA PRIVATE KEY-----abc", "app_id": "2021"},
        after={"private_key": "-----BEGIN RSA PRIVATE KEY-----xyz", "api_v3_key": "k" * 32, "app_id": "2022"},
    )
    assert entry.before == {"private_key": MASK, "app_id": "2021"}
    assert entry.after == {"private_key": MASK, "api_v3_key": MASK, "app_id": "2022"}
    assert entry.actor == "system"


def test_entries_are_append_only(merchant_a):
    entry = audit_record(action="api_key.revoked", merchant=merchant_a)
    entry.action = "nothing.happened"
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()
    assert AuditEntry.objects.get(pk=entry.pk).action == "api_key.revoked"
