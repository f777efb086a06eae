"""seed_demo fails closed: with DEBUG off it refuses unless told, and never uses a published password."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from merchants.models import Merchant
from payments.demo import DEMO_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(*args: str) -> list[str]:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=StringIO())
    return out.getvalue().splitlines()


def printed_password(lines: list[str], username: str) -> str:
    line = next(line for line in lines if f" {username} " in line)
    return line.rsplit("password: ", 1)[1]


def test_seed_demo_refuses_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--demo-in-production"):
        seed()
    assert not Merchant.objects.exists() and not get_user_model().objects.exists()


def test_a_demo_in_production_gets_random_passwords_printed_once(settings, sandbox_wire):
    """Before: superuser admin / paydesk-demo, whatever DEBUG said."""
    settings.DEBUG = False
    first = seed("--demo-in-production")
    admin = get_user_model().objects.get(username="admin")
    password = printed_password(first, "admin")
    assert admin.is_superuser and admin.check_password(password) and not admin.check_password(DEMO_PASSWORD)
    owner = get_user_model().objects.get(username="owner@demo.paydesk.local")
    assert owner.check_password(printed_password(first, "owner@demo.paydesk.local"))
    assert len({printed_password(first, u) for u in ("admin", "owner@demo.paydesk.local")}) == 2

    again = seed("--demo-in-production")
    assert printed_password(again, "admin") == "(unchanged)"
    admin.refresh_from_db()
    assert admin.check_password(password)


def test_while_debug_the_demo_logins_share_the_published_password(settings, sandbox_wire):
    settings.DEBUG = True
    lines = seed()
    assert printed_password(lines, "admin") == DEMO_PASSWORD
    assert get_user_model().objects.get(username="approver@demo.paydesk.local").check_password(DEMO_PASSWORD)


def test_seed_demo_prints_where_paydesk_is_served(settings, sandbox_wire):
    """Before: http://127.0.0.1:8000/ whatever the port."""
    settings.DEBUG = True
    settings.PAYDESK_PUBLIC_URL = "http://127.0.0.1:8010"
    lines = seed()
    assert "Dashboard: http://127.0.0.1:8010/   Admin: http://127.0.0.1:8010/admin/" in lines
    assert lines[-1].startswith("pdk_")


def test_seed_demo_is_silent_at_verbosity_0(settings, sandbox_wire):
    settings.DEBUG = True
    assert seed("-v", "0") == []
    assert Merchant.objects.filter(slug="demo").exists()
