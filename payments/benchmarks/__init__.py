"""Benchmarks run by `manage.py benchmark <name>`.

Each module here has `add_arguments(parser)` and `run(cmd, options)`.

Every figure is printed beside a baseline measured in the same run, with their ratio;
the last line is a one-line summary. Only ratios count on shared, noisy machines.
"""

import os
from urllib.parse import urlsplit, urlunsplit


def server_url(given: str) -> str:
    """The PostgreSQL server a benchmark creates its database on: `given`, DATABASE_URL's, or local."""
    url = given or os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    return url


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def server_execute(url: str, sql: str) -> None:
    """Run one statement (CREATE or DROP DATABASE) on the server's maintenance database."""
    import psycopg

    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)


def ratio_line(label: str, ours: float, baseline: float, unit: str, higher_is_better: bool = True) -> str:
    ratio = ours / baseline if baseline else float("inf")
    better = "higher is better" if higher_is_better else "lower is better"
    return (
        f"{label:<38} ours {ours:>12,.1f} {unit:<8} baseline {baseline:>12,.1f} {unit:<8} "
        f"ratio {ratio:6.2f} ({better})"
    )
