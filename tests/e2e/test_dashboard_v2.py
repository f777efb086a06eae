"""The merchant dashboard v2 in a browser (issue 11): home, approvals, API keys, export, axe-core, layout.

axe-core comes from the npm registry (`npm install axe-core` in /tmp, or set
AXE_CORE_JS to its axe.min.js); the accessibility test fails, never skips,
without it.
"""

import csv
import io
import os
import re
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import login, second_factor

pytestmark = pytest.mark.e2e
SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", "/tmp/paydesk-e2e"))
AXE = Path(os.environ.get("AXE_CORE_JS", "/tmp/node_modules/axe-core/axe.min.js"))
OPERATOR = "operator@demo.paydesk.local"
APPROVER = "approver@demo.paydesk.local"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_sign_in_and_see_the_home_figures(page, demo_server):
    base = demo_server["url"]
    login(page, base)
    figures = page.locator("#home-figures").inner_text()
    assert "Volume" in figures and "Success rate" in figures and "awaiting approval" in figures
    # The worker settles the seed's payments in the first seconds: the charts follow their successes.
    for _ in range(40):
        if page.locator("figure.chart svg").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.locator("figure.chart svg").count() >= 1
    page.click("#home-windows >> text=30 days")
    assert "window=30d" in page.url
    shot(page, "home-1366")


def test_a_batch_goes_from_operator_to_approver_to_completed_with_failures(browser, demo_server, tmp_path):
    base = demo_server["url"]
    lines = ["reference,amount,currency,method,beneficiary_name,beneficiary_account"]
    for i in range(6):
        account = "4000000000000002" if i % 3 == 0 else "4000000000001234"
        lines.append(f"E2E-B-{i},10.00,USD,card,Person {i},{account}")
    path = tmp_path / "e2e-batch.csv"
    path.write_text("\n".join(lines) + "\n")

    operator = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    login(operator, base, OPERATOR)
    operator.goto(f"{base}/batches/new/")
    operator.set_input_files("#id_file", str(path))
    operator.fill("#id_name", "E2E batch")
    operator.click("button:has-text('Upload and validate')")
    operator.wait_for_url(re.compile(r".*/batches/bat_\w+/$"))
    batch_url = operator.url
    operator.locator("#approval-hint").wait_for(timeout=20000)
    operator.context.close()

    approver = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    login(approver, base, APPROVER)
    assert approver.locator("#nav-approvals .badge").count() == 1
    approver.goto(f"{base}/approvals/")
    approver.click("#inbox-batch-list li:has-text('E2E batch') >> text=Review and approve")
    review = approver.locator("#approve-review").inner_text()
    assert "6 payments will be sent." in review and "60.00" in review
    approver.click("#confirm-approve")
    approver.wait_for_url(batch_url)
    approver.locator("#batch-status").get_by_text("Completed with 2 failures").wait_for(timeout=30000)
    shot(approver, "batch-completed-1366")
    approver.context.close()


def test_create_and_revoke_an_api_key_and_use_it(page, demo_server):
    base = demo_server["url"]
    login(page, base)

    def create_key():
        page.goto(f"{base}/accounts/api-keys/")
        page.fill("#key-name", "E2E key")
        page.check("#scope-read")
        page.click("button:has-text('Create key')")
        page.wait_for_load_state()

    # Creating a key needs a second factor verified within PAYDESK_STEP_UP_SECONDS (30 on this
    # server): past it, the owner is asked for a code, comes back to the page and creates the key.
    time.sleep(31)
    create_key()
    assert "/accounts/two-factor/verify/" in page.url and "step_up=1" in page.url
    second_factor(page, base, "owner@demo.paydesk.local")
    page.wait_for_url(f"{base}/accounts/api-keys/")
    create_key()
    secret = page.locator("#new-key-secret").input_value()
    assert secret.startswith("pdk_")
    headers = {"Authorization": f"Bearer {secret}"}
    assert requests.get(f"{base}/api/v1/payments", headers=headers, timeout=10).status_code == 200
    page.goto(f"{base}/accounts/api-keys/")
    assert secret not in page.content()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#key-list tr:has-text('E2E key') >> text=Revoke")
    page.wait_for_load_state()
    assert requests.get(f"{base}/api/v1/payments", headers=headers, timeout=10).status_code == 401


