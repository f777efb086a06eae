"""One INSERT for new model rows, with the SQL made once: the hot paths' alternative to save().

`save()` and `bulk_create()` rebuild and recompile an ORM query on every call;
on the real-time payment path that was a large share of the Python per
request. `insert_rows` writes exactly what they would write, with SQL cached
per model and row count.
"""

from collections.abc import Sequence
from functools import lru_cache

from django.db import connection, models


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
