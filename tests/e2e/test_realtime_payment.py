"""A merchant creates payments in the browser and watches them settle without reloading."""

import os
from pathlib import Path

import pytest

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e
SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", "/tmp/paydesk-e2e"))


def create_payment(page, base, reference, account, amount="42.00"):
    page.goto(f"{base}/payments/new/")
    page.fill("input[name=reference]", reference)
    page.fill("input[name=amount]", amount)
    page.select_option("select[name=currency]", "USD")
    page.select_option("select[name=method]", "card")
    page.fill("input[name=beneficiary_name]", "Grace Hopper")
    page.fill("input[name=beneficiary_account]", account)
    page.click("input[type=submit], button[type=submit]")
    # The review step: what will be sent, before anything is.
    review = page.locator("#payment-review").inner_text()
    assert amount in review and "Grace Hopper" in review
    page.click("#confirm-send")
    page.wait_for_url(f"{base}/payments/pay_*/")


@pytest.mark.parametrize(
    ("account", "final", "code"),
    [
        ("4000000000001234", "Succeeded", None),
        ("4000000000000051", "Failed", "insufficient_funds"),
        ("4000000000000077", "Reversed", None),
    ],
)
def test_payment_settles_live(page, demo_server, account, final, code):
    base = demo_server["url"]
    login(page, base)
    create_payment(page, base, f"E2E-{account[-4:]}", account)
    url = page.url
    status = page.locator("#payment-status")
    # The page updates itself from the worker's callbacks: no reload here.
    status.get_by_text(final, exact=True).wait_for(timeout=20000)
    assert page.url == url
    if code:
        assert code in page.locator("#live").inner_text()
    timeline = page.locator("#timeline").inner_text()
    assert "payment.created" in timeline and "payment.processing" in timeline
    assert "created by" in timeline  # in words, with a name
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"payment-{account[-4:]}.png"), full_page=True)


def test_payment_list_and_form_errors(page, demo_server):
    base = demo_server["url"]
    login(page, base)
    page.goto(f"{base}/payments/")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "payment-list.png"), full_page=True)
    page.click("summary:has-text('Filters')")
    page.fill("input[name=reference]", "INV-1001")
    page.click("#payment-filters button:has-text('Filter')")
    rows = page.locator("table tbody tr")
    assert rows.count() == 1 and "INV-1001" in rows.first.inner_text()
    page.goto(f"{base}/payments/new/")
    page.fill("input[name=reference]", "E2E-BAD")
    page.fill("input[name=amount]", "10.555")
    page.fill("input[name=beneficiary_name]", "X")
    page.fill("input[name=beneficiary_account]", "4000000000001234")
    page.click("input[type=submit], button[type=submit]")
    assert "at most 2 decimal places" in page.content()
    page.screenshot(path=str(SHOTS / "payment-form-error.png"), full_page=True)
