"""A merchant switches to Chinese, pays in CNY and uploads a GB18030 file with Chinese headers."""

import os
from pathlib import Path

import pytest

from tests.e2e.conftest import login

pytestmark = pytest.mark.e2e
OWNER = "owner@demo.paydesk.local"
SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", "/tmp/paydesk-e2e"))
GB18030_FILE = (
    "参考号,金额,币种,支付方式,收款人姓名,收款账号,备注\r\n"
    "工资-E2E-001,8500.00,欧元,银行转账,张伟,DE89370400440532013000,十一月工资\r\n"
    "工资-E2E-002,9200.50,EUR,银行转账,李娜,FR7630006000011234567890189,十一月工资\r\n"
    "工资-E2E-003,1.234,EUR,银行转账,王芳,DE89370400440532013000,\r\n"
).encode("gb18030")


def shoot(page, name: str) -> None:
    """Screenshots at a laptop's and a phone's width, for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"zh-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})


def logout_label(page) -> str:
    """The label of the account menu's sign-out button (the menu is closed: read its text)."""
    return page.locator("form[action$='/logout/'] button").text_content().strip()


# First: the approver has never chosen a language, so the browser's decides.
def test_a_chinese_browser_sees_the_sign_in_page_and_dashboard_in_chinese(browser, demo_server):
    base = demo_server["url"]
    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/accounts/login/")
    assert page.locator("h1").inner_text() == "登录 PayDesk"
    shoot(page, "login")
    login(page, base, "approver@demo.paydesk.local")  # with its second factor
    nav = page.locator("nav.navbar").inner_text()
    assert "付款" in nav and "批次" in nav
    assert page.locator("#account-menu").is_visible()
    assert logout_label(page) == "退出登录"  # in the account menu
    page.goto(f"{base}/batches/")
    shoot(page, "batches")
    context.close()


def test_switch_to_chinese_pay_in_cny_and_upload_a_chinese_file(browser, demo_server, tmp_path):
    base = demo_server["url"]
    context = browser.new_context(locale="en-US", viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto(f"{base}/accounts/login/")
    assert page.locator("h1").inner_text() == "Log in to PayDesk"
    login(page, base, OWNER)
    assert logout_label(page) == "Log out"

    # The switcher in the navigation: 简体中文, remembered for this person.
    with page.expect_navigation():
        page.select_option("#language-switcher select", "zh-hans")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert logout_label(page) == "退出登录"
    assert page.locator("#nav").get_by_role("link", name="新建付款").is_visible()
    shoot(page, "payments")

    # A CNY payment: the payment page writes the amount in capital numerals.
    page.locator("#nav").get_by_role("link", name="新建付款").click()
    page.fill("input[name=reference]", "E2E-CNY-1")
    page.fill("input[name=amount]", "1234.56")
    page.select_option("select[name=currency]", "CNY")
    page.select_option("select[name=method]", "card")
    page.fill("input[name=beneficiary_name]", "张伟")
    page.fill("input[name=beneficiary_account]", "4000000000001234")
    page.get_by_role("button", name="核对付款").click()
    # The review step (issue 11) writes the amount in capital numerals before anything is sent.
    page.locator("#confirm-send").click()
    page.wait_for_url(f"{base}/payments/pay_*/")
    assert "¥1,234.56" in page.locator("#live").inner_text()
    assert "壹仟贰佰叁拾肆元伍角陆分" in page.locator("#amount-in-words").inner_text()
    page.locator("#payment-status").get_by_text("成功", exact=True).wait_for(timeout=20000)
    shoot(page, "payment")

    # A GB18030 batch file with Chinese headers, method and currency names.
    upload = tmp_path / "十一月工资.csv"
    upload.write_bytes(GB18030_FILE)
    page.goto(f"{base}/batches/new/")
    page.set_input_files("input[name=file]", str(upload))
    page.get_by_role("button", name="上传并校验").click()
    page.wait_for_url(f"{base}/batches/bat_*/")
    page.locator("#batch-status").get_by_text("已校验", exact=True).wait_for(timeout=20000)
    text = page.locator("main").inner_text()
    assert "gb18030" in text
    assert "行错误" in text and "too_many_decimals" in text
    assert "€17,700.50" in text
    shoot(page, "batch")

    # Remembered: a new browser with an English Accept-Language still gets Chinese after signing in.
    other = browser.new_context(locale="en-US").new_page()
    login(other, base, OWNER)
    assert logout_label(other) == "退出登录"
    # And back to English (the other browser tests sign in as the owner too).
    with other.expect_navigation():
        other.select_option("#language-switcher select", "en")
    assert logout_label(other) == "Log out"
    other.context.close()
    context.close()
