"""Settings (issue 11): API keys made and revoked in the dashboard (audited), the team page."""

import pytest
from django.test import Client
from django.urls import reverse

from merchants.models import ApiKey, AuditEntry, Membership
from tests.payments.conftest import login

pytestmark = pytest.mark.django_db


def test_an_owner_creates_a_key_sees_it_once_uses_it_and_revokes_it(alice, merchant_a):
    client = login(alice)
    response = client.post(reverse("dashboard:api_key_list"), {"name": "ERP", "scopes": ["read", "write"]})
    page = response.content.decode()
    key = ApiKey.objects.get(name="ERP")
    secret = page.split('id="new-key-secret" value="')[1].split('"')[0]
    assert secret.startswith(f"pdk_{key.prefix}_") and response["Cache-Control"] == "no-store"
    assert key.scopes == ["read", "write"] and key.created_by == alice
    assert secret not in client.get(reverse("dashboard:api_key_list")).content.decode()
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/payments").status_code == 200
    client.post(reverse("dashboard:api_key_revoke", args=[key.public_id]))
    assert api.get("/api/v1/payments").status_code == 401
    actions = list(AuditEntry.objects.filter(object_id=key.public_id).values_list("action", flat=True))
    assert sorted(actions) == ["api_key.created", "api_key.revoked"]
    assert secret not in str(list(AuditEntry.objects.values_list("after", flat=True)))


def test_only_owners_manage_keys(bob, carol, alice, merchant_a):
    for user in (bob, carol):
        assert login(user).get(reverse("dashboard:api_key_list")).status_code == 403
        assert (
            login(user).post(reverse("dashboard:api_key_list"), {"name": "x", "scopes": ["read"]}).status_code
            == 403
        )
    assert not ApiKey.objects.exists()


def test_a_key_of_another_merchant_cannot_be_revoked(mallory, key_a):
    key = ApiKey.objects.get()
    assert login(mallory).post(reverse("dashboard:api_key_revoke", args=[key.public_id])).status_code == 404
    assert ApiKey.objects.get().revoked_at is None


def test_the_owner_changes_roles_and_removes_members_but_keeps_an_owner(alice, bob, merchant_a):
    client = login(alice)
    client.post(reverse("dashboard:team"), {"member": bob.username, "role": "approver"})
    assert Membership.objects.get(user=bob).role == "approver"
    refused = client.post(
        reverse("dashboard:team"), {"member": alice.username, "role": "viewer"}, follow=True
    )
    assert "keeps at least one owner" in refused.content.decode()
    client.post(reverse("dashboard:team"), {"member": bob.username, "action": "remove"})
    assert not Membership.objects.filter(user=bob).exists()
    assert set(AuditEntry.objects.values_list("action", flat=True)) == {
        "membership.role_changed",
        "membership.removed",
    }


def test_members_see_the_team_but_cannot_change_it(bob, alice):
    assert b"alice@a.example" in login(bob).get(reverse("dashboard:team")).content
    response = login(bob).post(reverse("dashboard:team"), {"member": alice.username, "role": "viewer"})
    assert response.status_code == 403 and Membership.objects.get(user=alice).role == "owner"
