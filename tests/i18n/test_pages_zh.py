"""Every dashboard page in zh-Hans, as each persona: no English UI word outside data.

The pages are found from the dashboard's URL patterns, so a new page is swept as soon as it exists
(a page whose arguments this test cannot fill fails it: add them to ARGUMENTS). Data (references,
names, ids, codes in `mono`/`code` elements, the language switcher's language names) is left out
of the check; everything else a person reads, including aria-label, title and placeholder, is in.
"""

import re
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, reverse

from merchants.accounts import urls as accounts_urls
from merchants.models import ApiKey, FundingAccount, Membership, Merchant, WebhookEndpoint
from payments import urls as dashboard_urls
from payments.models import Delivery, Notification, Payment, PaymentBatch
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

# Words of PayDesk's English interface; any of them in a Chinese page is an untranslated string.
ENGLISH_UI_WORDS = [
    "Payments", "Payment", "Batches", "Batch", "Status", "Amount", "New payment", "Approve", "Approved",
    "Settings", "Log out", "Log in", "Reference", "Currency", "Method", "Beneficiary", "Upload", "Refund",
    "Refunds", "Cancel", "Retry", "Webhooks", "Webhook endpoints", "Notifications", "Preferences",
    "Created", "Processing", "Succeeded", "Failed", "Completed", "Validated", "Pending", "Rejected",
    "Total", "Totals", "Download", "Downloads", "Filter", "Previous", "Next", "Save", "Delete", "Enable",
    "Disable", "Events", "Event", "Timeline", "Funding", "Bank", "Account", "Report", "Rows", "Line",
    "Column", "Code", "Name", "Description", "Owner", "Operator", "Approver", "Viewer", "Merchant",
    "Menu", "Close", "Language", "Payouts", "Outcome", "Progress", "Validation", "Encoding", "Format",
    "Size", "Copy", "Add", "Edit", "Mark", "unread", "optional", "default", "disabled", "Expires",
    "Waiting", "Sandbox", "Card", "Bank transfer", "Alipay", "WeChat Pay", "On hold", "Requires action",
    "Partially refunded", "Refunded", "Reversed", "Cancelled", "Home", "Overview", "Inbox", "Export",
    "Search", "Team", "Keys", "Profile", "Invite", "Revoke", "Confirm", "Review", "Back", "Send", "ago",
]  # fmt: skip
LONGEST_FIRST = sorted(ENGLISH_UI_WORDS, key=len, reverse=True)
WORD = re.compile(r"\b(" + "|".join(re.escape(w) for w in LONGEST_FIRST) + r")\b")
# Names that stay as they are in Chinese text (a specification's name).
PROPER_NAMES = {"Standard Webhooks"}
SKIPPED_TAGS = {"script", "style", "code", "pre", "svg"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
ATTRIBUTES = ("aria-label", "title", "placeholder", "alt")


class VisibleText(HTMLParser):
    """Collect what a person reads, leaving out data marked as such."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []
        self.texts: list[str] = []

    def _skipping(self) -> bool:
        return any(self.stack)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        data = (
            tag in SKIPPED_TAGS
            or "mono" in classes
            or attrs.get("id") == "language-switcher"
            or attrs.get("data-i18n") == "data"
        )
        if not self._skipping() and not data:
            self.texts.extend(attrs[name] for name in ATTRIBUTES if attrs.get(name))
            if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
                self.texts.append(attrs["value"])
        if tag not in VOID:
            self.stack.append(data)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not self._skipping() and data.strip():
            self.texts.append(data.strip())


def english_words(html: str, data: set[str]) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    found = []
    for text in parser.texts:
        for value in sorted(data, key=len, reverse=True):  # a whole title before a name inside it
            if value:
                text = text.replace(value, " ")
        found.extend(f"{m.group(0)!r} in {text[:80]!r}" for m in WORD.finditer(text))
    return found


@pytest.fixture
def demo(sandbox_wire, settings, django_capture_on_commit_callbacks):
    settings.DEBUG = True
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", verbosity=0, stdout=open("/dev/null", "w"))  # noqa: SIM115
    merchant = Merchant.objects.get(slug="demo")
    viewer = UserFactory(username="viewer@demo.paydesk.local")
    MembershipFactory(user=viewer, merchant=merchant, role=Membership.Role.VIEWER)
    WebhookEndpoint.objects.get_or_create(merchant=merchant, url="https://hooks.example.com/paydesk")
    return merchant


def personas(merchant) -> dict[str, object]:
    return {m.role: m.user for m in Membership.objects.filter(merchant=merchant).select_related("user")}


def arguments(merchant) -> dict[str, list[str]]:
    """Values for the dashboard's URL arguments: one object of each kind, of the demo merchant."""
    payments = Payment.objects.filter(merchant=merchant)
    failed = payments.filter(status="failed").first()
    return {
        "payment": [p.public_id for p in (payments.first(), failed) if p is not None],
        "batch": [b.public_id for b in PaymentBatch.objects.filter(merchant=merchant)],
        "webhook_endpoint": [e.public_id for e in WebhookEndpoint.objects.filter(merchant=merchant)],
        "funding_account": [a.public_id for a in FundingAccount.objects.filter(merchant=merchant)],
        "delivery": [d.public_id for d in Delivery.objects.filter(merchant=merchant)[:1]],
        "api_key": [k.public_id for k in ApiKey.objects.filter(merchant=merchant)[:1]],
    }


def page_urls(merchant) -> list[str]:
    """Every GET page of the dashboard that answers HTML, with each kind of object."""
    values = arguments(merchant)
    # The account pages (sign-in and security, team, API keys, audit log) that take no argument.
    urls = [
        reverse(f"accounts:{p.name}")
        for p in accounts_urls.urlpatterns
        if not p.pattern.converters and not str(p.pattern).endswith(".csv")
    ]
    for pattern in dashboard_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        name = pattern.name
        if any(
            name.endswith(s)
            for s in ("_csv", "_xlsx", "_json", "_pain002", "_bank_file", "_template", "_status")
        ):
            continue  # files and JSON, not pages
        params = list(pattern.pattern.converters)
        if not params:
            urls.append(reverse(f"dashboard:{name}"))
            continue
        if params != ["public_id"]:
            continue  # actions (POST only): their answers are redirects
        kind = next((k for k in sorted(values, key=len, reverse=True) if name.startswith(k)), None)
        assert kind is not None, f"add the objects of dashboard:{name} to arguments()"
        urls.extend(reverse(f"dashboard:{name}", args=[public_id]) for public_id in values[kind])
    return urls


def test_every_dashboard_page_is_chinese_for_every_persona(demo):
    user_model = get_user_model()
    data = {p.reference for p in Payment.objects.all()} | {p.beneficiary_name for p in Payment.objects.all()}
    data |= {b.name for b in PaymentBatch.objects.all()}
    data |= set(user_model.objects.values_list("username", flat=True))
    data |= {a.name for a in FundingAccount.objects.all()} | {demo.name}
    data |= PROPER_NAMES
    # Stored in-app entries are written once, in the language of their reader at that time (the
    # seeded team never chose one): data here; tests/i18n/test_notifications_zh.py covers them.
    data |= set(Notification.objects.values_list("title", flat=True))
    data |= set(Notification.objects.values_list("body", flat=True))
    problems = []
    pages = 0
    seen: dict[str, int] = {}
    for role, user in personas(demo).items():
        client = Client(headers={"accept-language": "zh-CN,zh;q=0.9"})
        client.force_login(user)
        for url in page_urls(demo):
            answer = client.get(url)
            if answer.status_code in (302, 403, 405):
                continue  # not this persona's page, or an action
            assert answer.status_code == 200, (role, url, answer.status_code)
            assert answer["Content-Language"] == "zh-hans"
            pages += 1
            seen[role] = seen.get(role, 0) + 1
            problems.extend(f"{role} {url}: {word}" for word in english_words(answer.content.decode(), data))
    assert pages > 30
    # Every persona saw pages of its own (none was sent away from all of them, e.g. to set up 2FA).
    assert all(seen.get(role, 0) >= 10 for role in personas(demo)), seen
    assert not problems, "\n".join(problems)


def test_the_sign_in_page_is_chinese():
    page = Client(headers={"accept-language": "zh-Hans"}).get(reverse("login")).content.decode()
    assert not english_words(page, set())


def test_the_sweep_finds_an_english_word():
    page = '<p>总计</p><button aria-label="Close">x</button><span class="mono">Payment</span>'
    assert english_words(page, set()) == ["'Close' in 'Close'"]
    assert english_words("<td>Status</td>", set()) == ["'Status' in 'Status'"]
