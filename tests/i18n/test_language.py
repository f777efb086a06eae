"""Which language a page speaks: Accept-Language when signed out, the person's saved choice when in."""

import pytest
from django.test import Client
from django.urls import reverse

from merchants.models import UserProfile

pytestmark = pytest.mark.django_db


def signed_in(user, **headers) -> Client:
    client = Client(**headers)
    client.force_login(user)
    return client


def test_a_signed_out_page_follows_accept_language():
    chinese = Client(headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.5"}).get(reverse("login"))
    english = Client(headers={"accept-language": "en-GB,en;q=0.9"}).get(reverse("login"))
    assert "登录 PayDesk" in chinese.content.decode()
    assert chinese["Content-Language"] == "zh-hans"
    assert "Log in to PayDesk" in english.content.decode()


def test_the_navigation_has_a_language_switcher_signed_in_and_out(alice):
    for page in (Client().get(reverse("login")), signed_in(alice).get("/")):
        page = page.content.decode()
        assert 'id="language-switcher"' in page
        assert "简体中文" in page


def test_switching_language_is_remembered_for_the_person_on_every_device(alice):
    laptop = signed_in(alice, headers={"accept-language": "en"})
    answer = laptop.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    assert answer.status_code == 302
    assert UserProfile.objects.get(user=alice).language == "zh-hans"
    assert "退出登录" in laptop.get("/").content.decode()
    # Another device, an English browser, no language cookie: the saved choice wins.
    phone = signed_in(alice, headers={"accept-language": "en-US,en;q=0.9"})
    page = phone.get("/").content.decode()
    assert "退出登录" in page
    assert "Log out" not in page
    # Back to English, on the phone: the laptop's next sign-in speaks English too.
    phone.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert "Log out" in signed_in(alice, headers={"accept-language": "zh-CN"}).get("/").content.decode()


def test_an_unknown_language_changes_nothing(alice):
    client = signed_in(alice)
    client.post(reverse("set_language"), {"language": "xx", "next": "/"})
    assert not UserProfile.objects.filter(user=alice).exists()
    assert "Log out" in client.get("/").content.decode()


def test_a_person_who_never_chose_follows_the_browser(bob):
    page = signed_in(bob, headers={"accept-language": "zh-Hans"}).get("/").content.decode()
    assert "退出登录" in page
