"""`manage.py benchmark dashboard` end to end on PostgreSQL, at a tiny size (timings are not asserted)."""

import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PAGES = (
    "home, 7 days",
    "home, 30 days",
    "export CSV, status=failed",
    "export CSV, all payments",
    "export XLSX, status=failed",
    "export XLSX, all payments",
    "payment list, page 1",
    "payment list, status=failed",
    "payment list, search by reference",
    "payment list, page 40",
    "payment detail",
    "batch list, page 1",
    "batch detail (",
    "batch payments, page 1",
    "notifications",
)


def test_the_benchmark_prints_a_ratio_line_per_page_and_a_summary_and_drops_its_database(db):
    assert connection.vendor == "postgresql", "run with DATABASE_URL=postgres://..."
    name = f"{connection.settings_dict['NAME']}_dashbench"
    result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "benchmark", "dashboard", "--payments", "2000", "--rounds", "1"]
        + ["--db-name", name],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("Seeded 2,000 payments") for line in lines), result.stdout
    for label in PAGES:
        found = [line for line in lines if line.startswith(label)]
        assert len(found) == 1, (label, result.stdout)
        assert re.search(
            r"ours +[\d,.]+ ms +baseline +[\d,.]+ ms +ratio +[\d.]+ \(lower is better\)", found[0]
        )
        assert re.search(r"SQL \d+ queries [\d.]+ ms vs \d+$", found[0]), found[0]
    assert re.match(r"dashboard: 2,000 payments, 15 pages; slowest .+ ms = [\d.]+x", lines[-1]), lines[-1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [name])
        assert cursor.fetchone()[0] == 0
