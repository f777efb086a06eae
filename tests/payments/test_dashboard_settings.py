"""Settings (issue 11, on the owners' pages of issue 10): API keys (audited once) and the team."""

import pytest
from django.test import Client
from django.urls import reverse

from merchants.models import ApiKey, AuditEntry, Membership
from tests.payments.conftest import login

pytestmark = pytest.mark.django_db


def test_an_owner_creates_a_key_sees_it_once_uses_it_and_revokes_it(alice, merchant_a):
    client = login(alice)
    response = client.post(
        reverse("accounts:api_key_new"), {"name": "ERP", "scopes": ["read", "write"]}, follow=True
    )
    page = response.content.decode()
    key = ApiKey.objects.get(name="ERP")
    secret = page.split('id="new-key-secret" value="')[1].split('"')[0]
    assert secret.startswith(f"pdk_{key.prefix}_") and response["Cache-Control"] == "no-store"
    assert 'id="copy-key"' in page
    assert key.scopes == ["read", "write"] and key.created_by == alice
    assert secret not in client.get(reverse("accounts:api_keys")).content.decode()
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/payments").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert key.last_used_at.strftime("%Y-%m-%d") in client.get(reverse("accounts:api_keys")).content.decode()
    client.post(reverse("accounts:api_key_revoke", args=[key.public_id]))
    assert api.get("/api/v1/payments").status_code == 401
    actions = list(AuditEntry.objects.filter(object_id=key.public_id).values_list("action", flat=True))
    assert sorted(actions) == ["api_key.created", "api_key.revoked"]
    assert secret not in str(list(AuditEntry.objects.values_list("after", flat=True)))


def test_a_key_needs_a_name_and_a_scope(alice, merchant_a):
    client = login(alice)
    for data in ({"name": "", "scopes": ["read"]}, {"name": "ERP"}, {"name": "ERP", "scopes": ["root"]}):
        response = client.post(reverse("accounts:api_key_new"), data, follow=True)
        assert "choose at least one scope" in response.content.decode()
    assert not ApiKey.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="api_key").exists()


def test_only_owners_manage_keys(bob, carol, alice, merchant_a):
    for user in (bob, carol):
        assert login(user).get(reverse("accounts:api_keys")).status_code == 403
        assert (
            login(user).post(reverse("accounts:api_key_new"), {"name": "x", "scopes": ["read"]}).status_code
            == 403
        )
    assert not ApiKey.objects.exists()


def test_only_owners_revoke_keys(bob, key_a):
    key = ApiKey.objects.get()
    assert login(bob).post(reverse("accounts:api_key_revoke", args=[key.public_id])).status_code == 403
    assert ApiKey.objects.get().revoked_at is None


def test_a_key_of_another_merchant_cannot_be_revoked(mallory, key_a):
    key = ApiKey.objects.get()
    assert login(mallory).post(reverse("accounts:api_key_revoke", args=[key.public_id])).status_code == 404
    assert ApiKey.objects.get().revoked_at is None


def test_the_owner_changes_roles_and_removes_members_but_keeps_an_owner(alice, bob, merchant_a):
    client = login(alice)
    client.post(reverse("accounts:team_member", args=[bob.pk]), {"role": "approver"})
    assert Membership.objects.get(user=bob).role == "approver"
    refused = client.post(reverse("accounts:team_member", args=[alice.pk]), {"role": "viewer"}, follow=True)
    assert "at least one owner" in refused.content.decode()
    assert Membership.objects.get(user=alice).role == "owner"
    refused = client.post(reverse("accounts:team_member", args=[alice.pk]), {"remove": "1"}, follow=True)
    assert "at least one owner" in refused.content.decode()
    assert Membership.objects.filter(user=alice).exists()
    client.post(reverse("accounts:team_member", args=[bob.pk]), {"remove": "1"})
    assert not Membership.objects.filter(user=bob).exists()
    assert set(AuditEntry.objects.filter(merchant=merchant_a).values_list("action", flat=True)) == {
        "membership.role_changed",
        "membership.removed",
    }


def test_members_cannot_see_or_change_the_team(bob, alice):
    # Issue 11 showed the team to every member; issue 10 and issue 11's own text make it owner only.
    assert login(bob).get(reverse("accounts:team")).status_code == 403
    response = login(bob).post(reverse("accounts:team_member", args=[alice.pk]), {"role": "viewer"})
    assert response.status_code == 403 and Membership.objects.get(user=alice).role == "owner"


def test_the_owner_sees_members_with_their_email(alice, bob):
    assert b"bob@a.example" in login(alice).get(reverse("accounts:team")).content


def test_settings_navigation_points_at_the_owners_pages(alice, bob):
    page = login(alice).get(reverse("dashboard:home")).content.decode()
    assert f'href="{reverse("accounts:api_keys")}"' in page and f'href="{reverse("accounts:team")}"' in page
    page = login(bob).get(reverse("dashboard:home")).content.decode()
    assert reverse("accounts:api_keys") not in page and reverse("accounts:team") not in page
