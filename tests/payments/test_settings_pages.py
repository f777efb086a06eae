"""Settings (issue 11, item 5): the merchant profile and each member's own notification settings."""

import time
from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction
from django.urls import reverse

from merchants.accounts.policy import VERIFIED_AT_SESSION_KEY
from merchants.models import AuditEntry, Membership, NotificationPreference
from merchants.services import membership_notifications_set
from payments.models import Channel, Delivery, Event, Notification
from payments.services.merchant_profile import (
    MerchantProfileInvalid,
    merchant_profile_initial,
    merchant_profile_update,
)
from payments.services.notifications.fanout import deliveries_for_events
from tests.factories import MembershipFactory, UserFactory
from tests.payments.conftest import login

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media")]

PROFILE = reverse("dashboard:merchant_profile")
MINE = reverse("dashboard:my_notifications")


def _form(merchant, **changes) -> dict:
    data = merchant_profile_initial(merchant=merchant)
    data = {k: v for k, v in data.items() if not isinstance(v, bool) or v}
    data.update(changes)
    return {k: ("on" if v is True else v) for k, v in data.items() if v is not False}


def test_the_owner_edits_the_profile_in_minor_units_and_it_is_audited(alice, merchant_a):
    client = login(alice)
    data = _form(
        merchant_a,
        base_currency="eur",
        per_payment_limit="2500.50",
        batch_approval_threshold="10000",
        daily_cap="0.00",
        monthly_cap="123456.78",
        first_payment_cap="99.99",
        allowed_currencies="eur usd, JPY",
        velocity_per_minute="30",
        risk_threshold="0.9",
        four_eyes=True,
    )
    response = client.post(PROFILE, data)
    assert response.status_code == 302 and response["Location"] == PROFILE
    merchant_a.refresh_from_db()
    assert merchant_a.base_currency == "EUR"
    assert merchant_a.per_payment_limit_minor == 250050
    assert merchant_a.batch_approval_threshold_minor == 1000000
    assert merchant_a.monthly_cap_minor == 12345678 and merchant_a.first_payment_cap_minor == 9999
    assert merchant_a.daily_cap_minor == 0
    assert merchant_a.allowed_currencies == ["EUR", "JPY", "USD"]
    assert merchant_a.velocity_per_minute == 30 and merchant_a.four_eyes is True
    assert merchant_a.risk_threshold == Decimal("0.900")
    entry = AuditEntry.objects.get(action="merchant.profile_updated")
    assert entry.actor_user == alice and entry.merchant == merchant_a
    assert entry.before["per_payment_limit_minor"] == 100_000_000
    assert entry.after["per_payment_limit_minor"] == 250050
    assert entry.before["four_eyes"] is False and entry.after["four_eyes"] is True
    assert entry.before["risk_threshold"] == "0.950" and entry.after["risk_threshold"] == "0.900"
    assert "daily_cap_minor" not in entry.after  # unchanged fields are not logged
    page = client.get(PROFILE).content.decode()
    assert 'value="2500.50"' in page and 'value="123456.78"' in page


def test_saving_the_same_values_writes_no_audit_entry(alice, merchant_a):
    login(alice).post(PROFILE, _form(merchant_a))
    assert not AuditEntry.objects.filter(action="merchant.profile_updated").exists()


@pytest.mark.parametrize("persona", ["bob", "carol", "vic"])
def test_members_other_than_owners_get_403(persona, alice, bob, carol, merchant_a):
    users = {"bob": bob, "carol": carol}
    if persona == "vic":
        users["vic"] = UserFactory(username="vic@a.example")
        MembershipFactory(user=users["vic"], merchant=merchant_a, role=Membership.Role.VIEWER)
    client = login(users[persona])
    assert client.get(PROFILE).status_code == 403
    assert client.post(PROFILE, _form(merchant_a, per_payment_limit="1")).status_code == 403
    merchant_a.refresh_from_db()
    assert merchant_a.per_payment_limit_minor == 100_000_000


