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
- `answer_without_transition`: a gateway's answer that moves no status (the
  usual `processing` of a real-time payment) applied in one autocommitted
  statement instead of a five-statement locked transaction.
- `insert_with_children`: a row and its children in one statement (the
  in-process sandbox's record of each real-time payment: 4 statements -> 1).
- `recent_figures` (risk scoring), `fanout_rows` (who an Event goes to) and
  `first_joined` (the API key of a request with its merchant): read on every
  real-time payment or request, where building the query with the ORM cost
  3 ms, 1.5 ms and 1.1 ms of CPU against 0.3 ms for the statement itself.
- Batch ingestion's COPY writer lives with the batch writers
  (payments/services/batches/writers.py) because its text is built per block.

Each function has one portable fallback (bulk_create / bulk_update) used on
SQLite; both paths are tested (tests/payments/test_db.py).
"""

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from psycopg.adapt import PyFormat, Transformer

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


def answer_without_transition(
    *,
    payment_model: type[models.Model],
    attempt_model: type[models.Model],
    payment_id: int,
    attempt_id: int,
    answered: str,
    pending: str,
    outcome: str,
    reference: str,
    response: Any,
    now: Any,
) -> models.Model | None:
    """What the core's locked answer transaction does for an answer that moves no status.

    Lock the payment, mark the attempt answered if it is still `pending`, set
    the payment's gateway reference if it has none, and return the payment as
    it is then; None when the attempt was not pending (someone applied it
    first). The payment is locked before its attempt, the order of every
    other path. PostgreSQL: one statement (a savepoint inside a caller's
    transaction); elsewhere the same with the ORM in a transaction.
    """
    if connection.vendor != "postgresql":
        with transaction.atomic():
            payment = payment_model.objects.select_for_update().get(pk=payment_id)
            marked = attempt_model.objects.filter(pk=attempt_id, status=pending).update(
                status=answered,
                outcome=outcome,
                gateway_reference=reference,
                response=response,
                answered_at=now,
                error="",
            )
            if not marked:
                return None
            if reference and not payment.gateway_reference:
                payment_model.objects.filter(pk=payment_id).update(
                    gateway_reference=reference, updated_at=now
                )
                payment.gateway_reference, payment.updated_at = reference, now
        return payment
    response = attempt_model._meta.get_field("response").get_db_prep_save(response, connection)
    params = [payment_id, answered, outcome, reference, response, now, attempt_id, pending, reference, now]
    params.append(reference or "")
    sql = _answer_sql(payment_model, attempt_model)
    if connection.in_atomic_block:
        with transaction.atomic():
            rows = list(payment_model.objects.raw(sql, params))
    else:
        rows = list(payment_model.objects.raw(sql, params))
    return rows[0] if rows else None


_ANSWER_SQL = """
WITH p AS (SELECT {cols} FROM {payment} WHERE {p_id} = %s FOR UPDATE),
a AS (
    UPDATE {attempt}
    SET {a_status} = %s, {a_outcome} = %s, {a_gateway_reference} = %s, {a_response} = %s,
        {a_answered_at} = %s, {a_error} = ''
    FROM p
    WHERE {attempt}.{a_id} = %s AND {attempt}.{a_payment} = p.{p_id} AND {attempt}.{a_status} = %s
    RETURNING {attempt}.{a_payment}
),
r AS (
    UPDATE {payment} SET {p_gateway_reference} = %s, {p_updated_at} = %s
    FROM a
    WHERE {payment}.{p_id} = a.{a_payment} AND {payment}.{p_gateway_reference} = '' AND %s::text <> ''
    RETURNING {r_cols}
)
SELECT {cols} FROM r
UNION ALL
SELECT {cols} FROM p WHERE EXISTS (SELECT 1 FROM a) AND NOT EXISTS (SELECT 1 FROM r)
"""


@lru_cache(maxsize=4)
def _answer_sql(payment_model: type[models.Model], attempt_model: type[models.Model]) -> str:
    q = connection.ops.quote_name
    names = [q(f.column) for f in payment_model._meta.concrete_fields]
    return _ANSWER_SQL.format(
        payment=q(payment_model._meta.db_table),
        attempt=q(attempt_model._meta.db_table),
        cols=", ".join(names),
        r_cols=", ".join(f"{q(payment_model._meta.db_table)}.{n}" for n in names),
        **{f"a_{f.name}": q(f.column) for f in attempt_model._meta.concrete_fields},
        **{f"p_{f.name}": q(f.column) for f in payment_model._meta.concrete_fields},
    )


# Reads on the hot paths, their SQL built once --------------------------------------------------


def recent_figures(
    model: type[models.Model],
    *,
    merchant_id: int,
    exclude_pk: int | None,
    currency: str,
    account_hash: str,
    since: Any,
    limit: int,
) -> tuple[Any, int, int]:
    """Over a merchant's `limit` most recent rows (newest first by created_at, id; `exclude_pk` left out):
    the average `amount_minor` in `currency`, how many went to the account whose keyed hash is
    `account_hash`, how many since `since`.

    The ORM equivalent: `model.objects.filter(merchant_id=...).exclude(pk=...).order_by("-created_at",
    "-id")[:limit].aggregate(Avg(Case(When(currency=..., then="amount_minor"))), Count(Case(When(
    beneficiary_account_hash=..., then=1))), Count(Case(When(created_at__gte=since, then=1))))`.
    """
    params = [currency, account_hash, connection.ops.adapt_datetimefield_value(since), merchant_id]
    if exclude_pk is not None:
        params.append(exclude_pk)
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(_recent_sql(model, exclude_pk is not None), params)
        usual, known, last_hour = cursor.fetchone()
    return usual, known, last_hour


_RECENT_SQL = """
SELECT AVG(CASE WHEN {currency} = %s THEN {amount_minor} END),
       COUNT(CASE WHEN {beneficiary_account_hash} = %s THEN 1 END),
       COUNT(CASE WHEN {created_at} >= %s THEN 1 END)
FROM (
    SELECT {amount_minor}, {currency}, {beneficiary_account_hash}, {created_at} FROM {table}
    WHERE {merchant} = %s{exclude}
    ORDER BY {created_at} DESC, {id} DESC
    LIMIT %s
) AS recent
"""


@lru_cache(maxsize=4)
def _recent_sql(model: type[models.Model], exclude: bool) -> str:
    q = connection.ops.quote_name
    return _RECENT_SQL.format(
        table=q(model._meta.db_table),
        exclude=f" AND {q(model._meta.pk.column)} <> %s" if exclude else "",
        **{f.name: q(f.column) for f in model._meta.concrete_fields},
    )


def fanout_rows(
    endpoint_model: type[models.Model],
    preference_model: type[models.Model],
    *,
    merchant_ids: Sequence[int],
    endpoint_status: str,
) -> list[tuple[str, int, int, str, list, list | None]]:
    """The merchants' endpoints with `endpoint_status`, then their enabled preferences, each by pk:
    rows of (kind, pk, merchant_id, url, events, recipients); kind is "" for an endpoint, else the
    preference's channel (and url "", recipients its list).

    The ORM equivalent is two querysets: endpoints `.filter(merchant_id__in=..., status=...)
    .order_by("pk")` and preferences `.filter(merchant_id__in=..., enabled=True).order_by("pk")`.
    """
    if not merchant_ids:
        return []
    params = [*merchant_ids, endpoint_status, *merchant_ids, True]
    decode = endpoint_model._meta.get_field("events").from_db_value
    with connection.cursor() as cursor:
        cursor.execute(_fanout_sql(endpoint_model, preference_model, len(merchant_ids)), params)
        rows = cursor.fetchall()
    return [
        (
            kind,
            pk,
            merchant_id,
            url,
            decode(events, None, connection) or [],
            None if kind == "" else decode(recipients, None, connection) or [],
        )
        for kind, pk, merchant_id, url, events, recipients in rows
    ]


_FANOUT_SQL = """
SELECT kind, pk, merchant_id, url, events, recipients FROM (
    SELECT '' AS kind, {e_id} AS pk, {e_merchant} AS merchant_id, {e_url} AS url, {e_events} AS events,
           NULL AS recipients, 0 AS part
    FROM {endpoints} WHERE {e_merchant} IN ({ids}) AND {e_status} = %s
    UNION ALL
    SELECT {p_channel}, {p_id}, {p_merchant}, '', {p_events}, {p_recipients}, 1
    FROM {prefs} WHERE {p_merchant} IN ({ids}) AND {p_enabled} = %s
) AS targets ORDER BY part, pk
"""


@lru_cache(maxsize=64)
def _fanout_sql(endpoint_model: type[models.Model], preference_model: type[models.Model], n: int) -> str:
    q = connection.ops.quote_name
    endpoint, pref = endpoint_model._meta, preference_model._meta
    return _FANOUT_SQL.format(
        ids=", ".join(["%s"] * n),
        endpoints=q(endpoint.db_table),
        prefs=q(pref.db_table),
        **{f"e_{f.name}": q(f.column) for f in endpoint.concrete_fields},
        **{f"p_{f.name}": q(f.column) for f in pref.concrete_fields},
    )


def first_joined(model: type[models.Model], relation: str, *, field: str, value: Any) -> models.Model | None:
    """`model.objects.select_related(relation).filter(**{field: value}).order_by("pk").first()`.

    Its SQL is built once. The related object (a forward foreign key) is attached as select_related would.
    """
    sql, own, related = _joined_query(model, relation, field)
    with connection.cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(own)
    obj = model.from_db(connection.alias, None, _converted(row[:n], own))
    fk = model._meta.get_field(relation)
    other = fk.related_model.from_db(connection.alias, None, _converted(row[n:], related))
    fk.set_cached_value(obj, other)
    return obj


def _converted(values: Sequence[Any], fields: list) -> list:
    out = []
    for value, (col, converters) in zip(values, fields, strict=True):
        for converter in converters:
            value = converter(value, col, connection)
        out.append(value)
    return out


@lru_cache(maxsize=8)
def _joined_query(model: type[models.Model], relation: str, field: str) -> tuple[str, list, list]:
    q = connection.ops.quote_name
    fk = model._meta.get_field(relation)

    def columns(m: type[models.Model]) -> list:
        table = m._meta.db_table
        return [
            (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection))
            for col in (f.get_col(table) for f in m._meta.concrete_fields)
        ]

    own, related = columns(model), columns(fk.related_model)
    table, other = q(model._meta.db_table), q(fk.related_model._meta.db_table)
    select = ", ".join(f"{q(col.alias)}.{q(col.target.column)}" for col, _c in own + related)
    sql = (
        f"SELECT {select} FROM {table} INNER JOIN {other} "  # noqa: S608 - names from the models
        f"ON {table}.{q(fk.column)} = {other}.{q(fk.related_model._meta.pk.column)} "
        f"WHERE {table}.{q(model._meta.get_field(field).column)} = %s "
        f"ORDER BY {table}.{q(model._meta.pk.column)} LIMIT 1"
    )
    return sql, own, related


def insert_with_children(parent: models.Model, children: Sequence[models.Model], fk: str) -> None:
    """Insert `parent` and `children` (whose foreign key `fk` points at it) atomically; set the parent's key.

    On PostgreSQL one statement (the children are inserted from the parent's
    RETURNING); elsewhere a transaction of two inserts. Raise IntegrityError,
    with nothing written, if a constraint refuses a row.
    """
    if connection.vendor != "postgresql" or not children:
        with transaction.atomic():
            parent.save(force_insert=True)
            for child in children:
                setattr(child, fk, parent)
            if children:
                type(children[0]).objects.bulk_create(children)
        return
    parent_fields, child_fields, sql = _with_children_sql(type(parent), type(children[0]), fk, len(children))
    params = [f.get_db_prep_save(f.pre_save(parent, True), connection) for f in parent_fields]
    for child in children:
        params.extend(f.get_db_prep_save(f.pre_save(child, True), connection) for f in child_fields)
    with transaction.atomic():  # a savepoint inside a caller's transaction, else its own
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            parent.pk = cursor.fetchone()[0]
    parent._state.adding = False
    parent._state.db = connection.alias
    for child in children:
        setattr(child, fk, parent)


@lru_cache(maxsize=16)
def _with_children_sql(
    parent_model: type[models.Model], child_model: type[models.Model], fk: str, n: int
) -> tuple[list, list, str]:
    q = connection.ops.quote_name
    parent_fields = [f for f in parent_model._meta.concrete_fields if not f.primary_key]
    link = child_model._meta.get_field(fk)
    child_fields = [f for f in child_model._meta.concrete_fields if not f.primary_key and f is not link]
    pk = q(parent_model._meta.pk.column)
    values = ", ".join(f"%s::{f.db_type(connection)}" for f in parent_fields)
    row = "(" + ", ".join(f"%s::{f.db_type(connection)}" for f in child_fields) + ")"
    aliases = ", ".join(f"c{i}" for i in range(len(child_fields)))
    sql = (
        f"WITH parent AS (INSERT INTO {q(parent_model._meta.db_table)} "  # noqa: S608 - names from the models
        f"({', '.join(q(f.column) for f in parent_fields)}) VALUES ({values}) RETURNING {pk}), "
        f"children AS (INSERT INTO {q(child_model._meta.db_table)} "
        f"({q(link.column)}, {', '.join(q(f.column) for f in child_fields)}) "
        f"SELECT parent.{pk}, {aliases} FROM parent, (VALUES {', '.join([row] * n)}) AS v({aliases})) "
        f"SELECT {pk} FROM parent"
    )
    return parent_fields, child_fields, sql


# COPY (batch ingestion on PostgreSQL: payments/services/batches/writers.py) --------------------


def streams_copy() -> bool:
    """Whether this database ingests with COPY and a second connection (PostgreSQL), else bulk_create."""
    return connection.vendor == "postgresql"


def is_unique_violation(exc: Exception) -> bool:
    """Whether a database error is a unique violation or a deadlock (two writers of the same keys)."""
    if connection.vendor != "postgresql":
        return isinstance(exc, IntegrityError)
    return getattr(exc.__cause__, "sqlstate", None) in ("23505", "40P01")


def copy_statement(model: type[models.Model], fields: Sequence[models.Field]) -> str:
    """`COPY <table> (<columns>) FROM STDIN` for these fields of `model`."""
    q = connection.ops.quote_name
    names = ", ".join(q(f.column) for f in fields)
    return f"COPY {q(model._meta.db_table)} ({names}) FROM STDIN"  # noqa: S608 - names from the model


def existing_values(
    conn: Any, model: type[models.Model], field: str, *, scope: tuple[str, Any], values: list[str]
) -> set[str]:
    """Which of `values` a row of `model` already has in `field` within `scope` (field, value).

    Runs on `conn` (a raw psycopg connection: the caller's, or a second one
    that reads committed rows while the first streams a COPY). The ORM
    equivalent: `set(model.objects.filter(**{scope[0]: scope[1], field + "__in": values})
    .values_list(field, flat=True))`.
    """
    q = connection.ops.quote_name
    meta = model._meta
    column, scope_column = q(meta.get_field(field).column), q(meta.get_field(scope[0]).column)
    sql = f"SELECT {column} FROM {q(meta.db_table)} WHERE {scope_column} = %s AND {column} = ANY(%s)"  # noqa: S608
    param: str | list[str] = values
    joined = ",".join(values)
    if joined and joined.count(",") == len(values) - 1:
        # No value holds a comma (validated references never do): one string, not a list that
        # psycopg would quote element by element.
        sql = sql.replace("ANY(%s)", "ANY(string_to_array(%s, ','))")
        param = joined
    with conn.cursor() as cursor:
        cursor.execute(sql, [scope[1], param])
        return {r[0] for r in cursor.fetchall()}


def known_values(
    conn: Any, model: type[models.Model], field: str, *, scope: tuple[str, Any], values: list[str]
) -> set[str]:
    """Which of `values` (none holding a comma) a row of `model` has in `field` within `scope`: one
    index probe per value (EXISTS), however many rows each has, unlike `existing_values`. Runs on
    `conn` as `existing_values` does. The ORM equivalent: `set(model.objects.filter(**{scope[0]:
    scope[1], field + "__in": values}).values_list(field, flat=True).distinct())`.
    """
    q = connection.ops.quote_name
    meta = model._meta
    column, scope_column = q(meta.get_field(field).column), q(meta.get_field(scope[0]).column)
    sql = (
        "SELECT v FROM unnest(string_to_array(%s, ',')) AS v WHERE EXISTS "  # noqa: S608
        f"(SELECT 1 FROM {q(meta.db_table)} WHERE {scope_column} = %s AND {column} = v)"
    )
    with conn.cursor() as cursor:
        cursor.execute(sql, [",".join(values), scope[1]])
        return {r[0] for r in cursor.fetchall()}


def recent_counts(
    conn: Any, model: type[models.Model], *, merchant_id: int, hashes: list[str], since: Any
) -> dict[str, int]:
    """How many of the merchant's rows to each of `hashes` (account keyed hashes, hex) were created
    since `since` (accounts with none left out); the planner may read the merchant's recent rows
    (index payment_merchant_recent) or each account's (payment_merchant_account). Runs on `conn` as
    `existing_values` does. The ORM equivalent: `model.objects.filter(merchant_id=...,
    created_at__gte=since, beneficiary_account_hash__in=hashes).values("beneficiary_account_hash")
    .annotate(n=Count("id"))`.
    """
    q = connection.ops.quote_name
    meta = model._meta
    column = q(meta.get_field("beneficiary_account_hash").column)
    merchant, created = q(meta.get_field("merchant").column), q(meta.get_field("created_at").column)
    sql = (
        f"SELECT {column}, COUNT(*) FROM {q(meta.db_table)} "  # noqa: S608
        f"WHERE {merchant} = %s AND {created} >= %s "
        f"AND {column} = ANY(string_to_array(%s, ',')) GROUP BY {column}"
    )
    with conn.cursor() as cursor:
        cursor.execute(sql, [merchant_id, since, ",".join(hashes)])
        return {r[0]: r[1] for r in cursor.fetchall()}


def touch_now(conn: Any, model: type[models.Model], pk: int, field: str) -> None:
    """Set `field` of one row to the database's now() on `conn` (a heartbeat committed at once)."""
    q = connection.ops.quote_name
    meta = model._meta
    with conn.cursor() as cursor:
        cursor.execute(
            f"UPDATE {q(meta.db_table)} SET {q(meta.get_field(field).column)} = now() "  # noqa: S608
            f"WHERE {q(meta.pk.column)} = %s",
            [pk],
        )


# What COPY's text format escapes, as psycopg's write_row does (backslash and six control characters).
_COPY_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r"}
)
_COPY_NULL = "\\N"


