"""Settings fail closed: DEBUG is off unless set, and with it off no development default is accepted.

A value that cannot be read is a start-up error that names its variable.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from tests.config.conftest import production_secrets, run_manage

DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"


def production(**changes: str | None) -> dict[str, str]:
    """A minimal environment PayDesk accepts with DEBUG off; a None change removes the variable."""
    env = {"DEBUG": "0", "PAYDESK_WEBHOOK_ALLOW_PRIVATE": "0", **production_secrets()}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def test_debug_is_off_unless_set(load_settings):
    env = production()
    del env["DEBUG"]
    assert load_settings(env)["DEBUG"] is False


def test_debug_on_runs_on_the_development_defaults(load_settings):
    settings = load_settings({"DEBUG": "1"})
    assert settings["SECRET_KEY"] == DEV_SECRET_KEY
    assert settings["SANDBOX_GATEWAY_SECRET"] == "sandbox-dev-secret"
    assert settings["PAYDESK_WEBHOOK_ALLOW_PRIVATE"] is True
    Fernet(settings["FIELD_ENCRYPTION_KEY"])  # a usable key, derived from the dev SECRET_KEY


def dev_field_key() -> str:
    digest = hashlib.sha256(b"paydesk-field-encryption:" + DEV_SECRET_KEY.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SECRET_KEY", None),
        ("SECRET_KEY", DEV_SECRET_KEY),
        ("SANDBOX_GATEWAY_SECRET", None),
        ("SANDBOX_GATEWAY_SECRET", "sandbox-dev-secret"),
        ("FIELD_ENCRYPTION_KEY", None),
        ("FIELD_ENCRYPTION_KEY", "dev"),
        ("PAYDESK_WEBHOOK_ALLOW_PRIVATE", None),
    ],
    ids=["secret-unset", "secret-dev", "sandbox-unset", "sandbox-dev", "field-unset", "field-dev", "private"],
)
def test_debug_off_refuses_a_missing_or_development_value(load_settings, variable, value):
    if value == "dev":
        value = dev_field_key()
    with pytest.raises(ImproperlyConfigured, match=variable):
        load_settings(production(**{variable: value}))


def test_debug_off_starts_with_its_own_values(load_settings):
    settings = load_settings(production())
    assert settings["DEBUG"] is False and settings["PAYDESK_WEBHOOK_ALLOW_PRIVATE"] is False
    assert settings["SESSION_COOKIE_SECURE"] and settings["CSRF_COOKIE_SECURE"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("PAYDESK_BATCH_CHUNK_SIZE", "1k"),
        ("PAYDESK_BATCH_CHUNK_SIZE", "0"),
        ("Q_WORKERS", "-1"),
        ("SANDBOX_CALLBACK_DELAY", "soon"),
        ("PAYDESK_GATEWAY_TIMEOUT", "nan"),
        ("SECURE_HSTS_SECONDS", "a year"),
        ("SECURE_SSL_REDIRECT", "sometimes"),
        ("SECURE_PROXY_SSL_HEADER", "https"),
        ("PAYDESK_API_RATE", "fast"),
        ("LOG_LEVEL", "LOUD"),
        ("TIME_ZONE", "Mars/Olympus"),
        ("DATABASE_URL", "mongo://db/paydesk"),
        ("EMAIL_URL", "smtp://mail.example.com:port"),
        ("EMAIL_URL", "pigeon://loft"),
    ],
)
def test_an_unreadable_value_is_a_start_up_error_naming_its_variable(load_settings, variable, value):
    with pytest.raises(ImproperlyConfigured, match=variable):
        load_settings({"DEBUG": "1", variable: value})


def test_tls_settings_are_off_unless_set(load_settings):
    settings = load_settings(production())
    assert settings["SECURE_SSL_REDIRECT"] is False
    assert settings["SECURE_HSTS_SECONDS"] == 0
    assert settings["SECURE_PROXY_SSL_HEADER"] is None


def test_tls_settings_come_from_the_environment(load_settings):
    settings = load_settings(
        production(
            SECURE_SSL_REDIRECT="1",
            SECURE_HSTS_SECONDS="31536000",
            SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
            SECURE_HSTS_PRELOAD="1",
            SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto,https",
        )
    )
    assert settings["SECURE_SSL_REDIRECT"] is True
    assert settings["SECURE_HSTS_SECONDS"] == 31536000
    assert settings["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and settings["SECURE_HSTS_PRELOAD"]
    assert settings["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert settings["SECURE_REDIRECT_EXEMPT"] == [r"^healthz$"]


def test_manage_py_refuses_a_development_default_in_one_line(tmp_path):
    """What an operator sees: the variable to fix, no traceback, a failing exit status."""
    env = production(SECRET_KEY=None, DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")
    del env["DEBUG"]  # forgetting DEBUG is the case that used to run with debug pages and dev secrets
    result = run_manage("check", env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "PayDesk cannot start: SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for local development)."
    )
