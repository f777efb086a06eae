"""CI gives the same answer twice (issue 17): what makes each step deterministic stays in place.

The seen failure: the Schemathesis step failed on a clean clone of a commit
that had passed, with the same seed, because the run had a time budget
(`--max-time`: more requests on a faster machine), a per-checkout cache
(`.schemathesis/`) and concurrent workers.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

from hypothesis import settings as hypothesis_settings

ROOT = Path(__file__).resolve().parents[1]


def test_schemathesis_runs_deterministically_from_its_config():
    config = tomllib.loads((ROOT / ".ci" / "schemathesis.toml").read_text())
    assert "max-time" not in config
    assert config["workers"] == 1
    assert config["generation"]["deterministic"] is True
    assert config["generation"]["database"] == "none"
    assert config["cache"] == {"enabled": False}
    script = (ROOT / ".ci" / "schemathesis").read_text()
    assert "--config-file .ci/schemathesis.toml" in script
    assert '--seed "$SCHEMATHESIS_SEED"' in script
    assert not re.search(r"--max-time|--workers|-w ", script)


def test_every_ci_step_sources_the_fixed_environment():
    env = subprocess.run(
        ["sh", "-c", ". .ci/env.sh && env"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert {"PYTHONHASHSEED=0", "TZ=UTC", "LC_ALL=C.UTF-8", "SCHEMATHESIS_SEED=20261128"} <= set(env)
    assert any(line.startswith("CI=") for line in env)
    assert ". .ci/env.sh" in (ROOT / ".ci" / "run").read_text()
    assert ". ./.ci/env.sh" in (ROOT / "Makefile").read_text()


def test_the_ci_hypothesis_profile_is_derandomized_without_a_database_or_deadline():
    profile = hypothesis_settings.get_profile("ci")
    assert profile.derandomize is True
    assert profile.database is None
    assert profile.deadline is None
    if os.environ.get("CI"):
        assert hypothesis_settings.default.derandomize is True
