"""payment_batch_line covers `status` on PostgreSQL and is a plain index on SQLite, with no W040 warning."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from payments.models import Payment
from payments.models.indexes import CoveringIndex


def batch_line_index() -> CoveringIndex:
    return next(i for i in Payment._meta.indexes if i.name == "payment_batch_line")


@pytest.mark.django_db
def test_system_check_on_the_database_prints_no_warning(settings, capsys):
    """Before: SQLite warned models.W040 on every migrate (Index(include=...) it cannot honour)."""
    settings.DEBUG = True
    call_command("check", databases=["default"], fail_level="WARNING")
    assert "W040" not in capsys.readouterr().err


@pytest.mark.django_db
def test_the_index_includes_status_exactly_where_the_database_supports_it():
    sql = str(batch_line_index().create_sql(Payment, connection.SchemaEditorClass(connection)))
    assert '"batch_id", "id"' in sql
    assert ("INCLUDE" in sql) is connection.features.supports_covering_indexes


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgresql_has_the_covering_index_after_the_migrations():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'payment_batch_line'")
        [(definition,)] = cursor.fetchall()
    assert definition.endswith("(batch_id, id) INCLUDE (status)")


def test_a_covering_index_is_declared_with_covering_not_include():
    with pytest.raises(ValueError, match="covering"):
        CoveringIndex(fields=["batch"], include=["status"], name="x")
    index = CoveringIndex(fields=["batch", "id"], covering=["status"], name="payment_batch_line")
    assert index.include == ()
    assert index.deconstruct()[2]["covering"] == ("status",)
