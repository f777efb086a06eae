"""A permission sweep (issue 11): every dashboard URL, as each persona, answers the expected status.

The settings pages for API keys and the team are the owners' pages of the
accounts app (issue 10); they are swept here too (SETTINGS_GET, SETTINGS_POST_ONLY).

Personas: owner (alice), operator (bob), approver (carol), viewer (vic), a user
of another merchant (mallory: another merchant's object is a 404) and anonymous
(sent to the login page). POST-only URLs answer 405 to a GET whoever asks.
A new dashboard URL fails `test_every_dashboard_url_is_in_the_sweep` until it
is added here.
"""

import pytest
from django.test import Client
from django.urls import get_resolver, reverse

from merchants.accounts import team_views
from merchants.models import ApiKey, Membership, WebhookEndpoint
from payments.services.notifications.endpoints import webhook_endpoint_create
from payments.services.payments import payment_create
from tests.factories import MembershipFactory, UserFactory, payment_input
from tests.payments.conftest import login

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media")]

PERSONAS = ("owner", "operator", "approver", "viewer", "other", "anonymous")
OPERATE = {"owner": 200, "operator": 200, "approver": 403, "viewer": 403}
OWNER_ONLY = {"owner": 200, "operator": 403, "approver": 403, "viewer": 403}
# name -> (needs: None | "payment" | "batch" | "endpoint" | "template", expected, or a per-role dict)
GET_URLS = {
    "home": (None, 200),
    "payment_list": (None, 200),
    "payment_export_csv": (None, 200),
    "approvals": (None, 200),
    "payment_new": (None, OPERATE),
    "payment_detail": ("payment", 200),
    "payment_status": ("payment", 200),
    "payment_cancel": ("payment", OPERATE),
    "payment_refund": ("payment", {"owner": 302, "operator": 302, "approver": 403, "viewer": 403}),
    "batch_list": (None, 200),
    "batch_new": (None, OPERATE),
    "batch_detail": ("batch", 200),
    "batch_progress": ("batch", 200),
    "batch_approve": ("batch", 200),
    "batch_payments": ("batch", 200),
    "batch_errors_csv": ("batch", 200),
    "batch_results_csv": ("batch", 200),
    "batch_pain002": ("batch", 200),
    "batch_bank_file": ("batch", 404),  # a card batch has no bank file
    "bank_report_list": (None, 200),
    "funding_account_list": (None, 200),
    "webhook_endpoint_list": (None, 200),
    "webhook_endpoint_detail": ("endpoint", 200),
    "notification_list": (None, 200),
    "notification_preferences": (None, 200),
    "blocklist": (None, 200),  # every member sees it; owners and approvers change it (a POST)
    "batch_template": ("template", 200),  # the Chinese CSV template: the same for every merchant
    "merchant_profile": (None, OWNER_ONLY),  # a change also needs a fresh second factor
    "my_notifications": (None, 200),  # every member: their own choices
}
POST_ONLY = {
    "payment_retry": "payment",
    "batch_cancel": "batch",
    "batch_request_approval": "batch",
    "switch_merchant": None,
    "funding_account_action": "funding",
    "webhook_endpoint_rotate": "endpoint",
    "webhook_endpoint_toggle": "endpoint",
    "webhook_endpoint_test": "endpoint",
    "webhook_endpoint_delete": "endpoint",
    "delivery_redeliver": "delivery",
    "notification_read": None,
    "payment_reveal": "payment",
}


# The owners' settings pages (merchants/accounts/urls.py), linked from the dashboard's Settings menu.
SETTINGS_GET = {
    "accounts:api_keys": (None, OWNER_ONLY),
    "accounts:team": (None, OWNER_ONLY),
    "accounts:audit_log": (None, OWNER_ONLY),
    "accounts:audit_log_csv": (None, OWNER_ONLY),
}
SETTINGS_POST_ONLY = {
    "accounts:api_key_new": [],
    "accounts:api_key_revoke": ["x"],
    "accounts:team_member": [1],
}


def _namespaced(resolver) -> set[str]:
    names = set()
    for ns, (_prefix, sub) in resolver.namespace_dict.items():
        if ns == "dashboard":
            names |= {f"dashboard:{n}" for n in sub.reverse_dict if isinstance(n, str)}
    return names