def test_a_change_needs_a_fresh_second_factor(alice, merchant_a):
    client = login(alice)
    session = client.session
    session[VERIFIED_AT_SESSION_KEY] = time.time() - 301
    session.save()
    assert client.get(PROFILE).status_code == 200  # looking needs none
    refused = client.post(PROFILE, _form(merchant_a, per_payment_limit="1"))
    assert refused.status_code == 302 and reverse("accounts:two_factor_verify") in refused["Location"]
    merchant_a.refresh_from_db()
    assert merchant_a.per_payment_limit_minor == 100_000_000
    assert not AuditEntry.objects.filter(action="merchant.profile_updated").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("per_payment_limit", "-5", "Give a positive amount, or 0 to turn this off."),
        ("daily_cap", "12.345", "USD amounts allow at most 2 decimal places."),
        ("allowed_currencies", "USD XYZ", "XYZ is not an ISO 4217 currency code."),
        ("base_currency", "ABC", "Unknown currency code."),
        ("monthly_cap", "lots", "Amount is not a number."),
        ("velocity_per_minute", "-1", "Give a whole number from 0"),
        ("risk_threshold", "1.5", "Give a number from 0 to 1"),
    ],
)
def test_bad_input_gives_a_field_error_and_changes_nothing(alice, merchant_a, field, value, message):
    # A valid change beside the bad one: nothing is half-saved.
    data = _form(merchant_a, first_payment_cap="50", four_eyes=True, **{field: value})
    response = login(alice).post(PROFILE, data)
    assert response.status_code == 200
    page = response.content.decode()
    assert message in page and "is-invalid" in page
    assert "Nothing was saved" in page
    merchant_a.refresh_from_db()
    assert merchant_a.first_payment_cap_minor == 0 and merchant_a.four_eyes is False
    assert not AuditEntry.objects.filter(action="merchant.profile_updated").exists()


def test_the_service_reports_every_bad_field_at_once(merchant_a):
    data = _form(merchant_a, per_payment_limit="-1", risk_threshold="x", base_currency="USD")
    with pytest.raises(MerchantProfileInvalid) as caught:
        merchant_profile_update(merchant=merchant_a, data=data)
    assert set(caught.value.errors) == {"per_payment_limit", "risk_threshold"}


def test_amounts_follow_the_base_currency_decimals(merchant_a):
    # The amounts on the page were written for USD: with JPY, "1000000.00" has decimals JPY has not.
    with pytest.raises(MerchantProfileInvalid) as caught:
        merchant_profile_update(merchant=merchant_a, data=_form(merchant_a, base_currency="JPY"))
    assert set(caught.value.errors) == {"per_payment_limit"}
    data = _form(merchant_a, base_currency="JPY", daily_cap="5000", per_payment_limit="1000000")
    merchant_profile_update(merchant=merchant_a, data=data)
    merchant_a.refresh_from_db()
    assert merchant_a.daily_cap_minor == 5000 and merchant_a.per_payment_limit_minor == 1000000
    with pytest.raises(MerchantProfileInvalid) as caught:
        merchant_profile_update(merchant=merchant_a, data=_form(merchant_a, daily_cap="5000.5"))
    assert "JPY amounts allow at most 0 decimal places." in caught.value.errors["daily_cap"]


def test_the_profile_is_in_the_owners_settings_menu(alice, bob):
    assert PROFILE in login(alice).get(reverse("dashboard:payment_list")).content.decode()
    assert PROFILE not in login(bob).get(reverse("dashboard:payment_list")).content.decode()


# Personal notification settings ------------------------------------------------------------


def test_each_member_saves_their_own_settings(alice, bob, merchant_a):
    page = login(bob).get(MINE).content.decode()
    assert 'id="approvals-inapp" checked' in page and 'id="approvals-email">' in page  # the defaults
    login(bob).post(MINE, {"approvals-email": "on", "refunds-inapp": "on"})
    bob_member = Membership.objects.get(user=bob)
    assert bob_member.wants("approvals", "email") and not bob_member.wants("approvals", "inapp")
    assert bob_member.wants("refunds", "inapp") and not bob_member.wants("payments", "inapp")
    alice_member = Membership.objects.get(user=alice)
    assert alice_member.notifications == {} and alice_member.wants("payments", "inapp")
    page = login(bob).get(MINE).content.decode()
    assert 'id="approvals-email" checked' in page and 'id="payments-inapp">' in page


