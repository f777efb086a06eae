"""`manage.py check --deploy` is clean with the production environment the docs document."""

from __future__ import annotations

from tests.config.conftest import documented_production_env, production_secrets, run_manage


def test_deploy_check_is_clean_with_the_documented_production_environment():
    env = {**documented_production_env(), **production_secrets()}
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_the_documented_environment_runs_with_debug_off_and_real_tls_settings():
    env = documented_production_env()
    assert env["DEBUG"] == "0" and env["PAYDESK_WEBHOOK_ALLOW_PRIVATE"] == "0"
    assert env["SECURE_SSL_REDIRECT"] == "1" and int(env["SECURE_HSTS_SECONDS"]) >= 31536000
    assert not {"SECRET_KEY", "SANDBOX_GATEWAY_SECRET", "FIELD_ENCRYPTION_KEY"} & set(env), "secrets in docs"


def test_deploy_check_warns_when_the_sandbox_serves_payments_with_debug_off():
    env = {**documented_production_env(), **production_secrets(), "SILENCED_SYSTEM_CHECKS": ""}
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env, timeout=120)
    assert result.returncode == 1
    assert "paydesk.W001" in result.stderr
    assert "PAYDESK_GATEWAY_CARD, PAYDESK_GATEWAY_BANK_TRANSFER" in result.stderr