def test_every_dashboard_url_is_in_the_sweep():
    names = {n.split(":", 1)[1] for n in _namespaced(get_resolver())}
    assert names == set(GET_URLS) | set(POST_ONLY)


def test_every_owners_settings_page_is_in_the_sweep():
    owners = set()
    for pattern in get_resolver().namespace_dict["accounts"][1].url_patterns:
        view = pattern.callback
        if getattr(view, "__module__", "") == team_views.__name__ and view.__name__ != "invitation_accept":
            owners.add(f"accounts:{pattern.name}")
    assert owners == set(SETTINGS_GET) | set(SETTINGS_POST_ONLY)


@pytest.fixture
def world(alice, bob, carol, mallory, merchant_a, uploaded, sandbox_wire):
    vic = UserFactory(username="vic@a.example")
    MembershipFactory(user=vic, merchant=merchant_a, role=Membership.Role.VIEWER)
    payment = payment_create(merchant=merchant_a, data=payment_input(reference="SWEEP"), submit=False)
    batch = uploaded()
    endpoint = webhook_endpoint_create(merchant=merchant_a, url="https://hooks.example/a")[0]
    clients = {
        "owner": login(alice),
        "operator": login(bob),
        "approver": login(carol),
        "viewer": login(vic),
        "other": login(mallory),
        "anonymous": Client(),
    }
    objects = {
        "payment": payment.public_id,
        "batch": batch.public_id,
        "endpoint": endpoint.public_id,
        "template": ["zh-hans", "csv"],
    }
    return clients, objects


def _expected(persona: str, needs, rule) -> int:
    if persona == "anonymous":
        return 302
    if persona == "other":
        return 404 if needs in ("payment", "batch", "endpoint") else 200
    if isinstance(rule, dict):
        return rule[persona]
    return rule


def test_every_page_answers_each_persona_as_expected(world):
    clients, objects = world
    wrong = []
    pages = {f"dashboard:{name}": rule for name, rule in GET_URLS.items()} | SETTINGS_GET
    for name, (needs, rule) in pages.items():
        args = objects[needs] if needs else []
        url = reverse(name, args=args if isinstance(args, list) else [args])
        for persona in PERSONAS:
            got = clients[persona].get(url).status_code
            want = _expected(persona, needs, rule)
            if persona == "other" and name in SETTINGS_GET:
                want = 200  # mallory owns her own merchant
            if persona == "anonymous":
                response = clients[persona].get(url)
                if got == 302 and "/accounts/login/" not in response["Location"]:
                    got = -1
            if got != want:
                wrong.append((name, persona, got, want))
    assert not wrong, wrong


def test_post_only_urls_refuse_a_get(world):
    clients, _objects = world
    assert WebhookEndpoint.objects.exists()
    for name in POST_ONLY:
        pattern = get_resolver().namespace_dict["dashboard"][1].reverse_dict[name][0][0][1]
        url = reverse(f"dashboard:{name}", args=["x"] * len(pattern))
        for persona in ("owner", "anonymous"):
            assert clients[persona].get(url).status_code == 405, (name, persona)
    for name, args in SETTINGS_POST_ONLY.items():
        for persona in ("owner", "anonymous"):
            assert clients[persona].get(reverse(name, args=args)).status_code == 405, (name, persona)


def test_only_owners_may_post_to_the_settings_pages(world, key_a):
    clients, _objects = world
    key = ApiKey.objects.get()
    bob_id = Membership.objects.get(role=Membership.Role.OPERATOR).user_id
    posts = {
        "accounts:api_key_new": ([], {"name": "x", "scopes": ["read"]}),
        "accounts:api_key_revoke": ([key.public_id], {}),
        "accounts:team_member": ([bob_id], {"role": "viewer"}),
    }
    assert set(posts) == set(SETTINGS_POST_ONLY)
    for name, (args, data) in posts.items():
        for persona in ("operator", "approver", "viewer"):
            assert clients[persona].post(reverse(name, args=args), data).status_code == 403, (name, persona)
        response = clients["anonymous"].post(reverse(name, args=args), data)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], name
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().revoked_at is None
    assert Membership.objects.get(user_id=bob_id).role == Membership.Role.OPERATOR
