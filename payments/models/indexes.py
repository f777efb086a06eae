"""Index declarations that mean the same thing on PostgreSQL and SQLite."""

from __future__ import annotations

from django.db import models


class CoveringIndex(models.Index):
    """An index that also stores the `covering` columns where the database can (INCLUDE).

    PostgreSQL gets `CREATE INDEX ... (fields) INCLUDE (covering)`, an index-only
    scan for queries that read those columns; SQLite, which has no covering
    indexes, gets the plain index on `fields`. `Index(include=...)` would create
    the same two indexes, but it states an INCLUDE that SQLite cannot honour, and
    Django's models.W040 warns about it on every SQLite check.
    """

    def __init__(self, *args, covering: list[str] | tuple[str, ...] = (), **kwargs) -> None:
        if kwargs.get("include"):
            raise ValueError("CoveringIndex takes `covering`, not `include`.")
        if not kwargs.get("name"):
            raise ValueError("A covering index must be named.")
        super().__init__(*args, **kwargs)
        self.covering = tuple(covering)

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if not schema_editor.connection.features.supports_covering_indexes:
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        index = models.Index(
            fields=self.fields,
            name=self.name,
            db_tablespace=self.db_tablespace,
            opclasses=self.opclasses,
            condition=self.condition,
            include=self.covering,
        )
        return index.create_sql(model, schema_editor, using=using, **kwargs)

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        kwargs["covering"] = self.covering
        return path, args, kwargs
