"""Accounts in the browser: enrol TOTP, sign in with a code, step-up approval, recovery codes, throttle."""

import os
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import AUTHENTICATOR, login, second_factor

pytestmark = pytest.mark.e2e
SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", "/tmp/paydesk-e2e"))
APPROVER = "approver@demo.paydesk.local"


def shoot(page, name):
    """Screenshots at a laptop's width and a phone's, to look at."""
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def sign_out(page, base):
    page.goto(f"{base}/")
    page.locator("#account-menu").click()  # "Log out" lives in the account menu
    page.locator("form[action='/accounts/logout/'] button").click()
    page.wait_for_url(f"{base}/accounts/login/")


def password_step(page, base, email):
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", "paydesk-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/accounts/two-factor/verify/*")


def test_enrol_sign_in_with_a_code_step_up_to_approve_and_recovery_codes_work_once(page, demo_server):
    base = demo_server["url"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    # 1. The approver must enrol at the first sign-in: QR code, key, then recovery codes.
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", APPROVER)
    page.fill("input[name=password]", "paydesk-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/accounts/two-factor/setup/*")
    assert page.locator("#totp-qr svg").is_visible()
    shoot(page, "two-factor-setup")
    codes = second_factor(page, base, APPROVER)
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/accounts/security/")
    shoot(page, "security")
    assert len(codes) == 10

    # 2. Sign out; sign in again with the password and a code from the app.
    sign_out(page, base)
    password_step(page, base, APPROVER)
    page.fill("input[name=code]", AUTHENTICATOR.code(APPROVER))
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")

    # 3. Approving a batch after the step-up window asks for a fresh code (here a recovery code).
    page.goto(f"{base}/batches/")
    page.locator("tr", has_text="Payroll November (demo)").locator("a[href^='/batches/bat_']").click()
    page.wait_for_url(f"{base}/batches/bat_*/")
    batch_url = page.url
    time.sleep(31)  # PAYDESK_STEP_UP_SECONDS is 30 on this server
    page.click("#approve-link")  # the review page (issue 11) is behind the step-up
    page.wait_for_url(f"{base}/accounts/two-factor/verify/*")
    assert "Confirm it is you" in page.content()
    page.fill("input[name=code]", codes[0])
    page.click("button[type=submit]")
    page.wait_for_url(batch_url + "approve/")
    page.click("#confirm-approve")
    page.wait_for_url(batch_url)
    assert "Batch approved" in page.content()

    # 4. The recovery code was used up: a second use fails.
    sign_out(page, base)
    password_step(page, base, APPROVER)
    page.fill("input[name=code]", codes[0])
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/accounts/two-factor/verify/" in page.url
    assert "used already" in page.content()
    time.sleep(2)  # django-otp delays the next try after a failure (1 s, doubling)
    page.fill("input[name=code]", codes[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_five_wrong_passwords_show_the_throttle_page(browser, demo_server):
    base = demo_server["url"]
    # An address of its own (the server trusts X-Forwarded-For): the lock-out is this test's alone.
    context = browser.new_context(extra_http_headers={"X-Forwarded-For": "203.0.113.7"})
    page = context.new_page()
    try:
        for _ in range(5):
            page.goto(f"{base}/accounts/login/")
            # A user name no other test signs in with: axes locks the name and the address each
            # on its own (AXES_LOCKOUT_PARAMETERS), so locking out the demo operator for 15 minutes
            # broke the operator's sign-in in tests/e2e/test_dashboard_v2.py, which runs after.
            page.fill("input[name=username]", "throttled@demo.paydesk.local")
            page.fill("input[name=password]", "not-the-password")
            with page.expect_response(
                lambda r: r.url.endswith("/accounts/login/") and r.request.method == "POST"
            ) as info:
                page.click("button[type=submit]")
            response = info.value
        assert response.status == 429
        assert "Try again in 15 minutes" in page.inner_text("#lockout-message")
        shoot(page, "throttled")
    finally:
        context.close()


def test_owner_pages_render(page, demo_server):
    base = demo_server["url"]
    login(page, base)  # the owner (enrols on first sign-in)
    for name, path in (
        ("team", "/accounts/team/"),
        ("api-keys", "/accounts/api-keys/"),
        ("audit", "/accounts/audit-log/"),
    ):
        page.goto(base + path)
        assert page.locator("h1").count() == 1
        shoot(page, name)
    assert "auth.signed_in" in page.content()
