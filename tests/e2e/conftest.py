"""Browser tests: a real web server and a real django-q2 worker, as `make run` starts them."""

import base64
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django_otp.oath import TOTP

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory):
    """Migrate and seed a fresh SQLite database, then run the web server and a worker on it."""
    port = free_port()
    db = tmp_path_factory.mktemp("e2e") / "demo.sqlite3"
    mail = tmp_path_factory.mktemp("mail")  # the server's e-mails, one file each (invitations)
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "PAYDESK_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DEBUG": "1",
        "SANDBOX_FOLLOWUP_DELAY": "1",
        # Step-up is tested by waiting past it (tests/e2e/test_accounts.py); the throttle test sends
        # its own client address in X-Forwarded-For, so that its lock-out leaves other tests alone.
        "PAYDESK_STEP_UP_SECONDS": "30",
        "PAYDESK_CLIENT_IP_HEADER": "X-Forwarded-For",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "EMAIL_URL": f"file://{mail}",
    }
    env.pop("REDIS_URL", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)
    seed = subprocess.run(
        [*manage, "seed_demo"], env=env, check=True, cwd=ROOT, capture_output=True, text=True
    )
    logs = tmp_path_factory.mktemp("logs")
    web = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        cwd=ROOT,
        stdout=open(logs / "web.log", "w"),
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [*manage, "qcluster"],
        env=env,
        cwd=ROOT,
        stdout=open(logs / "worker.log", "w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    # A generous bound on a loaded machine; the loop ends as soon as the server answers.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.2)
    else:
        raise RuntimeError("web server did not start: " + (logs / "web.log").read_text())
    yield {"url": base, "api_key": seed.stdout.strip().splitlines()[-1], "logs": logs, "mail": mail}
    for proc in (web, worker):
        proc.terminate()
    for proc in (web, worker):
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, demo_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


class Authenticator:
    """The authenticator app of the demo users: the key each enrolled, and the last time step used."""

    def __init__(self):
        self.keys: dict[str, bytes] = {}
        self.last_step: dict[str, int] = {}

    def enrol(self, email: str, shown_key: str) -> None:
        compact = shown_key.replace(" ", "")
        self.keys[email] = base64.b32decode(compact + "=" * (-len(compact) % 8))

    def code(self, email: str) -> str:
        """A code for a time step not used before (django-otp refuses a step twice)."""
        while True:
            step = int(time.time()) // 30
            if step > self.last_step.get(email, -1):
                break
            time.sleep(0.5)
        self.last_step[email] = step
        generator = TOTP(self.keys[email], step=30, t0=0, digits=6, drift=0)
        generator.time = step * 30
        return f"{generator.token():06d}"


AUTHENTICATOR = Authenticator()


def second_factor(page, base: str, email: str) -> list[str]:
    """Finish signing in: enrol an authenticator app if asked (return the recovery codes), or enter a code."""
    codes: list[str] = []
    if "/accounts/two-factor/setup/" in page.url:
        AUTHENTICATOR.enrol(email, page.inner_text("#totp-secret"))
        page.fill("input[name=code]", AUTHENTICATOR.code(email))
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/accounts/two-factor/recovery-codes/*")
        codes = [li.inner_text().strip() for li in page.query_selector_all("#recovery-codes li")]
        # In English or Chinese (tests/e2e/test_chinese.py signs in with a Chinese browser).
        page.locator("a, button").filter(has_text=re.compile("I have saved them|我已保存")).first.click()
    elif "/accounts/two-factor/verify/" in page.url:
        page.fill("input[name=code]", AUTHENTICATOR.code(email))
        page.click("button[type=submit]")
    return codes


def login(page, base: str, email: str = "owner@demo.paydesk.local") -> list[str]:
    """Sign in with the password and, when asked, the second factor; return recovery codes if enrolled."""
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", "paydesk-demo")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    codes = second_factor(page, base, email)
    page.wait_for_url(f"{base}/")
    return codes