def test_export_the_filtered_payment_list(page, demo_server):
    base = demo_server["url"]
    login(page, base)
    page.goto(f"{base}/payments/?status=failed")
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8-sig"))))
    assert rows and {r["status"] for r in rows} == {"failed"}


PAGES = (
    "/",
    "/payments/",
    "/batches/",
    "/approvals/",
    "/accounts/api-keys/",
    "/accounts/team/",
    "/settings/profile/",
    "/settings/my-notifications/",
)


def _first(page, base, selector, list_url):
    page.goto(f"{base}{list_url}")
    return page.locator(selector).first.get_attribute("href")


def _pages(page, base):
    payment = _first(page, base, "table tbody a.stretched-link", "/payments/")
    batch = _first(page, base, "table tbody a[href*='/batches/bat_']", "/batches/")
    return [*PAGES, payment, batch]


def test_axe_finds_no_serious_or_critical_violation(page, demo_server):
    assert AXE.exists(), f"axe-core is missing at {AXE}: npm install axe-core"
    base = demo_server["url"]
    page.goto(f"{base}/accounts/login/")
    problems = {"/accounts/login/": _axe(page)}
    login(page, base)
    for url in _pages(page, base):
        page.goto(f"{base}{url}")
        problems[url] = _axe(page)
    bad = {url: v for url, v in problems.items() if v}
    assert not bad, bad


def _axe(page) -> list:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("width", [1366, 390])
def test_no_sideways_scroll_and_a_one_line_navbar(browser, demo_server, width):
    base = demo_server["url"]
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    login(page, base)
    wide = []
    for url in _pages(page, base):
        page.goto(f"{base}{url}")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if overflow > 0:
            wide.append((url, overflow))
        name = url.strip("/").replace("/", "-") or "home"
        shot(page, f"{name[:40]}-{width}")
        if width == 1366:
            height = page.evaluate("document.querySelector('nav.navbar').getBoundingClientRect().height")
            assert height < 80, (url, height)  # one line: the navbar does not wrap
    page.context.close()
    assert not wide, wide


def _mail_to(demo_server, address: str, *, timeout: float = 30) -> str:
    """The text of the newest e-mail the server wrote to `address` (file backend, one file per send)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(
            Path(demo_server["mail"]).glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True
        ):
            text = path.read_text("utf-8")
            if f"To: {address}" in text:
                return text
        time.sleep(0.5)
    raise AssertionError(f"no e-mail to {address} in {demo_server['mail']}")


def test_invite_a_team_member_and_accept_the_invitation(browser, demo_server):
    base = demo_server["url"]
    invitee = "new.hire@example.com"
    owner = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    login(owner, base)
    owner.goto(f"{base}/accounts/team/")
    owner.fill("#id_email", invitee)
    owner.select_option("#id_role", "viewer")  # the invitation form's (each member row has a role too)
    owner.click("button:has-text('Send invitation')")
    owner.wait_for_url(f"{base}/accounts/team/")
    assert invitee in owner.locator("main").inner_text()  # listed under pending invitations

    link = re.search(r"http://127\.0\.0\.1:\d+/accounts/invitations/[^/\s]+/", _mail_to(demo_server, invitee))
    assert link, "the invitation e-mail carries no link"
    newcomer = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    newcomer.goto(link.group(0))
    assert "Join" in newcomer.locator("h1").inner_text()
    newcomer.fill("input[name=password1]", "a-long-new-passphrase-42")
    newcomer.fill("input[name=password2]", "a-long-new-passphrase-42")
    newcomer.click("button:has-text('Join')")
    newcomer.wait_for_url(f"{base}/payments/*")
    assert "Welcome to" in newcomer.locator("body").inner_text()
    shot(newcomer, "invitation-accepted-390")
    # The link worked once: opening it again says so.
    assert newcomer.goto(link.group(0)).status == 410

    owner.goto(f"{base}/accounts/team/")
    row = owner.locator("#team-list tr", has_text=invitee)
    assert row.count() == 1 and row.locator("select[name=role]").input_value() == "viewer"
    owner.context.close()
    newcomer.context.close()
