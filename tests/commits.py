"""Count the statements and commits a block of code makes on the default connection.

A commit is the end of an outermost `transaction.atomic()` block that
committed, or a write statement run in autocommit mode (its own implicit
transaction). Each commit is kept with the statements it made durable, so a
test can tell PayDesk's own commits from the in-process sandbox's (the
gateway's side: a remote gateway makes none in our database).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from django.db import connection

WRITES = ("INSERT", "UPDATE", "DELETE", "WITH")
SANDBOX_TABLES = ("payments_sandboxoperation", "payments_sandboxnotice")


@dataclass
class Commits:
    statements: list[str] = field(default_factory=list)
    commits: list[list[str]] = field(default_factory=list)
    _open: list[str] = field(default_factory=list)

    @property
    def ours(self) -> list[list[str]]:
        """The commits that wrote more than the sandbox's own record."""
        return [c for c in self.commits if not all(any(t in s for t in SANDBOX_TABLES) for s in c)]

    @property
    def sandbox(self) -> list[list[str]]:
        return [c for c in self.commits if c not in self.ours]


def _is_write(sql: str) -> bool:
    head = sql.lstrip().upper()
    if head.startswith("WITH"):
        return any(word in head for word in ("INSERT", "UPDATE", "DELETE"))
    return head.startswith(WRITES)


@contextlib.contextmanager
def count_commits():
    """Yield a Commits record filled while the block runs (transaction=True tests only)."""
    record = Commits()
    original_commit = connection.commit

    def execute(run, sql, params, many, context):
        record.statements.append(sql)
        if connection.in_atomic_block:
            record._open.append(sql)
        elif _is_write(sql):
            record.commits.append([sql])
        return run(sql, params, many, context)

    def commit():
        original_commit()
        if record._open:
            record.commits.append(record._open)
        record._open = []

    connection.commit = commit
    try:
        with connection.execute_wrapper(execute):
            yield record
    finally:
        del connection.commit
