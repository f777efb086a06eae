"""Helpers to load config/settings.py, or run manage.py, under a chosen environment."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "config" / "settings.py"


def production_secrets() -> dict[str, str]:
    """Fresh secrets of the kind the documentation tells operators to generate."""
    return {
        "SECRET_KEY": "k3Z" + os.urandom(32).hex(),
        "SANDBOX_GATEWAY_SECRET": os.urandom(24).hex(),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }


def documented_production_env() -> dict[str, str]:
    """docs/production.env as `KEY=VALUE` lines (comments and blanks skipped)."""
    env = {}
    for line in (ROOT / "docs" / "production.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


@pytest.fixture
def load_settings(monkeypatch):
    """Execute config/settings.py with exactly `env` (plus PATH) and return its namespace."""

    def load(env: dict[str, str]) -> dict:
        for name in list(os.environ):
            if name not in ("PATH", "HOME", "DJANGO_SETTINGS_MODULE"):
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(SETTINGS))

    return load


def run_manage(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run manage.py in a child process with only `env` (and PATH), as an operator would."""
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
