"""The few hand-written SQL statements of PayDesk, each tested against the ORM behaviour it replaces.

Everything else is on the ORM. A statement lives here only where a benchmark
shows it pays (figures in docs/benchmarks.md):

- `insert_rows`: one INSERT ... RETURNING with its SQL made once per model and
  row count. `save()`/`bulk_create()` rebuild and compile a query per call; on
  the real-time payment path that was a large share of the Python per request.
- `copy_rows`: COPY FROM STDIN for many new rows (Events and attempts of a
  batch chunk). `bulk_create` binds every value client-side, which costs more
  than the insert itself for wide rows with JSON.
- `values_update`: per-row values for many rows in one UPDATE ... FROM (VALUES).
- Batch ingestion's COPY writer lives with the batch writers
  (payments/services/batches/writers.py) because its text is built per block.

Each function has one portable fallback (bulk_create / bulk_update) used on
SQLite; both paths are tested (tests/payments/test_db.py).
"""

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from django.db import connection, models

# From this many rows on, `insert_many` streams with COPY instead of one INSERT ... RETURNING.
COPY_FROM = 200
# Rows per INSERT statement (SQLite binds at most 32,766 parameters).
INSERT_ROWS_MAX = 500


def insert_many(objs: Sequence[models.Model]) -> None:
    """Insert new rows of one model and set their primary keys, whatever their number.

    Few rows: `insert_rows`. Many (a batch chunk's Events) on PostgreSQL: COPY,
    then one SELECT of the new keys by the rows' public ids, which the caller
    has minted.
    """
    if len(objs) < COPY_FROM or connection.vendor != "postgresql":
        for i in range(0, len(objs), INSERT_ROWS_MAX):
            insert_rows(objs[i : i + INSERT_ROWS_MAX])
        return
    model = type(objs[0])
    copy_rows(model, objs)
    ids = [obj.public_id for obj in objs]
    keys = dict(model.objects.filter(public_id__in=ids).values_list("public_id", "pk"))
    for obj in objs:
        obj.pk = keys[obj.public_id]
        obj._state.adding = False
        obj._state.db = connection.alias


def insert_rows(objs: Sequence[models.Model]) -> None:
    """INSERT new rows of one model in one statement and set their primary keys.

    The rows get exactly what `save()` / `bulk_create()` would write (every concrete
    field's `pre_save`, so auto_now and generated public ids, then `get_db_prep_save`),
    without building an ORM query each time: the SQL is made once per model and row
    count. No signals are sent (the project connects none to these models). Raise
    IntegrityError, with nothing written, if a constraint refuses a row.
    """
    if not objs:
        return
    model = type(objs[0])
    if not connection.features.can_return_rows_from_bulk_insert:
        model.objects.bulk_create(objs)
        return
    fields = _insert_fields(model)
    params = []
    for obj in objs:
        params.extend(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(model, len(objs)), params)
        pks = [row[0] for row in cursor.fetchall()]
    for obj, pk in zip(objs, pks, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


@lru_cache(maxsize=32)
def _insert_fields(model: type[models.Model]) -> list:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


@lru_cache(maxsize=64)
def _insert_sql(model: type[models.Model], rows: int) -> str:
    q = connection.ops.quote_name
    fields = _insert_fields(model)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return "INSERT INTO {} ({}) VALUES {} RETURNING {}".format(  # noqa: S608 - names from the model
        q(model._meta.db_table),
        ", ".join(q(f.column) for f in fields),
        ", ".join([row] * rows),
        q(model._meta.pk.column),
    )


def copy_rows(model: type[models.Model], objs: Sequence[models.Model]) -> bool:
    """Insert many new rows: COPY on PostgreSQL (returns True, no primary keys set), else bulk_create.

    Django's bulk_create binds every value client-side, which costs more than
    the insert itself for wide rows with JSON; COPY streams them.
    """
    if not objs:
        return False
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=1000)
        return False
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    with connection.cursor() as cursor, connection.wrap_database_errors:
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # noqa: S608
            for obj in objs:
                row = []
                for f in fields:
                    value = f.pre_save(obj, True)
                    if f.attname in json_fields and value is not None:
                        value = json.dumps(value, cls=f.encoder, separators=(",", ":"))
                    row.append(value)
                copy.write_row(row)
    return True


def values_update(model, rows: dict[int, dict[str, Any]], fields: Sequence[str]) -> int:
    """Set per-row values of `fields` on many rows in one statement; return the rows matched.

    PostgreSQL: `UPDATE ... FROM (VALUES ...)`; elsewhere Django's bulk_update.
    """
    if not rows:
        return 0
    if connection.vendor != "postgresql":
        objs = []
        for pk, values in rows.items():
            obj = model(pk=pk)
            for f in fields:
                obj.__dict__[model._meta.get_field(f).attname] = values[f]
            objs.append(obj)
        return model.objects.bulk_update(objs, fields, batch_size=500)
    opts = model._meta
    columns = [opts.get_field(f) for f in fields]
    casts = ", ".join(f"%s::{c.db_type(connection)}" for c in columns)
    table = connection.ops.quote_name(opts.db_table)
    sets = ", ".join(
        f"{connection.ops.quote_name(c.column)} = v.{connection.ops.quote_name(c.column)}" for c in columns
    )
    names = ", ".join(connection.ops.quote_name(c.column) for c in columns)
    total = 0
    items = list(rows.items())
    with connection.cursor() as cursor:
        for i in range(0, len(items), 1000):
            part = items[i : i + 1000]
            params: list[Any] = []
            for pk, values in part:
                params.append(pk)
                params.extend(c.get_db_prep_save(values[c.name], connection) for c in columns)
            placeholders = ", ".join(f"(%s::bigint, {casts})" for _ in part)
            cursor.execute(
                f"UPDATE {table} AS t SET {sets} FROM (VALUES {placeholders}) AS v(id, {names}) "  # noqa: S608
                "WHERE t.id = v.id",
                params,
            )
            total += cursor.rowcount
    return total
