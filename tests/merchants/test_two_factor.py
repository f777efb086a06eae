"""Two-factor sign-in (django-otp): who enrols, QR enrolment, codes, recovery codes, step-up."""

import re
import time

import pytest
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from merchants.accounts.policy import VERIFIED_AT_SESSION_KEY
from merchants.models import AuditEntry
from tests.conftest import confirmed_post, pass_second_factor
from tests.factories import UserFactory
from tests.payments.test_batch_support import csv_bytes, media, rows, upload  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.real_second_factor, pytest.mark.usefixtures("media")]
PASSWORD = "pw-for-tests-1"


def code(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The code the user's app shows now (or `steps_ahead` time steps later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return str(totp.token()).zfill(device.digits)


def sign_in(client, user):
    return client.post(reverse("login"), {"username": user.username, "password": PASSWORD})


def enrol(client) -> tuple[TOTPDevice, list[str]]:
    page = client.get(reverse("accounts:two_factor_setup"))
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=page.wsgi_request.user, confirmed=False)
    answer = client.post(reverse("accounts:two_factor_setup"), {"code": code(device)}, follow=True)
    codes = re.findall(r'<li class="col">([a-z2-7]{8})</li>', answer.content.decode())
    device.refresh_from_db()
    return device, codes


@pytest.mark.parametrize("persona", ["alice", "carol"])
def test_owners_and_approvers_must_enrol_before_any_page(client, persona, request):
    user = request.getfixturevalue(persona)
    sign_in(client, user)
    response = client.get(reverse("dashboard:payment_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:two_factor_setup"))
    # The API documentation and the batch pages are behind the same gate.
    assert client.get(reverse("dashboard:batch_list")).status_code == 302


def test_an_operator_is_not_asked_unless_the_merchant_requires_it_of_everyone(client, bob, merchant_a):
    sign_in(client, bob)
    assert client.get(reverse("dashboard:payment_list")).status_code == 200
    merchant_a.require_two_factor = True
    merchant_a.save()
    response = client.get(reverse("dashboard:payment_list"))
    assert response["Location"].startswith(reverse("accounts:two_factor_setup"))


def test_staff_must_enrol_before_the_admin(client):
    staff = UserFactory(username="staff@paydesk.example", is_staff=True)
    client.post("/admin/login/", {"username": staff.username, "password": PASSWORD})
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:two_factor_setup"))


def test_enrolment_shows_an_svg_qr_code_then_single_use_recovery_codes(client, alice):
    sign_in(client, alice)
    page = client.get(reverse("accounts:two_factor_setup"))
    content = page.content.decode()
    assert "<svg" in content and "otpauth" not in content  # drawn here, the key never leaves in a URL
    device, codes = enrol(client)
    assert device.confirmed and len(codes) == 10
    assert client.get(reverse("dashboard:payment_list")).status_code == 200
    assert AuditEntry.objects.filter(action="two_factor.enrolled", actor_user=alice).count() == 1


def test_a_wrong_code_does_not_enrol(client, alice):
    sign_in(client, alice)
    client.get(reverse("accounts:two_factor_setup"))
    response = client.post(reverse("accounts:two_factor_setup"), {"code": "000000"})
    assert response.status_code == 200 and "not right" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=alice, confirmed=True).exists()


def test_sign_in_needs_the_password_then_a_code(client, alice):
    sign_in(client, alice)
    device, _ = enrol(client)
    client.post(reverse("logout"))
    sign_in(client, alice)
    gate = client.get(reverse("dashboard:payment_list"))
    assert gate["Location"].startswith(reverse("accounts:two_factor_verify"))
    wrong = client.post(reverse("accounts:two_factor_verify"), {"code": "123456", "next": "/"})
    assert wrong.status_code == 200
    assert AuditEntry.objects.filter(action="two_factor.failed", actor_user=alice).exists()
    device.throttling_failure_count = 0  # django-otp delays the next try after a failure
    device.throttling_failure_timestamp = None
    device.save()
    right = client.post(reverse("accounts:two_factor_verify"), {"code": code(device, 1), "next": "/"})
    assert right.status_code == 302 and right["Location"] == "/"
    assert client.get(reverse("dashboard:payment_list")).status_code == 200


def test_a_recovery_code_works_once(client, alice):
    sign_in(client, alice)
    _, codes = enrol(client)
    for attempt in (1, 2):
        client.post(reverse("logout"))
        sign_in(client, alice)
        response = client.post(reverse("accounts:two_factor_verify"), {"code": codes[0], "next": "/"})
        if attempt == 1:
            assert response.status_code == 302
            assert client.get(reverse("dashboard:payment_list")).status_code == 200
        else:
            assert response.status_code == 200 and "used already" in response.content.decode()
            assert client.get(reverse("dashboard:payment_list")).status_code == 302
    assert StaticToken.objects.filter(device__user=alice).count() == 9
    assert AuditEntry.objects.filter(action="two_factor.recovery_code_used").count() == 1


def test_approving_a_batch_needs_a_second_factor_from_the_last_five_minutes(
    client, merchant_a, alice, carol, django_capture_on_commit_callbacks
):
    batch = upload(merchant_a, csv_bytes(rows(2)), user=alice, capture=django_capture_on_commit_callbacks)
    client.force_login(carol)
    pass_second_factor(client, carol)
    session = client.session
    session[VERIFIED_AT_SESSION_KEY] = time.time() - 301  # verified six minutes ago
    session.save()
    url = reverse("dashboard:batch_approve", args=[batch.public_id])
    detail = reverse("dashboard:batch_detail", args=[batch.public_id])
    response = client.post(url, HTTP_REFERER="http://testserver" + detail)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:two_factor_verify"))
    batch.refresh_from_db()
    assert batch.status == "validated"
    device = TOTPDevice.objects.get(user=carol)
    back = client.post(response["Location"], {"code": code(device)})
    assert back["Location"] == "http://testserver" + detail
    # Fresh again: the confirmation page (issue 11), then the final click approves.
    confirmed_post(client, url, HTTP_USER_AGENT="Firefox/140")
    batch.refresh_from_db()
    assert batch.status in ("approved", "processing", "completed")
    # Audited by the service, with the address and browser of the request being served.
    entry = AuditEntry.objects.get(action="batch.approved")
    assert entry.actor_user == carol and entry.object_id == batch.public_id
    assert entry.ip == "127.0.0.1" and entry.user_agent == "Firefox/140"


def test_removing_the_second_factor_needs_a_fresh_one_and_is_audited(client, bob):
    client.force_login(bob)
    pass_second_factor(client, bob)
    client.post(reverse("accounts:two_factor_remove"))
    assert not TOTPDevice.objects.filter(user=bob).exists()
    assert AuditEntry.objects.filter(action="two_factor.removed", actor_user=bob).exists()
