"""Sign-in throttling (django-axes) and session lifetime: idle, absolute, new ids, password change."""

import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from merchants.accounts.middleware import LAST_SEEN_SESSION_KEY, SIGNED_IN_AT_SESSION_KEY
from merchants.models import AuditEntry

pytestmark = [pytest.mark.django_db, pytest.mark.real_second_factor]
PASSWORD = "pw-for-tests-1"


def sign_in(client, username, password=PASSWORD, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_five_failures_lock_the_username_with_a_429_page_and_the_right_password_no_longer_works(
    client, bob, path, caplog
):
    for _ in range(5):
        response = client.post(path, {"username": bob.username, "password": "wrong"})
    assert response.status_code == 429
    assert "Try again in 15 minutes" in response.content.decode()
    right = client.post(path, {"username": bob.username, "password": PASSWORD})
    assert right.status_code == 429
    assert not right.wsgi_request.user.is_authenticated
    assert "Locking out" in caplog.text
    assert AuditEntry.objects.filter(action="auth.sign_in_failed").count() >= 5
    assert AuditEntry.objects.filter(action="auth.locked_out").exists()


def test_five_failures_from_one_address_lock_it_for_every_username(client, bob, carol):
    for n in range(5):
        sign_in(client, f"nobody{n}@example.com", "wrong")
    assert sign_in(client, carol.username).status_code == 429
    # Another address may still sign in as carol.
    assert sign_in(Client(REMOTE_ADDR="10.0.0.9"), carol.username).status_code == 302


def test_the_lock_lifts_by_time(client, bob, time_machine):
    for _ in range(5):
        sign_in(client, bob.username, "wrong")
    time_machine.move_to(timezone.now() + timedelta(minutes=16))
    assert sign_in(client, bob.username).status_code == 302


def test_staff_can_unlock(client, bob):
    for _ in range(5):
        sign_in(client, bob.username, "wrong")
    assert AccessAttempt.objects.filter(username=bob.username).exists()
    AccessAttempt.objects.filter(username=bob.username).delete()  # the admin's "Access attempts" delete
    assert sign_in(client, bob.username).status_code == 302


def test_sign_in_gives_a_new_session_id(client, bob):
    client.get(reverse("login"))
    client.session.save()
    before = client.cookies["sessionid"].value
    sign_in(client, bob.username)
    assert client.cookies["sessionid"].value != before


def test_an_idle_session_is_signed_out(client, bob, settings):
    sign_in(client, bob.username)
    assert client.get(reverse("dashboard:payment_list")).status_code == 200
    session = client.session
    session[LAST_SEEN_SESSION_KEY] = time.time() - 31 * 60
    session.save()
    response = client.get(reverse("dashboard:payment_list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert not client.get(reverse("dashboard:payment_list")).wsgi_request.user.is_authenticated


def test_a_busy_session_still_ends_after_twelve_hours(client, bob):
    sign_in(client, bob.username)
    session = client.session
    session[SIGNED_IN_AT_SESSION_KEY] = time.time() - 12 * 3600 - 1
    session.save()
    response = client.get(reverse("dashboard:payment_list"))
    assert response["Location"].startswith(reverse("login"))


def test_sessions_last_twelve_hours_not_two_weeks(settings):
    assert settings.SESSION_COOKIE_AGE == 12 * 3600
    assert settings.PAYDESK_SESSION_IDLE_MINUTES == 30


def test_changing_the_password_signs_out_the_other_sessions(bob):
    here, elsewhere = Client(), Client()
    sign_in(here, bob.username)
    sign_in(elsewhere, bob.username)
    assert elsewhere.get(reverse("dashboard:payment_list")).status_code == 200
    response = here.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": "a-new-long-pw-42", "new_password2": "a-new-long-pw-42"},
    )
    assert response.status_code == 302
    assert here.get(reverse("dashboard:payment_list")).status_code == 200
    assert elsewhere.get(reverse("dashboard:payment_list")).status_code == 302


def test_password_reset_by_email(client, bob):
    bob.email = "bob@a.example"
    bob.save()
    client.post(reverse("password_reset"), {"email": "bob@a.example"})
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line)
    form = client.get(link.split("testserver", 1)[1], follow=True)
    assert form.status_code == 200 and "new_password1" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "reset-pw-long-42", "new_password2": "reset-pw-long-42"}
    )
    assert done.status_code == 302
    assert sign_in(Client(), bob.username, "reset-pw-long-42").status_code == 302