def copy_escape_bytes(value: bytes | bytearray | memoryview | None) -> str:
    """One field adapted by psycopg (UTF-8 bytes, or None for NULL) as COPY text."""
    if value is None:
        return _COPY_NULL
    return bytes(value).decode("utf-8").translate(_COPY_ESCAPES)


def copy_field(tx: Transformer, value: Any) -> str:
    """One value of a payment row as a COPY text field, as psycopg's `write_row` formats it.

    Printable text without backslashes is sent as is and integers as digits;
    anything else (control characters, NUL, lone surrogates, other types)
    is adapted by psycopg, which also rejects what PostgreSQL cannot store.
    """
    kind = type(value)
    if kind is str:
        if value.isprintable() and "\\" not in value:
            return value
    elif kind is int:
        return str(value)
    elif value is None:
        return _COPY_NULL
    return copy_escape_bytes(tx.dump_sequence([value], [PyFormat.TEXT])[0])


def copy_text_row(values: tuple) -> bytes:
    """One row in COPY's text format (tabs, newlines and backslashes escaped)."""
    out = []
    for v in values:
        text = str(v)
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        out.append(text)
    return ("\t".join(out) + "\n").encode("utf-8")


def connection_released(conn: Any = None) -> None:
    """Hand a pooled connection back before a long wait outside any transaction (a gateway call).

    With PAYDESK_DB_POOL the connection returns to the process's pool and the
    next statement borrows one again (microseconds), so a thread waiting
    hundreds of milliseconds for a gateway holds no database connection.
    Without a pool closing would cost a reconnect: nothing is done.
    """
    conn = conn if conn is not None else connection
    if conn.connection is None or conn.in_atomic_block:
        return
    if conn.vendor == "postgresql" and conn.settings_dict.get("OPTIONS", {}).get("pool"):
        conn.close()
