"""Configuration mistakes are system check errors at start-up naming their variable (payments/checks.py)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from payments.checks import check_gateway_routes, check_urls
from payments.gateways import get_gateway
from tests.config.conftest import run_manage


def ids(messages) -> list[tuple[str, str]]:
    return [(m.id, m.msg) for m in messages]


def test_the_default_configuration_passes_every_check(settings):
    settings.DEBUG = True  # as `make run` runs (pytest-django turns DEBUG off in tests)
    assert check_gateway_routes() == []
    assert check_urls() == []
    call_command("check", fail_level="WARNING")


def test_a_route_to_an_unknown_gateway_is_an_error_naming_the_variable(settings):
    settings.DEBUG = True
    settings.PAYDESK_GATEWAY_ROUTES = {**settings.PAYDESK_GATEWAY_ROUTES, "bank_transfer": "nope"}
    [(check_id, message)] = ids(check_gateway_routes())
    assert check_id == "paydesk.E001"
    assert message.startswith("PAYDESK_GATEWAY_BANK_TRANSFER='nope' names no gateway")
    with pytest.raises(SystemCheckError, match="PAYDESK_GATEWAY_BANK_TRANSFER"):
        call_command("check")


def test_a_route_to_a_gateway_without_its_settings_is_an_error(settings):
    settings.PAYDESK_GATEWAY_ROUTES = {**settings.PAYDESK_GATEWAY_ROUTES, "alipay": "alipay"}
    settings.PAYDESK_GATEWAY_URLS = {**settings.PAYDESK_GATEWAY_URLS, "alipay": {"live": "https://a.example"}}
    settings.PAYDESK_RECONCILE = {k: v for k, v in settings.PAYDESK_RECONCILE.items() if k != "alipay"}
    found = ids(check_gateway_routes())
    assert (
        "paydesk.E002",
        "PAYDESK_ALIPAY_SANDBOX_URL is not set (the gateway of PAYDESK_GATEWAY_ALIPAY).",
    ) in found
    assert any(m.startswith("PAYDESK_RECONCILE has no query_after") for _, m in found)


def test_a_provider_gateway_needs_a_public_url_it_can_call_back_with_debug_off(settings):
    settings.DEBUG = False
    settings.SILENCED_SYSTEM_CHECKS = ["paydesk.W001"]
    settings.PAYDESK_GATEWAY_ROUTES = {**settings.PAYDESK_GATEWAY_ROUTES, "paypal": "paypal"}
    settings.PAYDESK_PUBLIC_URL = "http://127.0.0.1:8000"
    errors = [m for m in ids(check_gateway_routes()) if m[0] == "paydesk.E002"]
    assert errors == [
        (
            "paydesk.E002",
            "PAYDESK_PUBLIC_URL points at this machine (127.0.0.1), where paypal cannot send callbacks "
            "(the gateway of PAYDESK_GATEWAY_PAYPAL).",
        )
    ]
    settings.PAYDESK_PUBLIC_URL = "https://paydesk.example.com"
    assert [m for m in ids(check_gateway_routes()) if m[0] == "paydesk.E002"] == []


def test_the_sandbox_reports_a_missing_signing_secret(settings):
    settings.SANDBOX_GATEWAY_SECRET = ""
    assert get_gateway("sandbox").settings_problems() == [
        ("SANDBOX_GATEWAY_SECRET", "is not set: the sandbox signs its callbacks with it")
    ]


def test_sandbox_routes_with_debug_off_warn_unless_accepted(settings):
    settings.DEBUG = False
    [(check_id, message)] = ids(check_gateway_routes())
    assert check_id == "paydesk.W001"
    assert "(PAYDESK_GATEWAY_CARD, PAYDESK_GATEWAY_ALIPAY" in message
    settings.SILENCED_SYSTEM_CHECKS = ["paydesk.W001"]
    call_command("check", fail_level="WARNING")


@pytest.mark.parametrize(
    ("setting", "value", "variable"),
    [
        ("PAYDESK_PUBLIC_URL", "paydesk.example.com", "PAYDESK_PUBLIC_URL"),
        ("PAYDESK_PUBLIC_URL", "https://pay desk.example.com", "PAYDESK_PUBLIC_URL"),
        ("PAYDESK_PUBLIC_URL", "https://paydesk.example.com:99999", "PAYDESK_PUBLIC_URL"),
        ("PAYDESK_PAYPAL_RETURN_URL", "ftp://shop.example.com/", "PAYDESK_PAYPAL_RETURN_URL"),
        ("TWILIO_API_BASE", "api.twilio.com", "TWILIO_API_BASE"),
        ("REDIS_URL", "http://127.0.0.1:6379/0", "REDIS_URL"),
    ],
)
def test_a_malformed_url_is_an_error_naming_the_variable(settings, setting, value, variable):
    setattr(settings, setting, value)
    [(check_id, message)] = ids(check_urls())
    assert check_id == "paydesk.E003" and message.startswith(f"{variable}=")


def test_a_malformed_gateway_endpoint_url_names_its_variable(settings):
    settings.PAYDESK_GATEWAY_URLS = {
        **settings.PAYDESK_GATEWAY_URLS,
        "paypal": {"live": "api-m.paypal.com", "sandbox": "https://api-m.sandbox.paypal.com"},
    }
    assert [i for i, _ in ids(check_urls())] == ["paydesk.E003"]
    assert ids(check_urls())[0][1].startswith("PAYDESK_PAYPAL_LIVE_URL='api-m.paypal.com' must start with")


def test_the_worker_refuses_to_start_on_an_unknown_gateway(tmp_path):
    """Before: the cluster started and every batch validation failed, leaving batches `validating`."""
    env = {
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "PAYDESK_GATEWAY_BANK_TRANSFER": "nope",
    }
    result = run_manage("qcluster", env=env, timeout=60)
    assert result.returncode == 1
    assert "(paydesk.E001) PAYDESK_GATEWAY_BANK_TRANSFER='nope' names no gateway" in result.stderr
    assert "Q Cluster" not in result.stderr + result.stdout