def test_unknown_topics_are_refused_by_the_service(bob):
    with pytest.raises(ValueError):
        membership_notifications_set(membership=bob.memberships.get(), choices={"gossip": {"email": True}})


def _failed_event(merchant):
    with transaction.atomic():
        event = Event.objects.create(merchant=merchant, type="payment.failed", data={"object": {}})
        deliveries_for_events([event])
    return event


def test_a_member_who_opted_out_gets_no_in_app_notice(alice, bob, merchant_a):
    NotificationPreference.objects.create(merchant=merchant_a, channel="inapp")
    membership_notifications_set(
        membership=bob.memberships.get(), choices={"payment_problems": {"inapp": False}}
    )
    _failed_event(merchant_a)
    assert set(Notification.objects.values_list("user__username", flat=True)) == {"alice@a.example"}


def test_a_member_who_opted_in_gets_fanned_out_email_once(alice, bob, merchant_a):
    NotificationPreference.objects.create(merchant=merchant_a, channel="email", enabled=True)  # owners
    membership_notifications_set(
        membership=bob.memberships.get(), choices={"payment_problems": {"email": True}}
    )
    membership_notifications_set(
        membership=alice.memberships.get(), choices={"payment_problems": {"email": True}}
    )
    _failed_event(merchant_a)
    emails = Delivery.objects.filter(channel=Channel.EMAIL).values_list("recipient", flat=True)
    assert sorted(emails) == ["alice@a.example", "bob@a.example"]  # alice once, though on both lists


def test_an_approver_who_opted_in_gets_an_email_with_the_batch_link(alice, bob, carol, uploaded, settings):
    settings.PAYDESK_PUBLIC_URL = "https://paydesk.example"
    membership_notifications_set(membership=carol.memberships.get(), choices={"approvals": {"email": True}})
    mail.outbox.clear()
    batch = uploaded()
    link = reverse("dashboard:batch_approve", args=[batch.public_id])
    emails = Delivery.objects.filter(channel=Channel.EMAIL, type="batch.awaits_approval")
    assert list(emails.values_list("recipient", flat=True)) == ["carol@a.example"]  # alice did not opt in
    assert emails.get().payload["link"] == link
    sent = [m for m in mail.outbox if m.to == ["carol@a.example"]]
    assert len(sent) == 1 and "https://paydesk.example" + link in sent[0].body
    assert "awaits your approval" in sent[0].subject
    assert "you asked for approval e-mails" in sent[0].body
    # In-app stays on by default for both.
    told = Notification.objects.filter(link=link).values_list("user__username", flat=True)
    assert set(told) == {"alice@a.example", "carol@a.example"}


def test_an_approval_request_emails_only_those_who_opted_in(alice, bob, carol, uploaded):
    batch = uploaded()
    Delivery.objects.all().delete()
    login(bob).post(
        reverse("dashboard:batch_request_approval", args=[batch.public_id]),
        {"approver": ["carol@a.example"]},
    )
    assert not Delivery.objects.filter(channel=Channel.EMAIL).exists()  # carol never opted in
    membership_notifications_set(
        membership=carol.memberships.get(), choices={"approvals": {"email": True, "inapp": False}}
    )
    Notification.objects.all().delete()
    login(bob).post(
        reverse("dashboard:batch_request_approval", args=[batch.public_id]),
        {"approver": ["carol@a.example"]},
    )
    sent = Delivery.objects.filter(channel=Channel.EMAIL, type="batch.approval_requested")
    assert list(sent.values_list("recipient", flat=True)) == ["carol@a.example"]
    assert not Notification.objects.exists()  # she turned in-app approval notices off
