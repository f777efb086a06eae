"""Owners' pages: invitations (role, single use, 72 h), roles, API keys with step-up, the audit log."""

import csv
import io
import re
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from merchants.accounts.policy import VERIFIED_AT_SESSION_KEY
from merchants.models import ApiKey, AuditEntry, Invitation, Membership
from tests.conftest import pass_second_factor

pytestmark = pytest.mark.django_db


def invite(client, email="dave@a.example", role="operator"):
    response = client.post(reverse("accounts:team"), {"email": email, "role": role})
    assert response.status_code == 302
    link = re.search(r"http://testserver(/accounts/invitations/\S+/)", mail.outbox[-1].body).group(1)
    return link


def test_an_owner_invites_by_email_and_the_link_works_once(client, alice, merchant_a):
    client.force_login(alice)
    link = invite(client)
    assert mail.outbox[-1].to == ["dave@a.example"]
    newcomer = Client()
    joined = newcomer.post(link, {"password1": "long-enough-pw-7", "password2": "long-enough-pw-7"})
    assert joined.status_code == 302
    membership = Membership.objects.get(user__email="dave@a.example", merchant=merchant_a)
    assert membership.role == "operator"
    assert Client().get(link).status_code == 410  # single use
    assert AuditEntry.objects.filter(action="invitation.sent", merchant=merchant_a).exists()
    assert AuditEntry.objects.filter(action="membership.added", merchant=merchant_a).exists()


def test_an_invitation_expires_after_72_hours(client, alice):
    client.force_login(alice)
    link = invite(client)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get(link).status_code == 410
    assert Invitation.objects.get().expires_at - Invitation.objects.get().created_at < timedelta(hours=73)


def test_only_owners_manage_the_team_keys_and_audit_log(client, bob):
    client.force_login(bob)
    for name in ("accounts:team", "accounts:api_keys", "accounts:audit_log"):
        assert client.get(reverse(name)).status_code == 403


def test_a_role_change_is_audited_and_the_last_owner_stays(client, alice, bob, merchant_a):
    client.force_login(alice)
    client.post(reverse("accounts:team_member", args=[bob.pk]), {"role": "approver"})
    assert Membership.objects.get(user=bob).role == "approver"
    entry = AuditEntry.objects.get(action="membership.role_changed")
    assert entry.before == {"role": "operator"} and entry.after["role"] == "approver"
    assert entry.actor_user == alice
    client.post(reverse("accounts:team_member", args=[alice.pk]), {"role": "viewer"})
    assert Membership.objects.get(user=alice).role == "owner"


def test_creating_an_api_key_needs_step_up_and_is_shown_once(client, alice):
    client.force_login(alice)
    session = client.session
    session[VERIFIED_AT_SESSION_KEY] = time.time() - 301
    session.save()
    refused = client.post(reverse("accounts:api_key_new"), {"name": "ERP", "scopes": ["read"]})
    assert reverse("accounts:two_factor_verify") in refused["Location"]
    assert not ApiKey.objects.exists()
    session = client.session
    session[VERIFIED_AT_SESSION_KEY] = time.time()
    session.save()
    client.post(reverse("accounts:api_key_new"), {"name": "ERP", "scopes": ["read"]})
    key = ApiKey.objects.get()
    page = client.get(reverse("accounts:api_keys")).content.decode()
    raw = re.search(r'id="new-key-secret" value="(pdk_[^"]+)"', page).group(1)
    assert key.matches(raw)
    assert raw not in client.get(reverse("accounts:api_keys")).content.decode()
    entry = AuditEntry.objects.get(action="api_key.created")
    assert entry.object_id == key.public_id and raw not in str(entry.after)


def test_revoking_a_key_in_the_dashboard_is_audited(client, alice, key_a):
    client.force_login(alice)
    key = ApiKey.objects.get()
    client.post(reverse("accounts:api_key_revoke", args=[key.public_id]))
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEntry.objects.get(action="api_key.revoked").actor_user == alice


def test_owners_see_their_merchants_audit_log_filtered_and_as_csv(
    client, alice, mallory, merchant_a, merchant_b
):
    client.force_login(alice)
    client.post(reverse("accounts:team"), {"email": "eve@a.example", "role": "viewer"})
    AuditEntry.objects.create(
        actor="system", merchant=merchant_b, action="invitation.sent", object_id="b-only"
    )
    page = client.get(reverse("accounts:audit_log"), {"action": "invitation"}).content.decode()
    assert "invitation.sent" in page and "b-only" not in page
    export = client.get(reverse("accounts:audit_log_csv"), {"action": "invitation"})
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0][0] == "when" and len(rows) == 2 and rows[1][3] == "invitation.sent"
    assert AuditEntry.objects.filter(action="audit_log.exported", actor_user=alice).exists()


def test_webhook_endpoint_changes_are_audited_from_the_dashboard_and_the_api(
    client, alice, merchant_a, key_a
):
    client.force_login(alice)
    client.post(
        reverse("dashboard:webhook_endpoint_list"), {"url": "https://hooks.example/a", "description": ""}
    )
    created = AuditEntry.objects.get(action="webhook_endpoint.created")
    assert created.actor_user == alice and created.after["url"] == "https://hooks.example/a"
    endpoint_id = created.object_id
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key_a}")
    api.patch(
        f"/api/v1/webhook-endpoints/{endpoint_id}",
        {"url": "https://hooks.example/b"},
        content_type="application/json",
    )
    changed = AuditEntry.objects.get(action="webhook_endpoint.changed")
    assert changed.before == {"url": "https://hooks.example/a"} and changed.after == {
        "url": "https://hooks.example/b"
    }
    assert changed.actor.startswith("api_key:")
    rotated = api.post(f"/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret")
    secret = rotated.json()["secret"]
    api.delete(f"/api/v1/webhook-endpoints/{endpoint_id}")
    actions = list(AuditEntry.objects.filter(merchant=merchant_a).values_list("action", flat=True))
    assert "webhook_endpoint.secret_rotated" in actions and "webhook_endpoint.deleted" in actions
    assert secret not in str(list(AuditEntry.objects.values_list("before", "after")))


@pytest.mark.real_second_factor
def test_the_owners_audit_log_shows_members_sign_ins_but_not_other_merchants_users(
    client, alice, bob, mallory
):
    for user in (bob, mallory):
        Client().post(reverse("login"), {"username": user.username, "password": "pw-for-tests-1"})
    client.force_login(alice)
    pass_second_factor(client, alice)
    page = client.get(reverse("accounts:audit_log"), {"action": "auth.signed_in"}).content.decode()
    assert bob.username in page and mallory.username not in page
