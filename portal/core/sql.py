"""A set-based write the ORM has no call for: INSERT ... SELECT, one statement for any number
of rows, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet


def insert_select(
    model: type[Model],
    columns: Sequence[str],
    source: QuerySet,
    select: str,
    params: Sequence[Any] = (),
    *,
    suffix: str = "",
) -> int:
    """Insert into `model`'s table, one row per row of `source`; returns how many went in.

    `columns` are field names; `select` is the SELECT list that fills them, reading the
    names of `source.values(...)` as `src.<name>`, its %s filled from `params`; `suffix`
    follows the FROM (ORDER BY, ON CONFLICT ...).
    """
    alias = model._default_manager.db
    connection = connections[alias]
    source_sql, source_params = source.query.get_compiler(alias).as_sql()
    qn = connection.ops.quote_name
    column = {field.name: field.column for field in model._meta.concrete_fields}
    names = ", ".join(qn(column[name]) for name in columns)
    sql = (
        f"INSERT INTO {qn(model._meta.db_table)} ({names}) "
        f"SELECT {select} FROM ({source_sql}) src {suffix}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *source_params])
        return cursor.rowcount
